"""`load_demo --chat-databases`: the demo comes up with persistent chat on real databases."""

import uuid
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from psycopg import sql

from messaging.database_assignment import database_for_node
from messaging.models import ChatSettings
from messaging.tc.schema import Dialect, postgres_actual, verify
from tests.conftest import PG_ADMIN
from topology.models import Cluster, Node

pytestmark = pytest.mark.django_db


@pytest.fixture
def prefix():
    value = f"imp_t{uuid.uuid4().hex[:6]}_"
    yield value
    with psycopg.connect(dbname="postgres", autocommit=True, **PG_ADMIN) as conn:
        names = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (value + "%",)).fetchall()
        for (name,) in names:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def load(prefix: str, merge_story: int = 0) -> str:
    out = StringIO()
    call_command(
        "load_demo",
        admin_password="demo-admin-pw",
        chat_databases=True,
        chat_database_prefix=prefix,
        merge_story=merge_story,
        stdout=out,
    )
    return out.getvalue()


def test_demo_groups_share_one_database_and_nodes_without_ha_have_their_own(prefix):
    output = load(prefix)
    nodes = {node.name: node for node in Node.objects.all()}
    assert database_for_node(nodes["imp-1a"]) == database_for_node(nodes["imp-1b"])
    assert database_for_node(nodes["imp-2a"]) == database_for_node(nodes["imp-2b"])
    assert database_for_node(nodes["imp-1a"]) != database_for_node(nodes["imp-2a"])
    assert database_for_node(nodes["imp-c2a"]) != database_for_node(nodes["imp-c2b"])
    assert f"{prefix}subcluster1@127.0.0.1:5432: imp-1a, imp-1b" in output
    assert all(ChatSettings.for_cluster(cluster).enable_persistent_chat for cluster in Cluster.objects.all())
    with psycopg.connect(dbname=f"{prefix}subcluster1", **PG_ADMIN) as conn:
        assert verify(Dialect.POSTGRES, postgres_actual(conn.cursor())) == []


def test_loading_the_demo_twice_reuses_its_databases(prefix):
    load(prefix)
    load(prefix)
    nodes = Node.objects.all()
    assert len({database_for_node(node).pk for node in nodes}) == 4


def test_the_merge_story_leaves_subcluster2_before_ha_with_a_history_per_node_that_merges(prefix):
    from dbmerge.engines import postgres as engine
    from dbmerge.validation import engine_database
    from messaging.models import ExternalDatabase
    from messaging.tc.stanzas import ChatMessage
    from topology.models import RedundancyGroup

    output = load(prefix, merge_story=2000)
    nodes = {node.name: node for node in Node.objects.all()}
    assert not RedundancyGroup.objects.get(name="subcluster2").ha_enabled
    assert RedundancyGroup.objects.get(name="subcluster1").ha_enabled
    one, two = database_for_node(nodes["imp-2a"]), database_for_node(nodes["imp-2b"])
    assert one != two and {one.database_name, two.database_name} == {f"{prefix}imp_2a", f"{prefix}imp_2b"}
    assert f"{one}: history of imp-2a (2000 messages)" in output
    assert f"{prefix}subcluster2_merged@127.0.0.1:5432: empty, the destination of their merge" in output

    def counts(name):
        with psycopg.connect(dbname=name, **PG_ADMIN) as conn:
            return [
                conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                for t in ("tc_rooms", "tc_messages", "tc_msgarchive")
            ]

    assert counts(one.database_name) == counts(two.database_name) == [10, 2000, 2000]
    with psycopg.connect(dbname=one.database_name, **PG_ADMIN) as conn:
        room, msg_id, stamp, stanza = conn.execute(
            "SELECT room_jid, msg_id, stamp, msg FROM tc_messages ORDER BY room_jid, msg_id LIMIT 1"
        ).fetchone()
    # Stored as the Text Conference Manager stores them: it reads them back as Catherine's.
    message = ChatMessage.from_row(room, msg_id, stamp, stanza)
    assert (message.sender, message.body) == ("catherine@example.com", f"catherine in {room.split('@')[0]}, message 1")

    # And the two merge into the registered destination: the union, archive ids moved past each other.
    destination = ExternalDatabase.objects.get(database_name=f"{prefix}subcluster2_merged")
    report = engine.merge(engine_database(destination), [engine_database(one), engine_database(two)])
    assert counts(destination.database_name) == [20, 4000, 4000]
    assert report.as_dict()["tables"]["tc_msgarchive"]["ids_remapped"] == 2000

    # Loading again keeps the history rather than adding to it.
    load(prefix, merge_story=2000)
    assert counts(one.database_name) == [10, 2000, 2000]


def test_the_demo_users_have_the_chat_passwords_it_prints(demo_topology):
    from topology import credentials
    from topology.models import EndUser

    out = StringIO()
    call_command("load_demo", admin_password="demo-admin-pw", stdout=out)
    assert "Chat passwords of the demo users: andy / andy-demo, bob / bob-demo," in out.getvalue()
    for user in EndUser.objects.all():
        assert credentials.check_password(user, f"{user.user_id}-demo"), user
