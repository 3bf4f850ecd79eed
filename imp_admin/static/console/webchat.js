// Messaging > Web Chat: start converse.js (vendored, an ES module) from the page's json_script
// config. Nothing is loaded from outside: assets come from the console's static files, no
// host-meta discovery, no emoji CDN, no client-info tab.
const script = document.getElementById("webchat-script");
const converseUrl = new URL(script.dataset.converse, document.baseURI);
const assets = converseUrl.href.replace(/converse\.min\.js(\?.*)?$/, "");
const config = JSON.parse(document.getElementById("webchat-config").textContent);
const { default: converse } = await import(converseUrl.href);

converse.initialize({
  assets_path: assets,
  authentication: "login",
  view_mode: "embedded",
  websocket_url: config.websocket_url,
  jid: config.jid,
  auto_focus: true,
  auto_login: false,
  discover_connection_methods: false,
  allow_registration: false,
  allow_adhoc_commands: false,
  show_client_info: false,
  show_connection_url_input: false,
  i18n: "en",
  play_sounds: false,
  use_system_emojis: true,
  emoji_image_path: assets + "images/",
  persistent_store: "sessionStorage",
  clear_cache_on_logout: true,
  loglevel: "info",
});
