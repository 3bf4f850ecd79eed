"""Group Chat System Administrators (Messaging > Group Chat System Administrators, reference 4.5).

A group chat system administrator is a user, named by IM address, whom the Text Conference
Manager of every node of the cluster treats as an administrator of group chat. With "Allow
only group chat system administrators to create persistent chat rooms" on, they are the only
users who may create persistent rooms. The list counts only while the cluster's "Enable Group
Chat System Administrators" (ChatSettings) is on.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

from topology.models.topology import hostname_validator

IM_ADDRESS_MESSAGE = "Enter the IM address as name@domain, such as admin@example.com."
IM_ADDRESS_TAKEN_MESSAGE = "{address} is already a group chat system administrator of {cluster}."
# Characters a JID's local part may not hold (RFC 7622), besides white space.
_LOCALPART = re.compile(r"^[^\s\"&'/:<>@]{1,1023}$")


def validate_im_address(value: str) -> None:
    """name@domain, the domain a DNS name."""
    local, at, domain = (value or "").partition("@")
    if not at or not _LOCALPART.match(local):
        raise ValidationError(IM_ADDRESS_MESSAGE, code="invalid")
    try:
        hostname_validator(domain)
    except ValidationError:
        raise ValidationError(IM_ADDRESS_MESSAGE, code="invalid") from None


class GroupChatAdministrator(models.Model):
    """A group chat system administrator of one cluster; written by the console, read by the
    Text Conference Managers of the cluster's nodes (through their directory)."""

    cluster = models.ForeignKey(
        "topology.Cluster",
        on_delete=models.CASCADE,
        related_name="group_chat_administrators",
        help_text="The cluster whose Text Conference Managers treat this user as a group chat system administrator.",
    )
    im_address = models.CharField(
        "IM Address",
        max_length=3071,
        validators=[validate_im_address],
        help_text="The user's IM address (JID), name@domain; stored in lower case.",
    )
    nickname = models.CharField("Nickname", max_length=255, blank=True)
    description = models.CharField("Description", max_length=128, blank=True)

    class Meta:
        ordering = ["cluster__name", "im_address"]
        verbose_name = "group chat system administrator"
        constraints = [
            models.UniqueConstraint(
                "cluster",
                Lower("im_address"),
                name="%(app_label)s_%(class)s_unique_im_address_per_cluster",
                violation_error_message="This IM address is already a group chat system administrator of the cluster.",
            ),
        ]

    def __str__(self) -> str:
        return self.im_address

    def get_absolute_url(self) -> str:
        return reverse("messaging:groupchatadministrator_edit", args=[self.pk])

    def clean(self) -> None:
        if self.im_address:
            self.im_address = self.im_address.strip().lower()
        if not self.im_address or not self.cluster_id:
            return
        taken = GroupChatAdministrator.objects.filter(cluster_id=self.cluster_id, im_address__iexact=self.im_address)
        if taken.exclude(pk=self.pk).exists():
            raise ValidationError(
                {"im_address": IM_ADDRESS_TAKEN_MESSAGE.format(address=self.im_address, cluster=self.cluster)}
            )


def administrators_by_cluster() -> dict[int, frozenset[str]]:
    """Cluster pk → IM addresses of its group chat system administrators, for every cluster
    whose "Enable Group Chat System Administrators" is on (a cluster absent: it is off)."""
    from messaging.models.chat_settings import ChatSettings

    enabled = list(ChatSettings.objects.filter(enable_system_administrators=True).values_list("cluster_id", flat=True))
    found: dict[int, set[str]] = {cluster_id: set() for cluster_id in enabled}
    rows = GroupChatAdministrator.objects.filter(cluster_id__in=enabled).values_list("cluster_id", "im_address")
    for cluster_id, address in rows:
        found[cluster_id].add(address.lower())
    return {cluster_id: frozenset(addresses) for cluster_id, addresses in found.items()}
