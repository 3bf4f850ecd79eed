"""Each node's XMPP client port and TLS certificate: created from the demo CA, uploaded as PEM,
shown on the node's page, warned about by Verify High Availability Settings, and served by a
real TLS handshake that a client trusting the demo CA accepts."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from io import StringIO

import pytest
from auditlog.models import LogEntry
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection

from messaging.verify import verify_ha
from topology import certificates
from topology.models import CertificateSource, Node, NodeCertificate

pytestmark = [pytest.mark.configdb, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def demo_ca_dir(settings, tmp_path):
    settings.DEMO_CA_DIR = tmp_path / "demo-ca"
    return settings.DEMO_CA_DIR


@pytest.fixture
def pair(build):
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("subcluster1", a, b, ha=True)
    return a, b


def make_certificate(names: list[str], days: float = 30, start_days: float = -1, key=None):
    """A self-signed certificate (PEM) naming ``names``, and its key (PEM)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Corp CA")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=start_days))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def upload(client, node: Node, certificate_pem: str, key_pem: str, passphrase: str = "", follow: bool = True):
    return client.post(
        f"/system/nodes/{node.pk}/certificate/",
        {
            "certificate": SimpleUploadedFile("node.pem", certificate_pem.encode()),
            "key": SimpleUploadedFile("node-key.pem", key_pem.encode()),
            "passphrase": passphrase,
        },
        follow=follow,
    )


def assert_not_in_db(secret: str) -> None:
    needle = secret.strip().splitlines()[1].encode()  # a line of the key's base64 body
    with connection.cursor() as cursor:
        for table in (NodeCertificate._meta.db_table, LogEntry._meta.db_table):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 (model tables)
            for row in cursor.fetchall():
                for value in row:
                    data = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
                    assert needle not in data, f"the private key is readable in {table}"


def test_a_node_gets_a_certificate_signed_by_the_demo_ca_naming_it_and_the_domain(pair, demo_ca_dir):
    a, _ = pair
    row = certificates.ensure_certificate(a)
    assert certificates.ensure_certificate(a).pk == row.pk  # created once
    assert row.source == CertificateSource.DEMO_CA
    ca = x509.load_pem_x509_certificate((demo_ca_dir / "ca.pem").read_bytes())
    leaf = x509.load_pem_x509_certificate(row.certificate_pem.encode())
    leaf.verify_directly_issued_by(ca)
    info = certificates.describe(row)
    assert info.subject == "CN=imp-1a" and info.issuer == "CN=imp-admin demo CA"
    assert info.names == ["imp-1a", "example.com", "127.0.0.1"]
    assert not info.expired and certificates.certificate_problems(Node.objects.get(pk=a.pk)) == []
    assert oct((demo_ca_dir / "ca-key.pem").stat().st_mode & 0o777) == "0o600"
    key_pem = certificates.crypto.decrypt(row.key_encrypted)
    assert key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert_not_in_db(key_pem)


def test_server_ssl_context_completes_a_handshake_that_a_client_trusting_the_demo_ca_accepts(pair, demo_ca_dir):
    a, _ = pair
    server_context = certificates.server_ssl_context(a)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        errors = []

        def serve():
            connection_, _ = listener.accept()
            try:
                with server_context.wrap_socket(connection_, server_side=True) as tls:
                    tls.sendall(b"hello")
            except Exception as exc:  # reported by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=serve)
        thread.start()
        client_context = ssl.create_default_context(cafile=str(demo_ca_dir / "ca.pem"))
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            client_context.wrap_socket(raw, server_hostname="imp-1a") as tls,
        ):
            assert tls.recv(5) == b"hello"
            assert tls.version() in {"TLSv1.2", "TLSv1.3"}
            peer = tls.getpeercert()
        thread.join(10)
    assert errors == []
    assert ("DNS", "example.com") in peer["subjectAltName"]


def test_the_node_page_shows_the_xmpp_port_and_the_certificates_subject_issuer_and_expiry(pair, read_only_client):
    a, _ = pair
    Node.objects.filter(pk=a.pk).update(xmpp_port=5222)
    page = read_only_client.get(f"/system/nodes/{a.pk}/").content.decode()
    assert "127.0.0.1:5222 (STARTTLS required)" in page
    assert "None yet: the node agent creates one" in page
    assert "Upload Certificate" not in page  # read-only
    row = certificates.ensure_certificate(a)
    info = certificates.describe(row)
    page = read_only_client.get(f"/system/nodes/{a.pk}/").content.decode()
    assert "CN=imp-1a" in page and "CN=imp-admin demo CA" in page
    assert f"{info.not_after:%Y-%m-%d %H:%M} UTC" in page
    assert "Generated, signed by the demo CA" in page
    assert "PRIVATE KEY" not in page


def test_an_administrator_replaces_the_certificate_by_uploading_pem(pair, super_client, super_admin):
    a, _ = pair
    certificates.ensure_certificate(a)
    certificate_pem, key_pem = make_certificate(["imp-1a", "example.com"], days=90)
    response = upload(super_client, a, certificate_pem, key_pem)
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/system/nodes/{a.pk}/"
    assert "TLS certificate of imp-1a replaced." in html
    assert "CN=Example Corp CA" in html and "Uploaded by an administrator" in html
    assert "PRIVATE KEY" not in html
    row = NodeCertificate.objects.get(node=a)
    assert row.source == CertificateSource.UPLOADED
    assert certificates.crypto.decrypt(row.key_encrypted).strip() == key_pem.strip()
    assert_not_in_db(key_pem)
    assert LogEntry.objects.get_for_object(row).filter(actor=super_admin).exists()
    # The node's XMPP port now serves the uploaded certificate.
    context = certificates.server_ssl_context(a)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_an_uploaded_certificate_that_does_not_name_the_node_is_kept_with_a_warning(pair, super_client):
    a, _ = pair
    certificate_pem, key_pem = make_certificate(["chat.example.org"], days=90)
    html = upload(super_client, a, certificate_pem, key_pem).content.decode()
    assert "TLS certificate of imp-1a replaced." in html
    assert "does not name the node (it names chat.example.org)" in html


@pytest.mark.parametrize(
    ("case", "field_message"),
    [
        ("garbage", "Paste a PEM certificate"),
        ("other key", "This key does not belong to the certificate (their public keys differ)."),
        ("expired", "The certificate expired on"),
        ("bad key", "Paste the certificate&#x27;s private key in PEM"),
        ("encrypted key, no passphrase", "This key is encrypted: give its passphrase."),
    ],
)
def test_a_bad_upload_says_what_is_wrong_and_changes_nothing(pair, super_client, case, field_message):
    a, _ = pair
    original = certificates.ensure_certificate(a).certificate_pem
    certificate_pem, key_pem = make_certificate(["imp-1a", "example.com"])
    if case == "garbage":
        certificate_pem = "not a certificate"
    elif case == "other key":
        key_pem = make_certificate(["imp-1a"])[1]
    elif case == "expired":
        certificate_pem, key_pem = make_certificate(["imp-1a"], days=-1, start_days=-30)
    elif case == "bad key":
        key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    elif case == "encrypted key, no passphrase":
        key = serialization.load_pem_private_key(key_pem.encode(), None)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"key-passphrase"),
        ).decode()
    response = upload(super_client, a, certificate_pem, key_pem, follow=False)
    assert response.status_code == 200
    assert field_message in response.content.decode()
    assert NodeCertificate.objects.get(node=a).certificate_pem == original


def test_an_encrypted_key_is_accepted_with_its_passphrase(pair, super_client):
    a, _ = pair
    certificate_pem, key_pem = make_certificate(["imp-1a", "example.com"])
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"key-passphrase"),
    ).decode()
    html = upload(super_client, a, certificate_pem, encrypted, passphrase="key-passphrase").content.decode()
    assert "TLS certificate of imp-1a replaced." in html
    assert "key-passphrase" not in html


@pytest.mark.parametrize("persona", ["read_only", "operator"])
def test_read_only_users_and_operators_cannot_upload_a_certificate(pair, personas, persona):
    a, _ = pair
    certificate_pem, key_pem = make_certificate(["imp-1a", "example.com"])
    page = personas[persona].get(f"/system/nodes/{a.pk}/certificate/")
    assert page.status_code == 200 and 'type="submit"' not in page.content.decode()
    assert upload(personas[persona], a, certificate_pem, key_pem, follow=False).status_code == 403
    assert not NodeCertificate.objects.filter(node=a).exists()


def test_anonymous_visitors_cannot_upload_a_certificate(pair, anon_client):
    a, _ = pair
    certificate_pem, key_pem = make_certificate(["imp-1a"])
    response = upload(anon_client, a, certificate_pem, key_pem, follow=False)
    assert response.status_code == 302 and "login/" in response["Location"]
    assert not NodeCertificate.objects.filter(node=a).exists()


def test_verify_warns_when_a_certificate_expired_or_does_not_name_the_node(pair):
    a, b = pair
    expired_pem, expired_key = make_certificate(["imp-1a", "example.com"], days=-1, start_days=-30)
    other_pem, other_key = make_certificate(["chat.example.org"])
    for node, pem, key in ((a, expired_pem, expired_key), (b, other_pem, other_key)):
        # Written directly: an upload refuses an expired certificate, but one can expire in place.
        NodeCertificate.objects.create(
            node=node, certificate_pem=pem, key_encrypted=certificates.crypto.encrypt(key), source="uploaded"
        )
    rows = {row.check: row for row in verify_ha()}
    expired, unnamed = rows["TLS certificate of imp-1a"], rows["TLS certificate of imp-1b"]
    assert expired.warning and not expired.failed and expired.fix_url == f"/system/nodes/{a.pk}/"
    assert "The TLS certificate of imp-1a expired on" in expired.reason
    assert unnamed.warning
    assert unnamed.reason.startswith("The TLS certificate of imp-1b does not name the node (it names chat.example.org)")
    out = StringIO()
    with pytest.raises(SystemExit):  # other checks of this bare group fail
        call_command("verify_ha", stdout=out)
    assert "WARN  subcluster1  TLS certificate of imp-1a: The TLS certificate of imp-1a expired on" in out.getvalue()
    assert "does not name the domain example.com of cluster cluster1." in unnamed.reason
    assert out.getvalue().strip().endswith(", 2 warnings.")


def test_verify_says_nothing_about_good_certificates(pair):
    a, b = pair
    certificates.ensure_certificate(a)
    certificates.ensure_certificate(b)
    assert not [row for row in verify_ha() if row.check.startswith("TLS certificate")]


def test_the_xmpp_client_port_is_editable_and_may_not_clash_with_an_agent_port(pair, super_client):
    a, b = pair
    form = {
        "name": a.name,
        "ip_address": a.ip_address,
        "role": a.role,
        "cluster": a.cluster_id,
        "agent_host": a.agent_host,
        "agent_port": a.agent_port,
    }
    clash = super_client.post(f"/system/nodes/{a.pk}/edit/", {**form, "xmpp_port": b.agent_port})
    assert "imp-1b&#x27;s node agent already listens on this port." in clash.content.decode()
    same = super_client.post(f"/system/nodes/{a.pk}/edit/", {**form, "xmpp_port": a.agent_port})
    assert "The XMPP client port must differ from the node agent port." in same.content.decode()
    super_client.post(f"/system/nodes/{a.pk}/edit/", {**form, "xmpp_port": 5222})
    assert Node.objects.get(pk=a.pk).xmpp_port == 5222


def test_the_demo_assigns_every_node_an_xmpp_client_port_and_creates_its_ca(demo_topology, demo_ca_dir):
    ports = dict(Node.objects.values_list("name", "xmpp_port"))
    assert ports["imp-1a"] == 5221 and len(set(ports.values())) == len(ports) == 6
    assert (demo_ca_dir / "ca.pem").exists()
