"""Messaging > Web Chat (the page, without a browser): who may open it, where converse.js is told
to connect (the node serving the user, from the topology), and the page's own CSP."""

from __future__ import annotations

import json
import re

import pytest

from messaging import webchat
from tests.conftest import chat_user

pytestmark = pytest.mark.django_db


def config_of(response) -> dict:
    return json.loads(re.search(r'id="webchat-config" type="application/json">(.*?)</script>', response.text)[1])


@pytest.fixture
def andy(build):
    cluster = build.cluster(cluster_id="imp1")
    node_a, node_b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    for node, port in ((node_a, 47001), (node_b, 47002)):
        node.agent_host, node.agent_port = "127.0.0.1", port
        node.save()
    return chat_user("andy", node_a)


def test_web_chat_needs_a_sign_in(anon_client, andy):
    response = anon_client.get("/messaging/web-chat/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_page_points_converse_at_the_node_serving_the_user(read_only_client, andy):
    response = read_only_client.get(f"/messaging/web-chat/?user={andy.pk}")
    assert response.status_code == 200
    assert config_of(response) == {
        "jid": andy.jid,
        "websocket_url": "ws://127.0.0.1:47001/",
        "domain": andy.jid.partition("@")[2],
        # the user's nodes, tried in turn when one does not answer at all (no group here)
        "addresses": ["ws://127.0.0.1:47001/"],
        # the nodes converse.js may be sent to by see-other-uri, and what the page calls them
        "nodes": {"ws://127.0.0.1:47001/": "imp-1a", "ws://127.0.0.1:47002/": "imp-1b"},
    }
    assert "password" not in config_of(response)
    policy = response["Content-Security-Policy"]
    assert "ws://127.0.0.1:47001/" in policy and "ws://127.0.0.1:47002/" in policy
    assert "script-src 'self';" in policy + ";" and "unsafe-eval" not in policy
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    # <style> elements: only converse's empty ones, by hash; style="" attributes: 'unsafe-inline'
    assert directives["style-src"].split() == ["'self'", *webchat.CONVERSE_STYLE_ELEMENT_HASHES]
    assert directives["style-src-attr"] == "'unsafe-inline'"


def test_during_a_failover_the_page_points_at_the_backup(read_only_client, andy):
    from topology.models import Node

    andy.active_node = Node.objects.get(name="imp-1b")
    andy.save()
    response = read_only_client.get(f"/messaging/web-chat/?user={andy.pk}")
    assert config_of(response)["websocket_url"] == "ws://127.0.0.1:47002/"
    assert config_of(response)["addresses"] == ["ws://127.0.0.1:47002/", "ws://127.0.0.1:47001/"]


def test_the_page_lists_the_users_nodes_home_and_peer_first(read_only_client, andy, build):
    from topology.models import Node

    build.group("subcluster1", Node.objects.get(name="imp-1a"), Node.objects.get(name="imp-1b"), ha=True)
    build.node("imp-2a", andy.assigned_node.cluster)  # not one of andy's nodes
    response = read_only_client.get(f"/messaging/web-chat/?user={andy.pk}")
    assert config_of(response)["addresses"] == ["ws://127.0.0.1:47001/", "ws://127.0.0.1:47002/"]
    assert len(config_of(response)["nodes"]) == 3


def test_without_a_user_the_page_keeps_the_console_policy(read_only_client, andy):
    response = read_only_client.get("/messaging/web-chat/")
    assert response.status_code == 200 and "webchat-config" not in response.text
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "Web Chat" in response.text


def test_the_user_page_links_to_web_chat(super_client, andy):
    from topology import credentials

    credentials.set_password(andy, "andy-chat-password")
    response = super_client.get(f"/system/users/{andy.pk}/")
    assert f"/messaging/web-chat/?user={andy.pk}" in response.text
    assert "Open Web Chat as this user" in response.text
