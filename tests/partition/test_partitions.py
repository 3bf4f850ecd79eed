"""Network partitions on the namespace test bed (``tests/partition/netns.py``), with clients
posting throughout: nothing acknowledged is lost or doubled, the group page shows what
happened, and the time from the cut to service on the backup is reported."""

from __future__ import annotations

import time

import pytest
from django.db import close_old_connections
from django.test import Client
from django.urls import reverse

from tests.partition.netns import wait_until
from tests.partition.world import Conversation, GroupOnBed
from topology.catalog import ServiceName, ServiceStatus
from topology.choices import HAReason, HAState
from topology.models import Node, Service

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def state(node: Node) -> tuple[str, str]:
    close_old_connections()
    node = Node.objects.get(pk=node.pk)
    return node.ha_state, node.ha_reason


def ready(group: GroupOnBed) -> bool:
    close_old_connections()
    normal = all(state(node)[0] == HAState.NORMAL for node in group.nodes.values())
    started = Service.objects.filter(
        node__in=group.nodes.values(), name=ServiceName.TEXT_CONFERENCE_MANAGER, status=ServiceStatus.STARTED
    ).count()
    return normal and started == 2


def start(group: GroupOnBed) -> Conversation:
    group.start_agent("a")
    group.start_agent("b")
    wait_until(lambda: ready(group), 60, "both nodes Normal with Text Conference Manager started")
    conversation = Conversation(group).start()
    wait_until(lambda: conversation.acked() >= 20, 30, "the first acknowledgements")
    return conversation


def group_page(group: GroupOnBed) -> str:
    client = Client()
    client.force_login(group.admin)
    response = client.get(reverse("topology:group_detail", args=[group.group.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_node_cut_from_everything_is_taken_over_after_the_heartbeat_timeout(group_on_bed):
    group = group_on_bed
    a, b = group.nodes["a"], group.nodes["b"]
    conversation = start(group)

    group.bed.link("a", up=False)
    cut_at = time.time()
    wait_until(lambda: state(b) == (HAState.RUNNING_IN_BACKUP_MODE, HAReason.PEER_DOWN), 30, "B in backup mode")
    assert state(a)[1] == HAReason.PEER_DOWN
    wait_until(lambda: conversation.acked_by_each_since(cut_at) >= 10, 60, "both users posting on B")
    conversation.finish()

    outcome = group.outcome(conversation.room, conversation.chatters, cut_at)
    print(outcome.line("cut A from everything"))
    assert outcome.lost == [] and outcome.doubled == [] and outcome.split_brain == []
    # The heartbeat timeout (3 s) passes before B serves A's room.
    assert outcome.service_gap is not None and outcome.service_gap >= group.params.heartbeat_timeout
    page = group_page(group)
    assert "Running in Backup Mode" in page and "Peer Down" in page
