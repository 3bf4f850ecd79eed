"""The Cisco XCP Router of a node: the router core (``core``) and its front ends, one per wire
format: JSON over WebSocket (``json_ws``), XMPP over TCP and over WebSocket (``xmpp``)."""
