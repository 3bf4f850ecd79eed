"""Saving group chat settings, and what an administrator must do for them to apply."""

from __future__ import annotations

from django.db import transaction

from messaging.models import ChatAlias, ChatSettings
from messaging.models.aliases import system_alias
from topology.models import Cluster, Node
from topology.observed import TEXT_CONFERENCE_MANAGER


def restart_notice(cluster: Cluster, router: bool = False, only: list[Node] | None = None) -> str:
    """The banner after a change: which service to restart on which nodes (reference 4); every
    node of the cluster unless the change concerns ``only`` some (their database assignment)."""
    if only is None:
        nodes = ", ".join(Node.objects.filter(cluster=cluster).order_by("name").values_list("name", flat=True))
    else:
        nodes = ", ".join(sorted(node.name for node in only))
    services = f"{TEXT_CONFERENCE_MANAGER}{' and Cisco XCP Router' if router else ''}"
    return (
        f"Restart {services} on these nodes for the change to apply: {nodes or 'none yet'} "
        "(Serviceability > Control Center – Feature Services)."
    )


@transaction.atomic
def save_settings(settings: ChatSettings) -> ChatSettings:
    """Validate and save; turning off automatic alias management keeps each node's system
    alias as a primary alias the administrator now manages (reference 4.4)."""
    settings.full_clean()
    before = ChatSettings.objects.filter(pk=settings.pk).values_list("auto_manage_aliases", flat=True).first()
    was_managed = True if before is None else before
    settings.save()
    if was_managed and not settings.auto_manage_aliases:
        for node in Node.objects.filter(cluster=settings.cluster).select_related("cluster"):
            alias = system_alias(node)
            if not ChatAlias.objects.filter(alias=alias).exists():
                has_primary = ChatAlias.objects.filter(node=node, is_primary=True).exists()
                ChatAlias.objects.create(alias=alias, node=node, is_primary=not has_primary)
    return settings
