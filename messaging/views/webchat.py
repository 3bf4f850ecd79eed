"""Messaging > Web Chat: converse.js in the console, signed in by the end user themselves."""

from __future__ import annotations

from django.views.generic import TemplateView

from imp_admin.permissions import ConsolePermissionMixin
from messaging import webchat
from topology.models import EndUser


class WebChatView(ConsolePermissionMixin, TemplateView):
    """Pick an end user; converse.js then connects over XMPP-over-WebSocket to the node serving
    them, and the user types their own password (the console never signs in for them)."""

    template_name = "messaging/webchat.html"
    permission_required = "topology.view_enduser"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(title="Web Chat", **kwargs)
        users = EndUser.objects.select_related("assigned_node", "active_node").order_by("user_id")
        selected = (
            users.filter(pk=self.request.GET.get("user")).first()
            if self.request.GET.get("user", "").isdigit()
            else None
        )
        target = webchat.target_for(selected) if selected else None
        context.update(users=users, selected=selected, target=target, converse_version=webchat.converse_version())
        if target is not None:
            context["converse_config"] = {
                "jid": target.jid,
                "websocket_url": target.websocket_url,
                "domain": target.domain,
                "addresses": target.addresses,
                "nodes": webchat.websocket_nodes(),
            }
        return context

    def render_to_response(self, context, **kwargs):
        response = super().render_to_response(context, **kwargs)
        # This page only, once converse.js is on it: it may connect to every node's chat port
        # (it follows a see-other-uri to the backup), and it sets style attributes from script.
        # See docs/operations.md, "Web Chat".
        if context.get("target") is not None:
            response._csp_update = webchat.CSP_RELAXATION | {"connect-src": webchat.websocket_sources()}
        return response
