"""Every operation of the API for each persona, as the console's pages allow them.

Anonymous → 401; read-only → every read passes and every write is 403; an operator may do
what the Operator role allows (control services, Server Actions, chat settings, external
databases, merge jobs) and nothing else; a super administrator may do everything. The list of
operations comes from the published schema, so a new endpoint without an entry here fails.
"""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from drf_spectacular.generators import SchemaGenerator

from dbmerge.models import MergeJob
from messaging.models import ChatAlias, DatabaseType, ExternalDatabase, GroupChatAdministrator
from topology.choices import HAReason, HAState
from topology.models import AlarmRecipient, EndUser, HAAlarm, HATransition, ServerAction, Service

pytestmark = pytest.mark.django_db

# (method, path) → whether an operator may do it (reads: always).
OPERATOR_WRITES = {
    ("POST", "/api/alarm-recipients/"): False,
    ("PATCH", "/api/alarm-recipients/{id}/"): False,
    ("DELETE", "/api/alarm-recipients/{id}/"): False,
    ("POST", "/api/chat-aliases/"): True,
    ("PATCH", "/api/chat-aliases/{id}/"): True,
    ("DELETE", "/api/chat-aliases/{id}/"): True,
    ("POST", "/api/chat-database-assignments/"): True,
    ("PATCH", "/api/chat-settings/{id}/"): True,
    ("POST", "/api/chat-settings/{id}/set-to-defaults/"): True,
    ("POST", "/api/clusters/"): False,
    ("PATCH", "/api/clusters/{id}/"): False,
    ("DELETE", "/api/clusters/{id}/"): False,
    ("POST", "/api/end-users/"): False,
    ("PATCH", "/api/end-users/{id}/"): False,
    ("DELETE", "/api/end-users/{id}/"): False,
    ("POST", "/api/end-users/assign/"): False,
    ("POST", "/api/end-users/{id}/password/"): False,
    ("POST", "/api/external-databases/"): True,
    ("PATCH", "/api/external-databases/{id}/"): True,
    ("DELETE", "/api/external-databases/{id}/"): True,
    ("POST", "/api/external-databases/{id}/check/"): True,
    ("POST", "/api/external-databases/{id}/install-schema/"): True,
    ("POST", "/api/group-chat-administrators/"): True,
    ("PATCH", "/api/group-chat-administrators/{id}/"): True,
    ("DELETE", "/api/group-chat-administrators/{id}/"): True,
    ("POST", "/api/lockouts/unlock/"): False,
    ("POST", "/api/merge-jobs/"): True,
    ("POST", "/api/merge-jobs/preview/"): True,
    ("DELETE", "/api/merge-jobs/{id}/"): False,
    ("POST", "/api/merge-jobs/{id}/cancel/"): True,
    ("POST", "/api/merge-jobs/{id}/merge/"): True,
    ("PATCH", "/api/node-service-parameters/{id}/"): True,
    ("POST", "/api/nodes/"): False,
    ("PATCH", "/api/nodes/{id}/"): False,
    ("DELETE", "/api/nodes/{id}/"): False,
    ("POST", "/api/nodes/{id}/certificate/"): False,
    ("POST", "/api/redundancy-groups/"): False,
    ("PATCH", "/api/redundancy-groups/{id}/"): False,
    ("DELETE", "/api/redundancy-groups/{id}/"): False,
    ("POST", "/api/redundancy-groups/{id}/server-actions/"): True,
    ("DELETE", "/api/rooms/{id}/"): False,
    ("PATCH", "/api/service-parameters/{id}/"): True,
    ("POST", "/api/services/{id}/activate/"): True,
    ("POST", "/api/services/{id}/deactivate/"): True,
    ("POST", "/api/services/{id}/restart/"): True,
    ("POST", "/api/services/{id}/start/"): True,
    ("POST", "/api/services/{id}/stop/"): True,
    ("POST", "/api/verify-ha/"): True,
}


def operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "patch", "put", "delete"}
    )


OPERATIONS = operations()


@pytest.fixture
def world(build):
    """One of every object, and the id each ``{id}`` path of the API takes."""
    cluster = build.cluster("cluster1", "imp1")
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    group = build.group("subcluster1", a, b, ha=True)
    user = EndUser.objects.create(user_id="andy", jid="andy@example.com", assigned_node=a)
    database = ExternalDatabase(
        database_name="tcdb", db_type=DatabaseType.POSTGRES, username="tc", hostname="127.0.0.1", port=1
    )
    database.set_password("secret")
    database.save()
    other = ExternalDatabase.objects.create(
        database_name="tcdb2", db_type=DatabaseType.POSTGRES, username="tc", hostname="127.0.0.1", port=1
    )
    job = MergeJob.objects.create(
        db_type="postgres", source_1=database, source_2=other, target=other, database_name="tcdb2"
    )
    alias = ChatAlias.objects.create(alias="chat.example.org", node=a)
    admin = GroupChatAdministrator.objects.create(cluster=cluster, im_address="boss@example.com")
    action = ServerAction.objects.create(group=group, node=a, action="failover")
    transition = HATransition.objects.create(
        group=group, node=a, from_state=HAState.NORMAL, to_state=HAState.FAILING_OVER, reason=HAReason.ON_ADMIN_REQUEST
    )
    alarm = HAAlarm.objects.create(
        name="UC_SRM-2-SRMFailover", group=group, from_node=a, to_node=b, reason=HAReason.ON_ADMIN_REQUEST
    )
    recipient = AlarmRecipient.objects.create(email="oncall@example.com")
    ids = {
        "alarm-recipients": recipient.pk,
        "audit": LogEntry.objects.first().pk,
        "chat-aliases": alias.pk,
        "chat-settings": cluster.pk,
        "clusters": cluster.pk,
        "end-users": user.pk,
        "external-databases": database.pk,
        "group-chat-administrators": admin.pk,
        "ha-transitions": transition.pk,
        "merge-jobs": job.pk,
        "node-service-parameters": a.pk,
        "nodes": b.pk,
        "redundancy-groups": group.pk,
        "rooms": "room@conference.example.com",
        "server-actions": action.pk,
        "service-parameters": cluster.pk,
        "services": Service.objects.filter(node=a).first().pk,
        "srm-alarms": alarm.pk,
    }
    return ids


def url_of(path: str, ids: dict) -> str:
    if "{id}" not in path:
        return path
    return path.replace("{id}", str(ids[path.split("/")[2]]))


def call(client, method: str, url: str):
    if method == "GET":
        return client.get(url)
    return getattr(client, method.lower())(url, {}, format="json")


def test_every_write_has_an_operator_expectation():
    writes = {op for op in OPERATIONS if op[0] != "GET"}
    assert writes == set(OPERATOR_WRITES)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_for_each_persona(method, path, world, api_personas):
    url = url_of(path, world)
    # Changes first by those who may not, so a later allowed change finds the objects intact.
    anonymous = call(api_personas["anonymous"], method, url)
    assert anonymous.status_code == 401, anonymous.content
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.json()["detail"]

    viewer = call(api_personas["read_only"], method, url)
    if method == "GET":
        assert viewer.status_code < 500 and viewer.status_code not in (401, 403), viewer.content
    else:
        assert viewer.status_code == 403, viewer.content
        assert viewer.json()["detail"] == "Your role does not allow this."

    operator = call(api_personas["operator"], method, url)
    if method == "GET" or OPERATOR_WRITES[(method, path)]:
        assert operator.status_code < 500 and operator.status_code not in (401, 403), operator.content
    else:
        assert operator.status_code == 403, operator.content

    admin = call(api_personas["super_admin"], method, url)
    assert admin.status_code < 500 and admin.status_code not in (401, 403), admin.content


def test_api_root_lists_the_endpoints_to_every_role_and_asks_anonymous_for_a_token(api_personas):
    anonymous = api_personas["anonymous"].get("/api/")
    assert anonymous.status_code == 401, anonymous.content
    for persona in ("read_only", "operator", "super_admin"):
        root = api_personas[persona].get("/api/")
        assert root.status_code == 200, (persona, root.content)
        assert root.json()["redundancy-groups"] == "http://testserver/api/redundancy-groups/"
