"""Web Chat: where converse.js (vendored, imp_admin/static/vendor/converse/) connects for an
end user, found from the topology. The console never signs in for the user: it only tells the
browser the user's JID and the XMPP-over-WebSocket address (RFC 7395) of the node serving them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from messaging.chat.directory import host_port
from topology.models import EndUser, Node

CONVERSE_DIR = Path(__file__).resolve().parents[1] / "imp_admin" / "static" / "vendor" / "converse"

# What the Web Chat page adds to the console's Content-Security-Policy (this page only, with
# converse.js on it); docs/operations.md, "Web Chat", says why. Scripts stay 'self', no eval.
# - <style> elements: converse.min.js's webpack style-loader still inserts one per component,
#   each empty (its CSS is in converse.min.css) but for the same empty source map comment;
#   these two hashes (the element first empty, then with that comment) allow exactly those.
# - style="" attributes: lit sets them from values computed at render time (widths, colours,
#   positions); an attribute can carry no nonce and 'unsafe-hashes' would need every value in
#   advance, so attributes alone get 'unsafe-inline' (style-src-attr, CSP level 3).
CONVERSE_STYLE_ELEMENT_HASHES = [
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # ""
    "'sha256-JRf3eZJIF59VkE1tlxlBPiCQXjGJ1uE88pEYh49RtTY='",  # "\n/*# sourceMappingURL=data:…(empty map) */"
]
CSP_RELAXATION = {"style-src": CONVERSE_STYLE_ELEMENT_HASHES, "style-src-attr": ["'unsafe-inline'"]}


def converse_version() -> str:
    """The vendored converse.js version, from its VERSION file (first line)."""
    return (CONVERSE_DIR / "VERSION").read_text().splitlines()[0].removeprefix("converse.js ").strip()


def websocket_url(node: Node) -> str:
    """The node's XMPP-over-WebSocket address: its chat port, plain ``ws://`` on the node's
    address (a reverse proxy in front gives ``wss://``)."""
    return f"ws://{host_port(node.agent_host, node.agent_port)}/"


def websocket_nodes() -> dict[str, str]:
    """Every node's chat address and the node's name: the addresses converse.js may be sent to
    by a ``see-other-uri`` (failover, fallback), and what the page calls each one."""
    nodes = Node.objects.order_by("name")
    return {websocket_url(node): node.name for node in nodes if node.agent_host and node.agent_port}


def websocket_sources() -> list[str]:
    """Every node's chat address, for the Web Chat page's CSP ``connect-src``: converse.js
    must be able to follow a ``see-other-uri`` to any node of the cluster."""
    return sorted(websocket_nodes())


@dataclass(frozen=True)
class WebChatTarget:
    """What converse.js is started with for one end user."""

    jid: str
    websocket_url: str
    node: Node
    domain: str
    addresses: list[str]


def user_addresses(user: EndUser) -> list[str]:
    """The chat addresses of the nodes that may serve the user: the serving node first, then the
    home node and its redundancy group peer. converse.js tries the next one when a node does not
    answer at all (its agent or host down), until the one serving the user takes it."""
    home = user.assigned_node
    nodes = [user.serving_node, home]
    if home is not None and home.redundancy_group is not None:
        nodes.append(home.redundancy_group.peer_of(home))
    return list(dict.fromkeys(websocket_url(node) for node in nodes if node is not None))


def target_for(user: EndUser) -> WebChatTarget | None:
    """The user's JID and the address of the node serving them now (the backup during a
    failover), then the user's other nodes; None when the user has no node."""
    node = user.serving_node
    if node is None:
        return None
    return WebChatTarget(
        jid=user.jid,
        websocket_url=websocket_url(node),
        node=node,
        domain=user.jid.partition("@")[2],
        addresses=user_addresses(user),
    )
