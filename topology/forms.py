"""Forms of the topology pages; the same forms back the Django admin."""

from __future__ import annotations

from django import forms
from django.db import transaction

from topology.models import Cluster, EndUser, Node, RedundancyGroup


class ClusterForm(forms.ModelForm):
    class Meta:
        model = Cluster
        fields = ["name", "cluster_id", "domain", "description", "user_assignment_mode"]


class NodeForm(forms.ModelForm):
    class Meta:
        model = Node
        fields = ["name", "ip_address", "role", "cluster", "agent_host", "agent_port", "xmpp_port"]


class RedundancyGroupForm(forms.ModelForm):
    """Presence Redundancy Group Configuration: name, description, two servers, HA."""

    server1 = forms.ModelChoiceField(
        label="Presence Server 1", queryset=Node.objects.select_related("cluster", "redundancy_group")
    )
    server2 = forms.ModelChoiceField(
        label="Presence Server 2",
        queryset=Node.objects.select_related("cluster", "redundancy_group"),
        required=False,
        help_text="Optional; high availability needs a second node.",
    )

    class Meta:
        model = RedundancyGroup
        fields = ["name", "description", "server1", "server2", "ha_enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            server1, server2 = self.instance.servers()
            self.initial.setdefault("server1", server1)
            self.initial.setdefault("server2", server2)

    def clean(self):
        cleaned = super().clean()
        self.instance.proposed_servers = (cleaned.get("server1"), cleaned.get("server2"))
        return cleaned

    def _save_m2m(self):
        super()._save_m2m()
        self.instance.set_servers(self.cleaned_data["server1"], self.cleaned_data.get("server2"))

    @transaction.atomic
    def save(self, commit=True):
        return super().save(commit)


class EndUserForm(forms.ModelForm):
    class Meta:
        model = EndUser
        fields = ["user_id", "jid", "display_name", "assigned_node"]


MAX_PEM_BYTES = 64 * 1024


class NodeCertificateForm(forms.Form):
    """Replace a node's TLS certificate: PEM files of the certificate (and chain) and its key."""

    certificate = forms.FileField(
        label="Certificate (PEM)",
        help_text="The node's certificate, then any intermediate certificates. It should name the node "
        "(its host name) and the cluster's domain.",
    )
    key = forms.FileField(
        label="Private key (PEM)",
        help_text="The certificate's private key. It is stored encrypted and never shown again.",
    )
    passphrase = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Only if the key file is encrypted.",
    )

    def _pem(self, name: str) -> str:
        upload = self.cleaned_data[name]
        if upload.size > MAX_PEM_BYTES:
            raise forms.ValidationError(f"A PEM file here is at most {MAX_PEM_BYTES // 1024} KB.")
        try:
            return upload.read().decode("ascii")
        except UnicodeDecodeError:
            raise forms.ValidationError("This is not a PEM file (PEM is ASCII text).") from None

    def clean_certificate(self) -> str:
        return self._pem("certificate")

    def clean_key(self) -> str:
        return self._pem("key")


class SetPasswordForm(forms.Form):
    """An end user's new chat password, typed twice; never rendered back."""

    password = forms.CharField(
        label="New password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
        help_text="At least 8 characters. Only its SCRAM keys are stored; nobody can read it back.",
    )
    confirmation = forms.CharField(
        label="Confirm password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )

    def clean_password(self) -> str:
        from topology.credentials import validate_password

        password = self.cleaned_data["password"]
        validate_password(password)
        return password

    def clean(self):
        cleaned = super().clean()
        if "password" in cleaned and cleaned.get("confirmation") != cleaned["password"]:
            self.add_error("confirmation", "The two passwords differ; type the same password twice.")
        return cleaned


class AssignUsersForm(forms.Form):
    """Apply a cluster's User Assignment Mode to its users."""

    cluster = forms.ModelChoiceField(queryset=Cluster.objects.all())
