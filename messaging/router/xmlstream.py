"""The XML of an XMPP stream (RFC 6120 §4 and §11): a hardened incremental parser, and a writer.

The parser is defusedxml's expat SAX reader (``DefusedExpatParser``) fed chunk by chunk as
bytes arrive. It refuses what RFC 6120 §11.1 calls restricted XML, so no document can make it
expand entities or fetch anything: a DTD (and with it every entity declaration, the
billion-laughs bomb among them), comments and processing instructions. It also bounds what one
client can make the node hold: the bytes between two complete stanzas (``max_stanza_bytes``)
and the nesting depth of a stanza (``max_depth``). Whatever breaks a rule raises
``StreamError`` with the RFC 6120 §4.9.3 condition the router sends before it closes that one
stream.

The writer turns ElementTree elements into XML text, declaring a namespace only where it
changes (``<message xmlns='jabber:client'>`` is written ``<message>`` inside a client stream).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import xml.sax
from xml.sax.handler import ContentHandler, feature_namespaces, property_lexical_handler
from xml.sax.saxutils import escape, quoteattr

from defusedxml import DefusedXmlException
from defusedxml.expatreader import DefusedExpatParser

STREAM_NS = "http://etherx.jabber.org/streams"
CLIENT_NS = "jabber:client"
STREAM_ERROR_NS = "urn:ietf:params:xml:ns:xmpp-streams"
XML_NS = "http://www.w3.org/XML/1998/namespace"

MAX_STANZA_BYTES = 256 * 1024  # the most a client may send between two complete stanzas
MAX_DEPTH = 32  # elements nested inside one stanza, the stanza itself counted


class StreamError(Exception):
    """A stream-level error (RFC 6120 §4.9.3): ``condition`` names its element."""

    def __init__(self, condition: str, text: str) -> None:
        super().__init__(text)
        self.condition = condition
        self.text = text


class _Restricted(Exception):
    """Raised inside the SAX callbacks for XML that RFC 6120 §11.1 forbids."""


class _Lexical:
    """SAX lexical handler: a comment is restricted XML; the DTD never gets this far."""

    def comment(self, content):
        raise _Restricted("comments")

    def startDTD(self, name, public_id, system_id):
        raise _Restricted("a DTD")

    def endDTD(self):
        pass

    def startCDATA(self):
        pass

    def endCDATA(self):
        pass


class _Builder(ContentHandler):
    """Collects stream events: the stream header, each complete top-level stanza, the end."""

    def __init__(self, stream: StreamParser) -> None:
        super().__init__()
        self.stream = stream
        self.stack: list[ET.Element] = []

    def startElementNS(self, name, qname, attrs):
        stream = self.stream
        uri, local = name
        tag = f"{{{uri}}}{local}" if uri else local
        attributes = {}
        for (attr_uri, attr_local), value in attrs.items():
            attributes[f"{{{attr_uri}}}{attr_local}" if attr_uri else attr_local] = value
        depth = len(self.stack)
        if depth == 0:
            if (uri, local) != (STREAM_NS, "stream"):
                raise StreamError("invalid-namespace", "A stream must open with <stream:stream>.")
            element = ET.Element(tag, attributes)
            self.stack.append(element)
            stream.events.append(("open", element))
            stream.mark()
            return
        if depth >= stream.max_depth + 1:
            raise StreamError("policy-violation", f"A stanza may nest elements at most {stream.max_depth} deep.")
        element = ET.Element(tag, attributes) if depth == 1 else ET.SubElement(self.stack[-1], tag, attributes)
        self.stack.append(element)

    def endElementNS(self, name, qname):
        element = self.stack.pop()
        if not self.stack:
            self.stream.events.append(("close", element))
        elif len(self.stack) == 1:
            self.stream.check_size()
            self.stream.events.append(("stanza", element))
            self.stream.mark()

    def characters(self, content):
        if len(self.stack) <= 1:
            if content.strip():
                raise StreamError("bad-format", "Text is not allowed between stanzas.")
            self.stream.mark()  # whitespace keepalive
            return
        element = self.stack[-1]
        children = list(element)
        if children:
            children[-1].tail = (children[-1].tail or "") + content
        else:
            element.text = (element.text or "") + content

    def processingInstruction(self, target, data):
        raise _Restricted("processing instructions")


class StreamParser:
    """Parse one XML stream incrementally; ``feed(bytes)`` returns the events completed by it:
    ``("open", header)``, ``("stanza", element)`` and ``("close", header)``.

    Start a new parser for each stream restart (after STARTTLS and after SASL success).
    """

    def __init__(self, max_stanza_bytes: int = MAX_STANZA_BYTES, max_depth: int = MAX_DEPTH) -> None:
        self.max_stanza_bytes = max_stanza_bytes
        self.max_depth = max_depth
        self.events: list[tuple[str, ET.Element]] = []
        self._fed = 0
        self._mark = 0
        self._parser = DefusedExpatParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
        self._parser.setFeature(feature_namespaces, True)
        self._parser.setContentHandler(_Builder(self))
        self._parser.setProperty(property_lexical_handler, _Lexical())

    def _position(self) -> int:
        expat = getattr(self._parser, "_parser", None)
        return expat.CurrentByteIndex if expat is not None else self._fed

    def mark(self) -> None:
        """A stanza (or the stream header) ended here: the next one is counted from here."""
        self._mark = self._position()

    def check_size(self) -> None:
        if self._position() - self._mark > self.max_stanza_bytes:
            raise StreamError("policy-violation", f"A stanza may hold at most {self.max_stanza_bytes} bytes.")

    def feed(self, data: bytes) -> list[tuple[str, ET.Element]]:
        self._fed += len(data)
        try:
            self._parser.feed(data)
        except StreamError:
            raise
        except (_Restricted, DefusedXmlException) as exc:
            what = exc.args[0] if isinstance(exc, _Restricted) else "a DTD or entity declarations"
            raise StreamError("restricted-xml", f"XMPP streams may not hold {what} (RFC 6120 §11.1).") from None
        except xml.sax.SAXParseException as exc:
            raise StreamError("not-well-formed", f"The XML is not well-formed: {exc.getMessage()}.") from None
        if self._fed - self._mark > self.max_stanza_bytes:
            raise StreamError("policy-violation", f"A stanza may hold at most {self.max_stanza_bytes} bytes.")
        events, self.events = self.events, []
        return events


# --- writing ---------------------------------------------------------------------------------


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        uri, _, local = tag[1:].partition("}")
        return uri, local
    return "", tag


def _attribute_name(name: str) -> str:
    uri, local = _split(name)
    if uri == XML_NS:
        return f"xml:{local}"
    return local


def q(ns: str, name: str) -> str:
    """An element's name in ElementTree's ``{namespace}local`` form."""
    return f"{{{ns}}}{name}"


def element(ns: str, name: str, attrs: dict | None = None, text: str | None = None) -> ET.Element:
    """A new element; attributes whose value is None are left out."""
    item = ET.Element(q(ns, name), {k: v for k, v in (attrs or {}).items() if v is not None})
    if text is not None:
        item.text = text
    return item


def child(parent: ET.Element, ns: str, name: str, attrs: dict | None = None, text: str | None = None) -> ET.Element:
    """A new element appended to ``parent``."""
    item = element(ns, name, attrs, text)
    parent.append(item)
    return item


def find(parent: ET.Element, ns: str, name: str) -> ET.Element | None:
    return parent.find(q(ns, name))


def tostring(element: ET.Element, default_ns: str = CLIENT_NS) -> str:
    """XML text of ``element`` inside a stream whose default namespace is ``default_ns``."""
    parts: list[str] = []
    _write(element, default_ns, parts)
    return "".join(parts)


def _write(element: ET.Element, parent_ns: str, parts: list[str]) -> None:
    uri, local = _split(element.tag)
    parts.append(f"<{local}")
    if uri != parent_ns:
        parts.append(f" xmlns={quoteattr(uri)}")
    for name, value in element.attrib.items():
        parts.append(f" {_attribute_name(name)}={quoteattr(str(value))}")
    children = list(element)
    if not children and not element.text:
        parts.append("/>")
    else:
        parts.append(">")
        if element.text:
            parts.append(escape(element.text))
        for child in children:
            _write(child, uri, parts)
            if child.tail:
                parts.append(escape(child.tail))
        parts.append(f"</{local}>")


def stream_header(stream_id: str, domain: str, lang: str = "en") -> str:
    """The server's stream header (RFC 6120 §4.7)."""
    return (
        "<?xml version='1.0'?>"
        f"<stream:stream xmlns='{CLIENT_NS}' xmlns:stream='{STREAM_NS}' id={quoteattr(stream_id)} "
        f"from={quoteattr(domain)} version='1.0' xml:lang={quoteattr(lang)}>"
    )


def stream_error(condition: str, text: str = "", extra: str = "") -> str:
    """A stream error and the end of the stream (RFC 6120 §4.9); ``extra`` is the condition's
    text content, such as the host:port of ``see-other-host``."""
    body = escape(extra) if extra else ""
    described = f"<text xmlns='{STREAM_ERROR_NS}' xml:lang='en'>{escape(text)}</text>" if text else ""
    return f"<stream:error><{condition} xmlns='{STREAM_ERROR_NS}'>{body}</{condition}>{described}</stream:error>"
