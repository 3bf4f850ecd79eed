"""Permission checks, in one place.

Every URL already requires login (``LoginRequiredMiddleware``). A console view states the
permission it needs to be seen and, separately, the permission a POST needs, so a
read-only user can open every page and gets 403 on every change.
"""

from __future__ import annotations

from django.contrib.auth.mixins import PermissionRequiredMixin

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ConsolePermissionMixin(PermissionRequiredMixin):
    """``permission_required`` guards reading; ``change_permission`` guards every POST."""

    permission_required: str | tuple[str, ...] = ()
    change_permission: str | tuple[str, ...] | None = None
    raise_exception = False  # anonymous visitors go to the login page, others get 403

    def get_permission_required(self) -> tuple[str, ...]:
        if self.request.method in SAFE_METHODS:
            perms = self.permission_required
        else:
            perms = self.change_permission
            if perms is None:
                # A view that declares no change permission accepts no change.
                return ("imp_admin.no_such_permission",)
        return (perms,) if isinstance(perms, str) else tuple(perms)
