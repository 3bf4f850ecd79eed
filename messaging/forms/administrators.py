"""Group Chat System Administrators (reference 4.5): Add New / Edit."""

from __future__ import annotations

from django import forms

from messaging.models import GroupChatAdministrator


class GroupChatAdministratorForm(forms.ModelForm):
    """Group Chat System Administrators: Add New / Edit (reference 4.5)."""

    class Meta:
        model = GroupChatAdministrator
        fields = ["cluster", "im_address", "nickname", "description"]
        widgets = {"im_address": forms.TextInput(attrs={"placeholder": "name@domain"})}
