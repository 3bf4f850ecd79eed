"""Every URL of the console, walked for every persona.

Anonymous visitors are sent to the login page; read-only users can open every page and get
403 on every POST; operators and super administrators act as their role allows. The walk
covers URLs added by any app, so a new view without a permission check fails here.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

pytestmark = pytest.mark.django_db

# Public by design: the login page itself, logout (POST only, no change to data),
# the health endpoint for load balancers, the Django admin (staff login of its own), the
# Prometheus endpoint (a bearer token or a console login; tests/console/test_metrics.py), and
# the icon browsers ask for on every page, the login page too (tests/console/test_favicon.py).
PUBLIC = {"login", "logout", "healthz", "metrics", "favicon"}
# A user's own page: every role creates and revokes its own API tokens (tests/api/test_rules.py).
OWN_ACCOUNT = {"api_tokens", "api_token_revoke"}
SAMPLE_KWARGS = {
    "int": 1,
    "str": "imp-1a",
    "slug": "imp-1a",
    "uuid": "00000000-0000-0000-0000-000000000001",
    "path": "x",
}


def console_urls() -> list[tuple[str, str]]:
    """(URL name, concrete path) for every named console URL pattern."""
    found: list[tuple[str, str]] = []

    def walk(patterns, namespace: str | None) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if entry.app_name in ("admin", "api"):
                    continue  # the REST API answers 401/403 itself: tests/api/test_personas.py
                walk(entry.url_patterns, entry.namespace or namespace)
            elif isinstance(entry, URLPattern) and entry.name:
                name = f"{namespace}:{entry.name}" if namespace else entry.name
                if name in PUBLIC:
                    continue
                converters = getattr(entry.pattern, "converters", {})
                kwargs = {
                    key: SAMPLE_KWARGS.get(type(conv).__name__.replace("Converter", "").lower(), 1)
                    for key, conv in converters.items()
                }
                found.append((name, reverse(name, kwargs=kwargs)))

    walk(get_resolver().url_patterns, None)
    return found


URLS = console_urls()


def test_the_walk_finds_the_console_pages():
    names = {name for name, _ in URLS}
    assert {"home", "topology:overview", "topology:group_list", "topology:user_assign", "audit_list"} <= names


@pytest.mark.parametrize(("name", "url"), URLS, ids=[name for name, _ in URLS])
def test_anonymous_visitor_is_sent_to_login(anon_client, name, url):
    for method in (anon_client.get, anon_client.post):
        response = method(url)
        assert response.status_code == 302, f"{name} answered {response.status_code}"
        assert response["Location"].startswith("/login/?next=")


@pytest.fixture
def one_of_each(demo_topology, postgres):
    """One object behind every URL that names one, so each page opens for real (no 404)."""
    from dbmerge.models import MergeJob
    from messaging.models import ChatAlias, ExternalDatabase, GroupChatAdministrator, PersistentChatAssignment
    from messaging.tc.schema import Dialect, install_statements
    from topology.models import AlarmRecipient, Cluster, Node

    name = postgres.database("imp_walk")
    with postgres.connect(name) as conn:
        for statement in install_statements(Dialect.POSTGRES):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO tc_rooms (room_jid, creator_jid, subject, type, config, spacket, start_msg_id, next_msg_id) "
            "VALUES ('ops@conference-imp1.example.com', 'andy@example.com', 'Ops', 'persistent', '', '', 1, 1)"
        )
    database = ExternalDatabase(
        database_name=name, db_type="postgres", username="postgres", hostname="127.0.0.1", port=5432
    )
    database.set_password("unused")
    database.save()
    other = ExternalDatabase(
        database_name=f"{name}_b", db_type="postgres", username="postgres", hostname="127.0.0.1", port=5432
    )
    other.set_password("unused")
    other.save()
    node = Node.objects.get(name="imp-1a")
    PersistentChatAssignment.objects.update_or_create(node=node, defaults={"database": database})
    alias = ChatAlias.objects.create(alias="chat-walk.example.com", node=node)
    administrator = GroupChatAdministrator.objects.create(
        cluster=Cluster.objects.get(name="cluster1"), im_address="admin@example.com"
    )
    job = MergeJob.objects.create(db_type="postgres", source_1=database, source_2=other, target=other)
    recipient = AlarmRecipient.objects.create(email="oncall@example.com")
    return {
        "topology:alarmrecipient": {"pk": recipient.pk},
        "messaging:chatalias": {"pk": alias.pk},
        "messaging:groupchatadministrator": {"pk": administrator.pk},
        "messaging:externaldatabase": {"pk": database.pk},
        "dbmerge:mergejob": {"pk": job.pk},
        "chat:room_detail": {"database_pk": database.pk, "room_jid": "ops@conference-imp1.example.com"},
    }


def url_with_objects(name: str, url: str, objects: dict) -> str:
    if not resolve(url).kwargs:
        return url
    kwargs = next((kw for prefix, kw in objects.items() if name.startswith(prefix)), None)
    return reverse(name, kwargs=kwargs) if kwargs else url


# Views that answer POST only (a GET is 405) and htmx polls that say "nothing running" with 286.
ANSWERS_WITHOUT_A_PAGE = (405, 286)


@pytest.mark.parametrize(("name", "url"), URLS, ids=[name for name, _ in URLS])
def test_read_only_user_can_view_but_gets_403_on_post(read_only_client, one_of_each, name, url):
    url = url_with_objects(name, url, one_of_each)
    response = read_only_client.get(url)
    assert response.status_code in (200, *ANSWERS_WITHOUT_A_PAGE), f"{name}: {url} answered {response.status_code}"
    if name in OWN_ACCOUNT:
        assert read_only_client.post(url, {}).status_code in (400, 404), f"{name} refused a user's own change"
        return
    assert read_only_client.post(url, {}).status_code == 403, f"{name} accepted a POST from a read-only user"


def test_logged_in_user_without_a_role_gets_403_everywhere(db, demo_topology):
    from django.contrib.auth.models import User

    client = Client()
    client.force_login(User.objects.create_user("nobody", password="x-password-123"))
    for name, url in URLS:
        assert client.get(url).status_code in (403, 405), f"{name} is visible without a role"


@pytest.mark.parametrize(
    ("url", "payload"),
    [
        ("/system/redundancy-groups/add/", {"name": "g"}),
        ("/system/clusters/add/", {"name": "c"}),
        ("/system/nodes/add/", {"name": "n"}),
        ("/system/users/add/", {"user_id": "u"}),
        ("/system/users/assign/", {"cluster": "1"}),
    ],
)
def test_operator_may_view_topology_but_not_change_it(operator_client, demo_topology, url, payload):
    assert operator_client.get("/system/topology/").status_code == 200
    assert operator_client.post(url, payload).status_code == 403


def test_super_administrator_may_change_topology(super_client, demo_topology):
    response = super_client.post(
        "/system/clusters/add/",
        {"name": "c3", "cluster_id": "c3", "domain": "example.org", "user_assignment_mode": "balanced"},
    )
    assert response.status_code == 302


def test_post_without_csrf_token_is_refused(super_admin, demo_topology):
    client = Client(enforce_csrf_checks=True)
    client.force_login(super_admin)
    response = client.post("/system/clusters/add/", {"name": "c3", "cluster_id": "c3", "domain": "example.org"})
    assert response.status_code == 403
    assert b"CSRF verification failed" in response.content


def test_health_endpoint_needs_no_login(anon_client):
    response = anon_client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_django_admin_needs_a_staff_login(anon_client, read_only_client):
    assert anon_client.get("/admin/").status_code == 302
    assert read_only_client.get("/admin/").status_code == 302  # not staff: back to the admin login
