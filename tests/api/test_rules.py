"""The API keeps the console's rules: the same validation and messages, the same refusals,
passwords never returned, every change in the audit trail under the token's owner, and
work handed to workers and agents answered with 202 and the resource to follow."""

from __future__ import annotations

from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.utils import timezone

from api.models import ApiToken, hash_token
from messaging.forms.databases import PASSWORD_MISMATCH, SSL_NOT_FOR_POSTGRES
from messaging.models import DatabaseType, ExternalDatabase, PersistentChatAssignment
from tests.conftest import PASSWORD
from topology.catalog import ServiceName
from topology.choices import HAState
from topology.models import Node, RedundancyGroup, ServerAction, Service
from topology.models.topology import HA_NEEDS_TWO_NODES_MESSAGE, SAME_NODE_TWICE_MESSAGE

from .conftest import token_client

pytestmark = pytest.mark.django_db


def test_group_rules_answer_with_the_pages_messages(api, build):
    cluster = build.cluster()
    a = build.node("imp-1a", cluster)
    response = api.post("/api/redundancy-groups/", {"name": "sub1", "server1": a.pk, "ha_enabled": True}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"ha_enabled": [HA_NEEDS_TWO_NODES_MESSAGE]}
    assert HA_NEEDS_TWO_NODES_MESSAGE in response.json()["detail"]
    response = api.post("/api/redundancy-groups/", {"name": "sub1", "server1": a.pk, "server2": a.pk}, format="json")
    assert response.json()["errors"] == {"server2": [SAME_NODE_TWICE_MESSAGE]}
    assert not RedundancyGroup.objects.exists()


def test_enable_high_availability_on_a_group(api, build):
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    created = api.post("/api/redundancy-groups/", {"name": "sub1", "server1": a.pk, "server2": b.pk}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["cluster"] == cluster.pk
    assert [s["name"] for s in created.json()["servers"]] == ["imp-1a", "imp-1b"]
    changed = api.patch(f"/api/redundancy-groups/{created.json()['id']}/", {"ha_enabled": True}, format="json")
    assert changed.status_code == 200, changed.content
    assert RedundancyGroup.objects.get().ha_enabled
    assert [n.group_position for n in Node.objects.order_by("name")] == [1, 2]


def test_deleting_a_group_releases_its_nodes(api, build):
    cluster = build.cluster()
    group = build.group("sub1", build.node("imp-1a", cluster), build.node("imp-1b", cluster), ha=True)
    assert api.delete(f"/api/redundancy-groups/{group.pk}/").status_code == 204
    assert list(Node.objects.values_list("redundancy_group", "group_position")) == [(None, None), (None, None)]


def test_external_database_password_is_write_only_and_rules_are_the_forms(api):
    body = {"database_name": "tcdb", "db_type": "postgres", "username": "tc", "hostname": "db1.example.com"}
    missing = api.post("/api/external-databases/", body, format="json")
    assert missing.status_code == 400
    assert "password" in missing.json()["errors"]
    mismatch = api.post("/api/external-databases/", {**body, "password": "a", "confirm_password": "b"}, format="json")
    assert mismatch.json()["errors"] == {"confirm_password": [PASSWORD_MISMATCH]}
    ssl = api.post("/api/external-databases/", {**body, "password": "pw", "enable_ssl": True}, format="json")
    assert ssl.json()["errors"] == {"enable_ssl": [SSL_NOT_FOR_POSTGRES]}

    created = api.post("/api/external-databases/", {**body, "password": "s3cret-pw"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["port"] == 5432  # the type's default port, as on the page
    assert "s3cret-pw" not in created.content.decode()
    assert "password" not in created.json()
    database = ExternalDatabase.objects.get()
    assert database.get_password() == "s3cret-pw"
    assert "s3cret-pw" not in database.password_encrypted

    # A change without a password keeps the stored one.
    changed = api.patch(f"/api/external-databases/{database.pk}/", {"username": "tc2"}, format="json")
    assert changed.status_code == 200, changed.content
    database.refresh_from_db()
    assert (database.username, database.get_password()) == ("tc2", "s3cret-pw")
    listed = api.get("/api/external-databases/").content.decode()
    assert "s3cret-pw" not in listed and "password_encrypted" not in listed


def test_every_change_is_in_the_audit_trail_under_the_tokens_owner(api, super_admin, build):
    cluster = build.cluster()
    response = api.patch(f"/api/clusters/{cluster.pk}/", {"description": "changed by a script"}, format="json")
    assert response.status_code == 200
    entry = LogEntry.objects.get_for_object(cluster).order_by("-pk").first()
    assert entry.actor == super_admin
    assert entry.changes_dict["description"] == ["", "changed by a script"]
    audit = api.get("/api/audit/", {"q": "cluster1"}).json()["results"]
    assert audit[0]["actor"] == super_admin.username


def test_service_control_answers_202_with_the_service_to_follow(build, api_personas):
    node = build.node("imp-1a", build.cluster())
    router = Service.objects.get(node=node, name=ServiceName.XCP_ROUTER)
    response = api_personas["operator"].post(f"/api/services/{router.pk}/stop/")
    assert response.status_code == 202, response.content
    assert response["Location"].endswith(f"/api/services/{router.pk}/")
    assert response.json()["desired_state"] == "stopped"
    assert response.json()["request_pending"] is True
    assert response.json()["stopped_with_it"] == ["Cisco XCP Text Conference Manager"]
    tc = Service.objects.get(node=node, name=ServiceName.TEXT_CONFERENCE_MANAGER)
    assert tc.desired_state == "stopped"
    entry = LogEntry.objects.get_for_object(router).order_by("-pk").first()
    assert entry.actor.username == "operator"


def test_start_of_a_service_not_activated_is_refused_with_the_pages_reason(api, build):
    node = build.node("imp-1a", build.cluster())
    tc = Service.objects.get(node=node, name=ServiceName.TEXT_CONFERENCE_MANAGER)
    assert api.post(f"/api/services/{tc.pk}/deactivate/").status_code == 202
    refused = api.post(f"/api/services/{tc.pk}/start/")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "Cisco XCP Text Conference Manager is not activated on imp-1a; "
        "activate it on the Service Activation page first."
    )
    router = Service.objects.get(node=node, name=ServiceName.XCP_ROUTER)
    assert api.post(f"/api/services/{router.pk}/activate/").status_code == 409


def test_server_action_refused_while_not_offered_and_202_when_it_is(api, build):
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    group = build.group("sub1", a, b, ha=True)
    refused = api.post(f"/api/redundancy-groups/{group.pk}/server-actions/", {"node": a.pk, "action": "fallback"})
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith("Fallback is not offered while imp-1a is")
    now = timezone.now()
    Node.objects.update(ha_state=HAState.NORMAL, heartbeat_expires_at=now + timedelta(minutes=1), last_heartbeat=now)
    accepted = api.post(
        f"/api/redundancy-groups/{group.pk}/server-actions/", {"node": a.pk, "action": "failover"}, format="json"
    )
    assert accepted.status_code == 202, accepted.content
    assert accepted.json()["status"] == "pending"
    followed = api.get(accepted["Location"])
    assert followed.json()["action"] == "failover"
    assert ServerAction.objects.get().node == a
    again = api.post(
        f"/api/redundancy-groups/{group.pk}/server-actions/", {"node": a.pk, "action": "failover"}, format="json"
    )
    assert again.status_code == 409
    panel = api.get(f"/api/redundancy-groups/{group.pk}/ha/").json()
    assert panel["pending"]["id"] == accepted.json()["id"]


def test_assignments_keep_both_nodes_of_a_ha_group_on_one_database(api, build):
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("sub1", a, b, ha=True)
    first, second = (
        ExternalDatabase.objects.create(
            database_name=name, db_type=DatabaseType.POSTGRES, username="u", hostname="h", port=5432
        )
        for name in ("db1", "db2")
    )
    split = api.post(
        "/api/chat-database-assignments/",
        {"assignments": [{"node": a.pk, "database": first.pk}, {"node": b.pk, "database": second.pk}]},
        format="json",
    )
    assert split.status_code == 400
    assert "must use the same external" in split.json()["errors"]["assignments.0.database"][0]
    shared = api.post(
        "/api/chat-database-assignments/",
        {"assignments": [{"node": a.pk, "database": first.pk}, {"node": b.pk, "database": first.pk}]},
        format="json",
    )
    assert shared.status_code == 200, shared.content
    assert [row["database"] for row in api.get("/api/chat-database-assignments/").json()] == [first.pk, first.pk]
    refused = api.delete(f"/api/external-databases/{first.pk}/")
    assert refused.status_code == 409
    assert "Unassign it" in refused.json()["detail"]


def test_tokens_are_stored_hashed_expire_record_use_and_can_be_revoked(super_admin, build):
    build.cluster()
    row, token = ApiToken.issue(super_admin, "script")
    assert row.key_hash == hash_token(token) and token not in (row.key_hash, row.key_prefix)
    client = token_client(None)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/clusters/").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = client.get("/api/clusters/")
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]
    row.delete()
    assert client.get("/api/clusters/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer imp_not-a-token")
    assert client.get("/api/clusters/").json() == {"detail": "Invalid token."}


def test_tokens_are_created_shown_once_and_revoked_on_my_api_tokens(client, read_only):
    client.force_login(read_only)
    page = client.post("/account/api-tokens/", {"name": "nightly export", "expires_in_days": 30})
    assert page.status_code == 200
    token = page.context["new_token"]
    assert token.startswith("imp_") and token in page.content.decode()
    row = ApiToken.objects.get(user=read_only)
    assert row.expires_at > timezone.now() + timedelta(days=29)
    again = client.get("/account/api-tokens/").content.decode()
    assert token not in again and row.key_prefix in again
    api = token_client(None)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/clusters/").status_code == 200
    assert api.post("/api/clusters/", {}, format="json").status_code == 403  # a read-only user's token
    client.post(f"/account/api-tokens/{row.pk}/revoke/")
    assert not ApiToken.objects.exists()
    assert api.get("/api/clusters/").status_code == 401


def test_a_user_cannot_revoke_anothers_token(client, read_only, operator):
    row, _ = ApiToken.issue(operator, "theirs")
    client.force_login(read_only)
    assert client.post(f"/account/api-tokens/{row.pk}/revoke/").status_code == 404
    assert ApiToken.objects.filter(pk=row.pk).exists()


def test_session_authentication_needs_csrf_for_changes(super_admin, build):
    from django.test import Client

    cluster = build.cluster()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(super_admin)
    assert browser.get("/api/clusters/").status_code == 200
    refused = browser.patch(f"/api/clusters/{cluster.pk}/", {"description": "x"}, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert browser.get("/api/schema/").status_code == 200
    assert browser.get("/api/docs/").status_code == 200


def test_throttling_is_per_token(monkeypatch, super_admin, build):
    from api.throttling import TokenRateThrottle

    build.cluster()
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/minute"})
    first, second = token_client(super_admin), token_client(super_admin)
    assert [first.get("/api/clusters/").status_code for _ in range(3)] == [200, 200, 200]
    limited = first.get("/api/clusters/")
    assert limited.status_code == 429
    assert "Retry-After" in limited and limited.json()["detail"].startswith("Request was throttled")
    assert second.get("/api/clusters/").status_code == 200  # another token of the same user


def test_json_a_form_cannot_send_gets_a_field_error_not_a_server_error(api, build):
    """Found by schemathesis: a list where the form expects one value crashed the IP address field."""
    cluster = build.cluster()
    body = {"name": "imp-9", "ip_address": ["10.0.0.1"], "cluster": cluster.pk, "agent_port": 30000}
    response = api.post("/api/nodes/", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"ip_address": ["Send one value here, not a list or an object."]}
    response = api.post("/api/nodes/", {**body, "ip_address": 12}, format="json")
    assert response.status_code == 400 and response.json()["errors"]["ip_address"] == [
        "Enter a valid IPv4 or IPv6 address."
    ]


@pytest.mark.parametrize("segment", ["null,null", "1.5", "false", "-3"])
def test_an_id_that_is_not_a_number_is_a_json_404(api, build, segment):
    """Found by schemathesis: a non-numeric id reached the ORM (500) or Django's HTML 404."""
    build.cluster()
    for path in (f"/api/services/{segment}/start/", f"/api/redundancy-groups/{segment}/ha/", f"/api/audit/{segment}/"):
        response = api.post(path) if path.endswith("start/") else api.get(path)
        assert response.status_code == 404, path
        assert response.json() == {"detail": "Not found."}


def test_merge_preview_is_a_job_to_follow_and_postgres_only(api):
    databases = [
        ExternalDatabase.objects.create(
            database_name=f"tc{i}", db_type=DatabaseType.POSTGRES, username="u", hostname="127.0.0.1", port=5432
        )
        for i in range(3)
    ]
    body = {"db_type": "postgres", "source_1": databases[0].pk, "source_2": databases[1].pk, "target": databases[2].pk}
    accepted = api.post("/api/merge-jobs/preview/", body, format="json")
    assert accepted.status_code == 202, accepted.content
    assert accepted.json()["kind"] == "preview" and accepted.json()["state"] == "pending"
    assert accepted["Location"].endswith(f"/api/merge-jobs/{accepted.json()['id']}/")
    same = api.post("/api/merge-jobs/preview/", {**body, "source_2": databases[0].pk}, format="json")
    assert same.status_code == 400
    assert same.json()["errors"]["source_2"] == [
        "Source database 1 and Source database 2 must be two different databases."
    ]
    running = api.delete(f"/api/merge-jobs/{accepted.json()['id']}/")
    assert running.status_code == 409 and "Cancel it first" in running.json()["detail"]


def test_room_report_and_room_delete_through_the_api(api, build, postgres, super_admin):
    from tests.chat.conftest import external_database, install_schema

    cluster = build.cluster()
    node = build.node("imp-1a", cluster)
    name = postgres.database("imp_api_rooms")
    install_schema(postgres, name)
    with postgres.connect(name) as conn:
        conn.execute(
            "INSERT INTO tc_rooms (room_jid, creator_jid, subject, type, config, spacket, start_msg_id, next_msg_id) "
            "VALUES ('ops@conference.example.com', 'andy@example.com', 'Ops', 'persistent', '', '', 1, 1)"
        )
    database = external_database(name)
    PersistentChatAssignment.objects.create(node=node, database=database)
    rooms = api.get("/api/rooms/", {"database": database.pk}).json()
    assert [room["room_jid"] for room in rooms["results"]] == ["ops@conference.example.com"]
    room = api.get("/api/rooms/ops@conference.example.com/", {"database": database.pk}).json()
    assert room["subject"] == "Ops"
    assert api.delete(f"/api/rooms/ops@conference.example.com/?database={database.pk}").status_code == 204
    assert api.get("/api/rooms/", {"database": database.pk}).json()["results"] == []
    assert LogEntry.objects.filter(actor=super_admin, object_pk=str(database.pk)).exists()


def test_an_end_users_chat_password_is_set_through_the_api_with_the_pages_rules_and_never_returned(api, build):
    from topology import credentials
    from topology.models import EndUser

    node = build.node("imp-1a", build.cluster())
    user = EndUser.objects.create(user_id="andy", jid="andy@example.com", assigned_node=node)
    url = f"/api/end-users/{user.pk}/password/"

    differ = api.post(url, {"password": "andy-secret-1", "confirmation": "andy-secret-2"}, format="json")
    assert differ.status_code == 400
    assert differ.json()["errors"] == {"confirmation": ["The two passwords differ; type the same password twice."]}
    short = api.post(url, {"password": "short", "confirmation": "short"}, format="json")
    assert short.status_code == 400 and "password" in short.json()["errors"]
    assert not EndUser.objects.get(pk=user.pk).has_password

    done = api.post(url, {"password": "andy-secret-1", "confirmation": "andy-secret-1"}, format="json")
    assert done.status_code == 204
    user.refresh_from_db()
    assert credentials.check_password(user, "andy-secret-1")
    shown = api.get(f"/api/end-users/{user.pk}/").json()
    assert shown["password_set_at"] is not None and shown["failed_sign_ins"] == 0
    assert "andy-secret-1" not in str(shown) and "password" not in shown
    assert "andy-secret-1" not in str(LogEntry.objects.values_list("changes", flat=True))


def test_a_nodes_xmpp_port_is_set_and_its_certificate_shown_without_its_key(api, build, settings, tmp_path):
    from topology import certificates

    settings.DEMO_CA_DIR = str(tmp_path)
    node = build.node("imp-1a", build.cluster())
    changed = api.patch(f"/api/nodes/{node.pk}/", {"xmpp_port": 5299}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["xmpp_port"] == 5299 and changed.json()["certificate"] is None

    certificates.ensure_certificate(Node.objects.get(pk=node.pk))
    shown = api.get(f"/api/nodes/{node.pk}/").json()
    assert shown["certificate"]["subject"] and not shown["certificate"]["expired"]
    assert "imp-1a" in " ".join(shown["certificate"]["names"])
    assert "PRIVATE KEY" not in str(api.get("/api/nodes/").json())

    certificate_pem, key_pem = certificates.generate_certificate(Node.objects.get(pk=node.pk))
    url = f"/api/nodes/{node.pk}/certificate/"
    refused = api.post(url, {"certificate": "not a certificate", "key": key_pem}, format="json")
    assert refused.status_code == 400 and refused.json()["errors"]
    replaced = api.post(url, {"certificate": certificate_pem, "key": key_pem}, format="json")
    assert replaced.status_code == 200, replaced.content
    assert replaced.json()["certificate"]["source"] and replaced.json()["warnings"] == []
    assert "PRIVATE KEY" not in str(replaced.json())


def test_lockouts_are_listed_for_every_role_and_only_a_super_administrator_unlocks(api_personas, operator, super_admin):
    from django.test import Client

    client = Client()
    for _ in range(5):
        client.post("/login/", {"username": "operator", "password": "wrong-password"})
    assert client.post("/login/", {"username": "operator", "password": "wrong-password"}).status_code == 429

    listed = api_personas["read_only"].get("/api/lockouts/")
    assert listed.status_code == 200
    assert {(row["kind"], row["value"], row["failures"]) for row in listed.json()} == {
        ("user name", "operator", 5),
        ("address", "127.0.0.1", 5),
    }
    assert api_personas["anonymous"].get("/api/lockouts/").status_code == 401

    refused = api_personas["operator"].post("/api/lockouts/unlock/", {"username": "operator"}, format="json")
    assert refused.status_code == 403
    unclear = api_personas["super_admin"].post(
        "/api/lockouts/unlock/", {"username": "operator", "ip_address": "127.0.0.1"}, format="json"
    )
    assert unclear.status_code == 400
    assert "Give either a user name or an address to unlock." in str(unclear.json())
    assert api_personas["read_only"].get("/api/lockouts/").json() != []  # nothing was unlocked yet

    unlocked = api_personas["super_admin"].post("/api/lockouts/unlock/", {"username": "operator"}, format="json")
    assert unlocked.status_code == 200 and unlocked.json()["cleared"] >= 1
    unlocked = api_personas["super_admin"].post("/api/lockouts/unlock/", {"ip_address": "127.0.0.1"}, format="json")
    assert unlocked.status_code == 200
    assert api_personas["read_only"].get("/api/lockouts/").json() == []
    entry = LogEntry.objects.filter(object_repr="operator", changes__has_key="sign-in").latest("pk")
    assert entry.changes == {"sign-in": ["locked out", "allowed"]}
    assert entry.actor == super_admin
    assert Client().post("/login/", {"username": "operator", "password": PASSWORD}).status_code == 302
