"""Forms of System > Service Parameters for the Cisco Server Recovery Manager."""

from __future__ import annotations

from django import forms

from topology.catalog import CRITICAL_SERVICE_CHOICES
from topology.models import NodeServiceParameters, ServiceParameters


class ServiceParametersForm(forms.ModelForm):
    """Clusterwide parameters."""

    critical_services = forms.MultipleChoiceField(
        choices=CRITICAL_SERVICE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        label="Critical services",
        help_text=ServiceParameters._meta.get_field("critical_services").help_text,
        error_messages={"required": "Choose at least one critical service."},
    )

    class Meta:
        model = ServiceParameters
        fields = [
            "critical_service_delay",
            "enable_automatic_fallback",
            "automatic_fallback_delay",
            "initialization_heartbeat_timeout",
            "heartbeat_timeout",
            "heartbeat_interval",
            "self_fence_margin",
            "critical_services",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Left empty, the margin keeps its value (the default on a new row).
        self.fields["self_fence_margin"].required = False

    def clean_self_fence_margin(self):
        value = self.cleaned_data.get("self_fence_margin")
        return self.instance.self_fence_margin if value is None else value

    def clean(self):
        cleaned = super().clean()
        interval, timeout = cleaned.get("heartbeat_interval"), cleaned.get("heartbeat_timeout")
        init_timeout = cleaned.get("initialization_heartbeat_timeout")
        if interval is not None and timeout is not None and timeout <= interval:
            self.add_error(
                "heartbeat_timeout",
                f"The heartbeat timeout ({timeout:g} s) must be longer than the heartbeat interval ({interval:g} s).",
            )
        if timeout is not None and init_timeout is not None and init_timeout < timeout:
            self.add_error(
                "initialization_heartbeat_timeout",
                f"The initialization heartbeat timeout ({init_timeout:g} s) cannot be shorter than the heartbeat "
                f"timeout ({timeout:g} s).",
            )
        margin = cleaned.get("self_fence_margin")
        if interval is not None and timeout is not None and margin is not None and timeout > interval:
            rule = ServiceParameters(heartbeat_interval=interval, heartbeat_timeout=timeout, self_fence_margin=margin)
            error = rule.timing_rule_error()
            if error:
                self.add_error("self_fence_margin", error)
        return cleaned


class NodeServiceParametersForm(forms.ModelForm):
    """Per-node parameters; saved on both nodes of the node's redundancy group."""

    prefix = "node"

    class Meta:
        model = NodeServiceParameters
        fields = ["client_relogin_lower_limit", "client_relogin_upper_limit"]

    def clean(self):
        cleaned = super().clean()
        lower, upper = cleaned.get("client_relogin_lower_limit"), cleaned.get("client_relogin_upper_limit")
        if lower is not None and upper is not None and upper < lower:
            self.add_error(
                "client_relogin_upper_limit",
                f"The upper limit ({upper} s) cannot be below the lower limit ({lower} s).",
            )
        return cleaned

    def save(self, commit: bool = True) -> NodeServiceParameters:
        """Save, and give the node's redundancy group peer the same client re-login limits (they
        must be equal on both nodes of a group)."""
        params = super().save(commit)
        if commit:
            save_peer_relogin_limits(params)
        return params


def save_peer_relogin_limits(params: NodeServiceParameters):
    """Copy ``params``' client re-login limits to its node's redundancy group peer; return the peer."""
    from topology.models import Node

    node = Node.objects.select_related("redundancy_group").get(pk=params.node_id)
    peer = node.redundancy_group.peer_of(node) if node.redundancy_group_id else None
    if peer is not None:
        peer_params = NodeServiceParameters.for_node(peer.pk)
        peer_params.client_relogin_lower_limit = params.client_relogin_lower_limit
        peer_params.client_relogin_upper_limit = params.client_relogin_upper_limit
        peer_params.save()
    return peer
