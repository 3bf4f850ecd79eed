"""From two per-node persistent chat databases to one shared database, end to end: real node
agents (``manage.py run_node``), a real Celery worker, real PostgreSQL and Redis, every step
through the console's own views, and the result read back with the chat client.

Before the merge, redundancy group subcluster1 (imp-1a, imp-1b) has no high availability and
each node keeps its own database. Room ops@ops.example.com lived on 1A until its alias was
moved to 1B, so its history is split: the older part in 1A's database, the newer in 1B's.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from django.urls import reverse

from dbmerge.choices import CheckName, JobState
from dbmerge.models import MergeJob
from messaging.chat.client import ChatClient, ChatClientError
from messaging.chat.errors import ErrorCode
from messaging.models import ChatAlias
from tests.agent.conftest import state_of
from tests.agent.test_failover import control
from tests.chat.test_use_cases import whole_history
from tests.conftest import chat_password, wait_for
from tests.messaging.test_chat_settings_page import post_data
from tests.scenario import Scenario
from topology.catalog import ServiceName, ServiceStatus
from topology.choices import HAState
from topology.models import Node, Service

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOM = "ops@ops.example.com"
OLDER, NEWER = 2000, 1000  # messages of the room in 1A's and in 1B's database


@pytest.fixture
def before_the_merge(transactional_db, chat_db):
    """The topology, per-node databases assigned to 1A and 1B, an empty destination."""
    scenario = Scenario(suffix=f"-{uuid.uuid4().hex[:6]}")  # node names name the agents' channels on the shared bus
    cluster = scenario.cluster("cluster1", "imp1", persistent_chat=True)
    nodes = {key: scenario.node(key, cluster) for key in ("1a", "1b")}
    group = scenario.group("subcluster1", "1a", "1b")
    scenario.user("andy", "1a")
    scenario.user("bob", "1b")
    databases = {"1a": chat_db(), "1b": chat_db(), "destination": chat_db(schema=False)}
    entries = {key: database.external() for key, database in databases.items()}
    scenario.assign(entries["1a"], "1a")
    scenario.assign(entries["1b"], "1b")
    alias = ChatAlias.objects.create(alias="ops.example.com", node=nodes["1a"])
    return {
        "cluster": cluster,
        "group": group,
        "nodes": nodes,
        "databases": databases,
        "entries": entries,
        "alias": alias,
    }


def tc_is(node: Node, status: ServiceStatus) -> bool:
    return Service.objects.filter(node=node, name=ServiceName.TEXT_CONFERENCE_MANAGER, status=status).exists()


async def post_many(client: ChatClient, bodies: list[str], chunk: int = 100) -> list[str]:
    """Post ``bodies`` (a chunk at a time, concurrently); return them in the order of the ids
    the room gave them."""
    acked = []
    for start in range(0, len(bodies), chunk):
        part = bodies[start : start + chunk]
        acks = await asyncio.gather(*(client.post(ROOM, body) for body in part))
        acked += [(ack["msg_id"], body) for ack, body in zip(acks, part, strict=True)]
    return [body for _, body in sorted(acked)]


async def create_once_hosted(client: ChatClient, attempts: int = 100) -> None:
    """Create the room on the node its alias now points at (routers re-read aliases every second)."""
    for _ in range(attempts):
        try:
            await client.create(ROOM, subject="Operations")
            return
        except ChatClientError as exc:
            if exc.code not in (ErrorCode.ROOM_EXISTS, ErrorCode.ROOM_UNAVAILABLE):
                raise
        await asyncio.sleep(0.2)
    raise AssertionError(f"{ROOM} could not be created on {client.node}")


def chat_before_the_merge(nodes: dict[str, Node], alias: ChatAlias, operator_client) -> tuple[list[str], list[str]]:
    async def scenario():
        andy = ChatClient(
            "andy",
            "127.0.0.1",
            nodes["1a"].agent_port,
            password=chat_password("andy"),
            max_relogin_delay=1,
            give_up_after=30,
        )
        bob = ChatClient(
            "bob",
            "127.0.0.1",
            nodes["1b"].agent_port,
            password=chat_password("bob"),
            max_relogin_delay=1,
            give_up_after=30,
        )
        await andy.connect()
        await bob.connect()
        try:
            await andy.create(ROOM, subject="Operations")
            await andy.join(ROOM)
            older = await post_many(andy, [f"older {i} from andy on 1A" for i in range(OLDER)])
            # The administrator moves the alias to 1B; the room's new history goes to 1B's database.
            response = await asyncio.to_thread(
                operator_client.post,
                reverse("messaging:chatalias_edit", args=[alias.pk]),
                {"alias": alias.alias, "node": nodes["1b"].pk},
            )
            assert response.status_code == 302
            await create_once_hosted(bob)
            await bob.join(ROOM)
            newer = await post_many(bob, [f"newer {i} from bob on 1B" for i in range(NEWER)])
            return older, newer
        finally:
            await andy.close()
            await bob.close()

    return asyncio.run(scenario())


def room_counts(database) -> list[tuple]:
    with database.factory.connect(database.name) as conn:
        return conn.execute("SELECT room_jid, COUNT(*) FROM tc_messages GROUP BY room_jid").fetchall()


def validate(operator_client, entries) -> MergeJob:
    data = {
        "db_type": "postgres",
        "source_1": entries["1a"].pk,
        "source_2": entries["1b"].pk,
        "target": entries["destination"].pk,
        "feature_tables": ["tc"],
        "method": "copy",
        "action": "validate",
    }
    assert operator_client.post(reverse("dbmerge:mergejob_add"), data).status_code == 302
    job = MergeJob.objects.order_by("-pk").first()
    wait_for(
        lambda: MergeJob.objects.get(pk=job.pk).state not in (JobState.PENDING, JobState.VALIDATING),
        60,
        "the validation",
    )
    job.refresh_from_db()
    return job


def test_two_per_node_databases_merged_then_served_by_both_nodes_show_andy_the_rooms_whole_history(
    before_the_merge, agents, celery_worker, operator_client, super_client
):
    world = before_the_merge
    nodes, entries, databases = world["nodes"], world["entries"], world["databases"]
    one_a, one_b = nodes["1a"], nodes["1b"]
    for node in (one_a, one_b):
        agents(node.name)
    wait_for(lambda: all(tc_is(n, ServiceStatus.STARTED) for n in (one_a, one_b)), 60, "TC started on both nodes")

    older, newer = chat_before_the_merge(nodes, world["alias"], operator_client)
    assert room_counts(databases["1a"]) == [(ROOM, OLDER)]
    assert room_counts(databases["1b"]) == [(ROOM, NEWER)]

    # 1. Validation refuses while Text Conference Manager runs, naming each node.
    job = validate(operator_client, entries)
    assert job.state == JobState.VALIDATION_FAILED
    refused = {check.subject: check.message for check in job.checks.filter(name=CheckName.TC_STOPPED, passed=False)}
    assert refused == {
        node.name: f"Cisco XCP Text Conference Manager is running on {node}, which uses {entries[key]}; "
        "stop it in Control Center – Feature Services."
        for key, node in (("1a", one_a), ("1b", one_b))
    }
    page = operator_client.get(job.get_absolute_url()).content.decode()
    assert f"Cisco XCP Text Conference Manager is running on {one_a}" in page

    # 2. Stop TC on both nodes in Control Center – Feature Services; validation passes.
    for node in (one_a, one_b):
        assert "Stop of Cisco XCP Text Conference Manager" in control(operator_client, node, "stop")
    wait_for(lambda: all(tc_is(n, ServiceStatus.STOPPED) for n in (one_a, one_b)), 60, "TC stopped on both nodes")
    job = validate(operator_client, entries)
    assert job.state == JobState.VALIDATED, job.reason

    # 3. Merge Selected Tables.
    assert operator_client.post(reverse("dbmerge:mergejob_merge", args=[job.pk])).status_code == 302
    wait_for(
        lambda: MergeJob.objects.get(pk=job.pk).state not in (JobState.PENDING, JobState.VALIDATING, JobState.MERGING),
        120,
        "the merge",
    )
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED, job.reason
    messages = job.report["tables"]["tc_messages"]
    assert (messages["read"], messages["written"], messages["ids_remapped"]) == (OLDER + NEWER, OLDER + NEWER, NEWER)
    assert [room["room_jid"] for room in job.report["shared_rooms"]] == [ROOM]

    # 4. High availability for the group, and the destination assigned to both of its nodes.
    group = world["group"]
    response = super_client.post(
        reverse("topology:group_edit", args=[group.pk]),
        {"name": group.name, "description": "", "server1": one_a.pk, "server2": one_b.pk, "ha_enabled": "on"},
    )
    assert response.status_code == 302
    destination = entries["destination"]
    response = operator_client.post(
        reverse("messaging:chatsettings_edit"),
        post_data(world["cluster"], [one_a, one_b], {one_a.name: destination, one_b.name: destination}),
        follow=True,
    )
    assert f"Group chat and persistent chat settings of {world['cluster']} saved." in response.content.decode()

    # 5. Start TC on both nodes; both are Normal, serving from the merged database.
    for node in (one_a, one_b):
        assert "Start of Cisco XCP Text Conference Manager" in control(operator_client, node, "start")
    wait_for(
        lambda: all(tc_is(n, ServiceStatus.STARTED) and state_of(n.name)[0] == HAState.NORMAL for n in (one_a, one_b)),
        90,
        "both nodes Normal with TC started",
    )

    # 6. Andy signs in on 1A and reads the room's whole history: 1A's part, then 1B's.
    async def andy_reads():
        andy = ChatClient(
            "andy", "127.0.0.1", one_a.agent_port, password=chat_password("andy"), max_relogin_delay=1, give_up_after=30
        )
        await andy.connect()
        try:
            await andy.join(ROOM)
            return andy.node, await whole_history(andy, ROOM)
        finally:
            await andy.close()

    signed_in_on, history = asyncio.run(andy_reads())
    assert signed_in_on == one_a.name
    assert [m["msg_id"] for m in history] == list(range(1, OLDER + NEWER + 1))
    assert [m["body"] for m in history] == older + newer
    assert {m["from"] for m in history[:OLDER]} == {"andy@example.com"}
    assert {m["from"] for m in history[OLDER:]} == {"bob@example.com"}
