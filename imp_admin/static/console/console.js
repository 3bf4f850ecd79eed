// Console behaviour that would otherwise be inline script (the Content-Security-Policy forbids it).

// A button with data-confirm asks before its form is submitted.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});
