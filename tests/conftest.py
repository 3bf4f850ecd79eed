"""Personas and topology builders shared by every suite."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from imp_admin.roles import OPERATOR, READ_ONLY, SUPER_ADMINISTRATOR
from topology.choices import NodeRole
from topology.models import Cluster, Node, RedundancyGroup

PASSWORD = "correct-horse-battery-staple"


def _persona(username: str, role: str | None) -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def super_admin(db) -> User:
    return _persona("sadmin", SUPER_ADMINISTRATOR)


@pytest.fixture
def operator(db) -> User:
    return _persona("operator", OPERATOR)


@pytest.fixture
def read_only(db) -> User:
    return _persona("viewer", READ_ONLY)


def _client_for(user: User | None, enforce_csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def super_client(super_admin) -> Client:
    return _client_for(super_admin)


@pytest.fixture
def operator_client(operator) -> Client:
    return _client_for(operator)


@pytest.fixture
def read_only_client(read_only) -> Client:
    return _client_for(read_only)


@pytest.fixture
def anon_client(db) -> Client:
    return Client()


@pytest.fixture
def personas(super_admin, operator, read_only):
    """Clients by persona name, for tests that walk every role."""
    return {
        "anonymous": Client(),
        "read_only": _client_for(read_only),
        "operator": _client_for(operator),
        "super_admin": _client_for(super_admin),
    }


class TopologyBuilder:
    """Small helpers to build clusters, nodes and groups in tests."""

    port = 20000

    def cluster(self, name: str = "cluster1", cluster_id: str | None = None) -> Cluster:
        return Cluster.objects.create(name=name, cluster_id=cluster_id or name.lower(), domain="example.com")

    def node(self, name: str, cluster: Cluster, role: str = NodeRole.SUBSCRIBER) -> Node:
        TopologyBuilder.port += 1
        return Node.objects.create(
            name=name, cluster=cluster, role=role, ip_address="127.0.0.1", agent_port=TopologyBuilder.port
        )

    def group(self, name: str, server1: Node, server2: Node | None = None, ha: bool = False) -> RedundancyGroup:
        group = RedundancyGroup.objects.create(name=name, cluster=server1.cluster, ha_enabled=False)
        group.set_servers(server1, server2)
        if ha:
            group.ha_enabled = True
            group.full_clean()
            group.save()
        return group


@pytest.fixture
def build(db) -> TopologyBuilder:
    return TopologyBuilder()


@pytest.fixture
def demo_topology(db):
    """The reference use case: cluster1 with 1A+1B and 2A+2B in HA groups, cluster2 without HA."""
    from io import StringIO

    from django.core.management import call_command

    call_command("load_demo", admin_password="demo-admin-password", stdout=StringIO())
    return {node.name: node for node in Node.objects.all()}
