"""SRM alarms by e-mail to the recipients set on System > Alarm Recipients (Django's locmem mail
backend; the Celery task runs eagerly in the test process so its mail lands in the outbox)."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry
from django.core import mail

from imp_admin.celery import app
from topology.choices import HAReason, HAState
from topology.ha import transitions
from topology.models import AlarmRecipient, HAAlarm


@pytest.fixture
def eager_celery():
    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def ha_pair(build):
    cluster = build.cluster()
    a, b = build.node("imp-1a", cluster), build.node("imp-1b", cluster)
    build.group("subcluster1", a, b, ha=True)
    for node in (a, b):
        transitions.set_own_state(node.pk, HAState.NORMAL, HAReason.NORMAL)
    return a, b


@pytest.fixture
def recipients(db):
    AlarmRecipient.objects.create(email="oncall@example.com", description="On-call rota")
    AlarmRecipient.objects.create(email="lead@example.com")
    AlarmRecipient.objects.create(email="away@example.com", enabled=False)


def test_a_super_administrator_adds_a_recipient_and_the_audit_trail_records_it(super_client, super_admin):
    response = super_client.post(
        "/system/alarm-recipients/add/",
        {"email": "oncall@example.com", "description": "On-call rota", "enabled": "on"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Alarm recipient oncall@example.com saved." in response.content.decode()
    recipient = AlarmRecipient.objects.get()
    assert recipient.enabled
    entry = LogEntry.objects.get_for_object(recipient).get()
    assert entry.action == LogEntry.Action.CREATE
    assert entry.actor == super_admin
    page = super_client.get("/system/alarm-recipients/").content.decode()
    assert "oncall@example.com" in page
    assert "On-call rota" in page


def test_an_invalid_address_is_refused_with_the_reason(super_client):
    response = super_client.post("/system/alarm-recipients/add/", {"email": "not-an-address", "enabled": "on"})
    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    assert not AlarmRecipient.objects.exists()


def test_read_only_and_operator_see_the_recipients_but_cannot_change_them(
    read_only_client, operator_client, recipients
):
    for client in (read_only_client, operator_client):
        assert "oncall@example.com" in client.get("/system/alarm-recipients/").content.decode()
        response = client.post("/system/alarm-recipients/add/", {"email": "x@example.com", "enabled": "on"})
        assert response.status_code == 403
    assert AlarmRecipient.objects.count() == 3


def test_anonymous_visitor_is_sent_to_login(anon_client):
    response = anon_client.get("/system/alarm-recipients/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_a_failover_for_critical_service_down_is_emailed_to_the_enabled_recipients(
    ha_pair, recipients, eager_celery, django_capture_on_commit_callbacks
):
    a, b = ha_pair
    with django_capture_on_commit_callbacks(execute=True):
        assert transitions.take_over(b.pk, a.pk, reason=HAReason.CRITICAL_SERVICE_DOWN)

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == ["lead@example.com", "oncall@example.com"]
    assert message.subject == "[imp-admin] UC_SRM-2-SRMFailover on subcluster1: Critical Service Down"
    assert "UC_SRM-2-SRMFailover: FromNode imp-1a ToNode imp-1b Reason Critical Service Down" in message.body


def test_database_failure_failover_and_fallback_are_emailed(
    ha_pair, recipients, eager_celery, django_capture_on_commit_callbacks
):
    a, b = ha_pair
    with django_capture_on_commit_callbacks(execute=True):
        assert transitions.take_over(b.pk, a.pk, reason=HAReason.DATABASE_FAILURE)
        assert transitions.finish_take_over(b.pk, rooms_loaded=True)
        transitions.set_own_state(a.pk, HAState.FAILED_OVER, HAReason.DATABASE_FAILURE)
        assert transitions.begin_fallback(a.pk, HAReason.ON_ADMIN_REQUEST)
        assert transitions.release_rooms(b.pk, rooms_unloaded=True)
        assert transitions.reclaim_rooms(a.pk)
        assert transitions.finish_take_back(a.pk, rooms_loaded=True)

    subjects = [message.subject for message in mail.outbox]
    assert subjects == [
        "[imp-admin] UC_SRM-2-SRMFailover on subcluster1: Database Failure",
        "[imp-admin] SRMFallback on subcluster1: On Admin Request",
    ]
    assert "SRMFallback: FromNode imp-1b ToNode imp-1a Reason On Admin Request" in mail.outbox[1].body


def test_both_nodes_failed_is_emailed(ha_pair, recipients, eager_celery, django_capture_on_commit_callbacks):
    a, b = ha_pair
    with django_capture_on_commit_callbacks(execute=True):
        transitions.take_over(b.pk, a.pk, reason=HAReason.CRITICAL_SERVICE_DOWN)
        transitions.finish_take_over(b.pk, rooms_loaded=False)
    assert [m.subject.split(" on ")[0] for m in mail.outbox] == [
        "[imp-admin] UC_SRM-2-SRMFailover",
        "[imp-admin] UC_SRM-2-SRMFailed",
    ]


def test_without_recipients_the_alarm_is_recorded_and_nothing_is_sent(
    ha_pair, eager_celery, django_capture_on_commit_callbacks
):
    a, b = ha_pair
    AlarmRecipient.objects.create(email="away@example.com", enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        transitions.take_over(b.pk, a.pk, reason=HAReason.CRITICAL_SERVICE_DOWN)
    assert HAAlarm.objects.count() == 1
    assert mail.outbox == []


def test_a_rolled_back_transition_sends_no_mail(ha_pair, recipients, eager_celery, django_capture_on_commit_callbacks):
    a, b = ha_pair
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        # The peer is not in a state it can be taken over from: nothing changes, nothing is sent.
        transitions.set_own_state(a.pk, HAState.RUNNING_IN_FAILED_MODE, HAReason.TAKE_OVER_USERS_FAILED)
        assert not transitions.take_over(b.pk, a.pk, reason=HAReason.CRITICAL_SERVICE_DOWN)
    assert callbacks == []
    assert mail.outbox == []
