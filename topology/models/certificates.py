"""The TLS certificate each node presents on its XMPP client port (RFC 6120 STARTTLS)."""

from __future__ import annotations

from django.db import models


class CertificateSource(models.TextChoices):
    """Where a node's certificate came from."""

    DEMO_CA = "demo_ca", "Generated, signed by the demo CA"
    UPLOADED = "uploaded", "Uploaded by an administrator"


class NodeCertificate(models.Model):
    """A node's TLS certificate (PEM, with any intermediate certificates) and its private key.

    Created on first need by ``topology.certificates.ensure_certificate`` (signed by the demo CA
    kept in ``settings.DEMO_CA_DIR``), or replaced by an administrator's upload. The key is
    stored encrypted with the secrets key (``imp_admin.crypto``) and never rendered back.
    """

    node = models.OneToOneField("topology.Node", on_delete=models.CASCADE, related_name="certificate")
    certificate_pem = models.TextField(
        "Certificate (PEM)",
        help_text="The node's certificate, then any intermediate certificates, PEM-encoded.",
    )
    key_encrypted = models.TextField(
        editable=False, help_text="The certificate's private key (PEM), encrypted with IMP_SECRETS_KEY."
    )
    source = models.CharField(max_length=16, choices=CertificateSource.choices, editable=False)
    updated_at = models.DateTimeField(auto_now=True, help_text="When the certificate was created or replaced.")

    class Meta:
        verbose_name = "node certificate"

    def __str__(self) -> str:
        return f"Certificate of {self.node}"
