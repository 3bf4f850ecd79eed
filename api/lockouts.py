"""Locked Out: the user names and addresses refused sign-in now (django-axes), and unlocking.

The same list and the same unlock as the console's Locked Out page (``imp_admin.lockout``):
reading needs ``axes.view_accessattempt``, unlocking ``axes.delete_accessattempt`` (super
administrators), and each unlock is an audit trail entry under the token's owner.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.permissions import ConsolePermissionsMixin
from imp_admin import lockout

UNLOCK = "axes.delete_accessattempt"


class LockoutSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["user name", "address"], read_only=True)
    value = serializers.CharField(read_only=True, help_text="The user name or the address refused.")
    failures = serializers.IntegerField(read_only=True, help_text="Failed sign-ins in the cool-off time.")
    last_failure = serializers.DateTimeField(read_only=True)
    until = serializers.DateTimeField(read_only=True, help_text="When sign-in is allowed again without an unlock.")


class UnlockSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, allow_blank=False, max_length=150)
    ip_address = serializers.IPAddressField(required=False)

    def validate(self, attrs):
        if bool(attrs.get("username")) == bool(attrs.get("ip_address")):
            raise serializers.ValidationError("Give either a user name or an address to unlock.")
        return attrs


class UnlockResultSerializer(serializers.Serializer):
    cleared = serializers.IntegerField(help_text="Failed sign-in records cleared; 0: it was not locked out.")


class LockoutViewSet(ConsolePermissionsMixin, viewsets.ViewSet):
    """User names and addresses refused sign-in now, after too many failed sign-ins."""

    read_permission = "axes.view_accessattempt"
    action_permissions = {"unlock": UNLOCK}
    serializer_class = LockoutSerializer

    @extend_schema(responses={200: LockoutSerializer(many=True)})
    def list(self, request):
        """Every current lockout, user names first."""
        return Response(LockoutSerializer(lockout.current_lockouts(), many=True).data)

    @extend_schema(request=UnlockSerializer, responses={200: UnlockResultSerializer})
    @action(detail=False, methods=["post"])
    def unlock(self, request):
        """End a lockout now (a user name or an address); audited."""
        serializer = UnlockSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cleared = lockout.unlock(actor=request.user, **serializer.validated_data)
        return Response({"cleared": cleared}, status=status.HTTP_200_OK)
