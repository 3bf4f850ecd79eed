// Messaging > Web Chat: start converse.js (vendored, an ES module) from the page's json_script
// config. Nothing is loaded from outside: assets come from the console's static files, no
// host-meta discovery, no emoji CDN, no client-info tab.
const script = document.getElementById("webchat-script");
const converseUrl = new URL(script.dataset.converse, document.baseURI);
// The directory converse.js is served from (emoji.json, images/). Not by its file name: in
// production that is the hashed converse.min.<hash>.js of the static files manifest.
const assets = new URL("./", converseUrl).href;
const config = JSON.parse(document.getElementById("webchat-config").textContent);
const { default: converse } = await import(converseUrl.href);

const FRAMING_NS = "urn:ietf:params:xml:ns:xmpp-framing";

// Failover and fallback (docs/chat-protocol.md, "converse.js through a failover"):
// - The node that no longer serves the user ends the stream with
//   <close see-other-uri="ws://backup:port/"/> (RFC 7395 §3.6.1). Strophe, converse.js's XMPP
//   library, follows that only when it is the first frame on a new socket; on an established
//   stream it ignores the element, sees the socket close, and converse.js reconnects to the
//   address it started with: the node that just sent it away, again and again. So this plugin
//   watches every element received and, when a node names another node of the cluster (the
//   addresses the console listed), points the connection there.
// - A node that does not answer at all (its agent or host down) sends nothing: converse.js would
//   retry it every 3 s for ever. After a second failed try in a row the plugin moves on to the
//   user's next node (config.addresses: serving, home, its peer); a node that does not serve
//   the user yet answers with see-other-uri, so the tries go round until the backup has taken
//   the user over.
// converse.js's own reconnect (auto_reconnect, same password, rejoin, archive catch-up) then
// signs in on the node chosen.
converse.plugins.add("imp-see-other-uri", {
  initialize() {
    const { api } = this._converse;
    const shown = document.getElementById("webchat-connection");
    let redirected = false; // the next reconnect goes where a see-other-uri said
    let failedTries = 0; // reconnects since the last successful connection

    api.listen.on("connectionInitialized", () => {
      const connection = api.connection.get();
      const logged = connection.xmlInput.bind(connection); // converse's debug log of each element
      connection.xmlInput = (element) => {
        logged(element);
        if (element?.localName !== "close" || element.namespaceURI !== FRAMING_NS) return;
        const uri = element.getAttribute("see-other-uri");
        if (uri && uri in config.nodes && uri !== connection.service) {
          console.info(`Web Chat: ${config.nodes[uri]} (${uri}) serves ${config.jid} now; reconnecting there.`);
          connection.service = uri;
          redirected = true;
        }
      };
    });

    api.listen.on("will-reconnect", () => {
      shown.hidden = true;
      if (redirected) {
        redirected = false;
        return;
      }
      failedTries += 1;
      if (failedTries < 2) return; // the first try goes back to the same node (a dropped link)
      const connection = api.connection.get();
      const next = config.addresses[(config.addresses.indexOf(connection.service) + 1) % config.addresses.length];
      if (next && next !== connection.service) {
        console.info(`Web Chat: ${config.nodes[connection.service] ?? connection.service} does not answer; trying ${config.nodes[next] ?? next}.`);
        connection.service = next;
      }
    });

    // After a reconnect converse.js joins its open rooms again; a message sent before that is
    // refused ("Join the room before posting to it"). The page says so until they are joined:
    // each room goes stale on the reconnect, joining when converse sends its join, entered.
    const rooms = new Map(); // MUC → "stale" | "joining" while it is to be joined again
    const showRooms = () => {
      const joining = rooms.size > 0;
      shown.dataset.rooms = joining ? "joining" : "entered";
      shown.querySelector("[data-webchat-joining]").hidden = !joining;
    };
    const watched = new Set();
    api.listen.on("chatRoomInitialized", (muc) => {
      watched.add(muc);
      muc.on("destroy", () => {
        watched.delete(muc);
        rooms.delete(muc);
        showRooms();
      });
      muc.session.on("change:connection_status", () => {
        const phase = rooms.get(muc);
        if (phase === "stale" && !muc.isEntered()) rooms.set(muc, "joining");
        else if (phase === "joining" && muc.isEntered()) rooms.delete(muc);
        showRooms();
      });
    });
    api.listen.on("will-reconnect", () => {
      for (const muc of watched) if (muc.isEntered()) rooms.set(muc, "stale");
      showRooms();
    });

    const connected = () => {
      failedTries = 0;
      const url = api.connection.get().service;
      shown.querySelector("[data-webchat-node]").textContent = config.nodes[url] ?? "?";
      shown.querySelector("[data-webchat-url]").textContent = url;
      showRooms();
      shown.hidden = false;
    };
    api.listen.on("connected", connected);
    api.listen.on("reconnected", connected);
    api.listen.on("disconnected", () => (shown.hidden = true));
  },
});

converse.initialize({
  assets_path: assets,
  authentication: "login",
  view_mode: "embedded",
  websocket_url: config.websocket_url,
  jid: config.jid,
  auto_focus: true,
  auto_login: false,
  auto_reconnect: true,
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
  whitelisted_plugins: ["imp-see-other-uri"],
});
