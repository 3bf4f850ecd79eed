"""The console's permissions, per role (``imp_admin.roles``), applied to the API.

A view states the permission each of its actions needs, as the console's views do: reading
needs ``view_<model>``, and each change its own permission (``add_``, ``change_``,
``delete_``, or a named one such as ``topology.control_services``).
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

NO_SUCH_PERMISSION = "imp_admin.no_such_permission"


def model_perm(model, action: str) -> str:
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


class ConsolePermission(BasePermission):
    """Authenticated, and holding the permission ``view.required_permissions()`` names."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return request.user.has_perms(view.required_permissions(request))


class ConsolePermissionsMixin:
    """For viewsets: ``read_permission``, and per action the permission a change needs.

    ``action_permissions`` maps an action name (``create``, ``partial_update``, ``destroy``,
    or an ``@action``) to permissions; a change action not listed needs the model's
    ``add_``/``change_``/``delete_`` permission; an unknown change needs one no one holds.
    """

    read_permission: str | tuple[str, ...] | None = None
    action_permissions: dict[str, str | tuple[str, ...]] = {}
    permission_classes = [ConsolePermission]

    def required_permissions(self, request) -> tuple[str, ...]:
        model = getattr(getattr(self, "queryset", None), "model", None)
        action = getattr(self, "action", None)
        if action in self.action_permissions:
            perms = self.action_permissions[action]
        elif request.method in SAFE_METHODS:
            perms = self.read_permission or (model_perm(model, "view") if model else NO_SUCH_PERMISSION)
        elif model is not None and action in ("create", "partial_update", "update", "destroy"):
            perms = model_perm(model, {"create": "add", "destroy": "delete"}.get(action, "change"))
        else:
            perms = NO_SUCH_PERMISSION
        return (perms,) if isinstance(perms, str) else tuple(perms)
