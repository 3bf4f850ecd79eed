"""Django admin for sign-in lockouts: deleting an access attempt is an audited unlock."""

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin

from imp_admin import lockout


@admin.register(AccessAttempt)
class AuditedAccessAttemptAdmin(AccessAttemptAdmin):
    def delete_model(self, request, obj):
        self.delete_queryset(request, AccessAttempt.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        for username, ip_address in set(queryset.values_list("username", "ip_address")):
            if username:
                lockout.unlock(actor=request.user, username=username)
            else:
                lockout.unlock(actor=request.user, ip_address=ip_address)
