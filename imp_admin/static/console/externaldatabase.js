// External database form: the port follows the database type (and Oracle's SSL) until edited.
document.addEventListener("DOMContentLoaded", function () {
  var type = document.getElementById("id_db_type"), ssl = document.getElementById("id_enable_ssl"),
      port = document.getElementById("id_port");
  if (!type || !port) return;
  var ports = JSON.parse(type.dataset.defaultPorts), last = port.value;
  function fill() {
    var value = ports[type.value === "oracle" && ssl && ssl.checked ? "oracle_ssl" : type.value];
    if (value && (port.value === "" || port.value === String(last))) { port.value = value; last = value; }
  }
  type.addEventListener("change", fill);
  if (ssl) ssl.addEventListener("change", fill);
  if (!port.value) fill();
});
