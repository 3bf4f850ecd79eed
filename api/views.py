"""My API Tokens: the signed-in user's own page, where tokens are created (shown once) and revoked."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views import View

from api.models import ApiToken
from imp_admin.permissions import ConsolePermissionMixin

# Every role may hold tokens (each acts with its owner's permissions); a user without a role may not.
ANY_ROLE = "topology.view_cluster"

MAX_EXPIRY_DAYS = 365


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="What the token is for, such as the script that uses it.")
    expires_in_days = forms.IntegerField(
        label="Expires after (days)",
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        initial=90,
        help_text=f"1–{MAX_EXPIRY_DAYS} days.",
    )


class ApiTokensView(ConsolePermissionMixin, View):
    """Every user with a role manages their own tokens; a token acts with its owner's role."""

    permission_required = change_permission = ANY_ROLE

    template_name = "api/tokens.html"

    def render_page(self, request, form, new_token: str | None = None, status: int = 200):
        tokens = ApiToken.objects.filter(user=request.user)
        context = {"title": "My API Tokens", "form": form, "tokens": tokens, "new_token": new_token}
        return render(request, self.template_name, context, status=status)

    def get(self, request):
        return self.render_page(request, ApiTokenForm())

    def post(self, request):
        form = ApiTokenForm(request.POST)
        if not form.is_valid():
            return self.render_page(request, form, status=400)
        expires = timezone.now() + timedelta(days=form.cleaned_data["expires_in_days"])
        row, token = ApiToken.issue(request.user, form.cleaned_data["name"], expires)
        messages.success(request, f"Token {row.name} created. Copy it now: it is shown only this once.")
        response = self.render_page(request, ApiTokenForm(), new_token=token)
        response["Cache-Control"] = "no-store"
        return response


class ApiTokenRevokeView(ConsolePermissionMixin, View):
    permission_required = change_permission = ANY_ROLE
    http_method_names = ["post"]

    def post(self, request, pk: int):
        token = get_object_or_404(ApiToken, pk=pk, user=request.user)
        name = str(token)
        token.delete()
        messages.success(request, f"Token {name} revoked; requests with it are refused from now on.")
        return redirect("api_tokens")
