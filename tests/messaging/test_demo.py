"""`load_demo --chat-databases`: the demo comes up with persistent chat on real databases."""

import uuid
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from psycopg import sql

from messaging.assignment import database_for_node
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


def load(prefix: str) -> str:
    out = StringIO()
    call_command(
        "load_demo", admin_password="demo-admin-pw", chat_databases=True, chat_database_prefix=prefix, stdout=out
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
