"""Each node's TLS certificate for its XMPP client port: created, uploaded, described, checked.

- ``server_ssl_context(node)``: the ``ssl.SSLContext`` the node's XMPP front end wraps STARTTLS
  with (TLS 1.2 or later), from the node's certificate, which ``ensure_certificate`` creates on
  first need;
- ``ensure_certificate(node)``: the node's certificate, created if it has none: a key and a
  certificate for the node's name and its cluster's domain (and the node agent's address),
  signed by the demo CA in ``settings.DEMO_CA_DIR`` (``ca.pem``, the file clients trust);
- ``install_certificate(node, certificate_pem, key_pem, passphrase)``: an administrator's upload,
  checked (PEM, the key matches, not expired); the key is stored encrypted;
- ``describe(certificate)``: subject, issuer, validity and names for the node's page;
- ``certificate_problems(node)``: what Verify High Availability Settings warns about.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from imp_admin import crypto
from topology.models import CertificateSource, Node, NodeCertificate

DEMO_CA_NAME = "imp-admin demo CA"
CA_DAYS = 3650
NODE_DAYS = 397  # what public CAs may issue; the demo renews by deleting the row
KEY_SIZE = 2048


# --- The demo CA ---------------------------------------------------------------------------


def demo_ca_paths() -> tuple[Path, Path]:
    directory = Path(settings.DEMO_CA_DIR)
    return directory / "ca.pem", directory / "ca-key.pem"


def demo_ca() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """The demo CA's certificate and key, created once (under a file lock: agents start together)."""
    cert_path, key_path = demo_ca_paths()
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    with open(cert_path.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cert_path.exists() and key_path.exists()):
            key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DEMO_CA_NAME)])
            now = _now()
            certificate = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256())
            )
            _write_private(key_path, _key_pem(key))
            cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    return certificate, key


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# --- A node's certificate ------------------------------------------------------------------


def names_for(node: Node) -> list[str]:
    """The DNS names a node's certificate should carry: the node's name and its cluster's domain."""
    return list(dict.fromkeys([node.name.lower(), node.cluster.domain.lower()]))


def generate_certificate(node: Node) -> tuple[str, str]:
    """A new key and certificate (PEM text) for ``node``, signed by the demo CA."""
    ca_certificate, ca_key = demo_ca()
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    alternative: list[x509.GeneralName] = [x509.DNSName(name) for name in names_for(node)]
    for address in dict.fromkeys([node.agent_host, node.ip_address]):
        with contextlib.suppress(ValueError):
            alternative.append(x509.IPAddress(ipaddress.ip_address(address)))
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node.name.lower())]))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=NODE_DAYS))
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key).decode()


def ensure_certificate(node: Node) -> NodeCertificate:
    """The node's certificate, created from the demo CA if it has none yet."""
    existing = NodeCertificate.objects.filter(node=node).first()
    if existing is not None:
        return existing
    node = Node.objects.select_related("cluster").get(pk=node.pk)
    certificate_pem, key_pem = generate_certificate(node)
    try:
        with transaction.atomic():
            return NodeCertificate.objects.create(
                node=node,
                certificate_pem=certificate_pem,
                key_encrypted=crypto.encrypt(key_pem),
                source=CertificateSource.DEMO_CA,
            )
    except IntegrityError:  # another process created it first
        return NodeCertificate.objects.get(node=node)


def install_certificate(node: Node, certificate_pem: str, key_pem: str, passphrase: str = "") -> NodeCertificate:
    """Check an uploaded certificate and key and make them the node's. Raises ValidationError."""
    certificates = _load_certificates(certificate_pem)
    key = _load_key(key_pem, passphrase)
    leaf = certificates[0]
    if leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise ValidationError({"key": "This key does not belong to the certificate (their public keys differ)."})
    if leaf.not_valid_after_utc <= _now():
        raise ValidationError(
            {"certificate": f"The certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC."}
        )
    chain = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)
    row, _ = NodeCertificate.objects.update_or_create(
        node=node,
        defaults={
            "certificate_pem": chain,
            "key_encrypted": crypto.encrypt(_key_pem(key).decode()),
            "source": CertificateSource.UPLOADED,
        },
    )
    return row


def _load_certificates(pem: str) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        certificates = []
    if not certificates:
        raise ValidationError(
            {
                "certificate": "Paste a PEM certificate: -----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----, "
                "the node's own first, then any intermediate certificates."
            }
        )
    return certificates


def _load_key(pem: str, passphrase: str):
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=passphrase.encode() or None)
    except TypeError:
        raise ValidationError({"passphrase": "This key is encrypted: give its passphrase."}) from None
    except ValueError:
        raise ValidationError(
            {
                "key": "Paste the certificate's private key in PEM (-----BEGIN PRIVATE KEY----- …), with its "
                "passphrase if it is encrypted; a wrong passphrase also ends here."
            }
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise ValidationError({"key": "Use an RSA, ECDSA or Ed25519 key."})
    return key


# --- What the console shows and checks ----------------------------------------------------


@dataclass(frozen=True)
class CertificateInfo:
    """What the node's page shows of a certificate."""

    subject: str
    issuer: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    names: list[str]
    fingerprint: str
    source: str
    chain_length: int

    @property
    def expired(self) -> bool:
        return self.not_after <= _now()


def describe(row: NodeCertificate) -> CertificateInfo:
    certificates = x509.load_pem_x509_certificates(row.certificate_pem.encode())
    leaf = certificates[0]
    return CertificateInfo(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        names=_names(leaf),
        fingerprint=leaf.fingerprint(hashes.SHA256()).hex(":").upper(),
        source=row.get_source_display(),
        chain_length=len(certificates),
    )


def _names(certificate: x509.Certificate) -> list[str]:
    try:
        alternative = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return [str(attribute.value) for attribute in common]
    return [*alternative.get_values_for_type(x509.DNSName), *map(str, alternative.get_values_for_type(x509.IPAddress))]


def names_host(names: list[str], host: str) -> bool:
    """Whether a certificate's names cover ``host`` (RFC 6125: a wildcard stands for one label)."""
    host = host.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def certificate_problems(node: Node) -> list[str]:
    """Sentences for Verify High Availability Settings: expired, or not naming the node or domain."""
    try:
        row = node.certificate  # select_related by list pages
    except NodeCertificate.DoesNotExist:
        return []  # created from the demo CA when the node's XMPP port first needs it
    try:
        info = describe(row)
    except ValueError:
        return [f"The TLS certificate of {node} cannot be read; upload it again on the node's page."]
    problems = []
    now = timezone.now()
    if info.not_after <= now:
        problems.append(
            f"The TLS certificate of {node} expired on {info.not_after:%Y-%m-%d %H:%M} UTC; XMPP clients will "
            "refuse it. Upload a new one on the node's page."
        )
    elif info.not_before > now:
        problems.append(f"The TLS certificate of {node} is not valid before {info.not_before:%Y-%m-%d %H:%M} UTC.")
    if not names_host(info.names, node.name):
        problems.append(
            f"The TLS certificate of {node} does not name the node (it names {', '.join(info.names) or 'nothing'}); "
            f"XMPP clients connecting to {node.name} will refuse it."
        )
    domain = node.cluster.domain
    if not names_host(info.names, domain):
        problems.append(f"The TLS certificate of {node} does not name the domain {domain} of cluster {node.cluster}.")
    return problems


# --- For the XMPP front end ---------------------------------------------------------------


def server_ssl_context(node: Node) -> ssl.SSLContext:
    """The TLS server context of the node's XMPP client port (TLS 1.2 or later)."""
    row = ensure_certificate(node)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl loads a certificate chain only from files: write both to a private directory for the
    # moment it takes, and remove them.
    with tempfile.TemporaryDirectory(prefix="imp-tls-") as directory:
        cert_path, key_path = Path(directory) / "cert.pem", Path(directory) / "key.pem"
        cert_path.write_text(row.certificate_pem)
        _write_private(key_path, crypto.decrypt(row.key_encrypted).encode())
        context.load_cert_chain(cert_path, key_path)
    return context
