"""Idle console sessions end after SESSION_IDLE_MINUTES (default 30), not after 14 days."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from tests.conftest import PASSWORD
from tests.console.test_settings import production_env, run_manage

pytestmark = pytest.mark.django_db


def signed_in(username: str) -> Client:
    client = Client()
    assert client.post("/login/", {"username": username, "password": PASSWORD}).status_code == 302
    return client


def expires_in(client: Client) -> timedelta:
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    return Session.objects.get(session_key=key).expire_date - timezone.now()


def age_session(client: Client, minutes_left: int) -> None:
    session = client.session
    session.set_expiry(timedelta(minutes=minutes_left))
    session.save()


def test_a_session_lasts_thirty_minutes_from_the_last_click(operator):
    client = signed_in("operator")
    assert timedelta(minutes=29) < expires_in(client) <= timedelta(minutes=30)
    age_session(client, 5)
    assert client.get("/system/topology/").status_code == 200
    assert timedelta(minutes=29) < expires_in(client) <= timedelta(minutes=30)


def test_a_page_polling_by_itself_does_not_keep_the_session_open(operator):
    client = signed_in("operator")
    age_session(client, 5)
    assert client.get("/system/topology/", headers={"HX-Request": "true"}).status_code == 200
    assert expires_in(client) <= timedelta(minutes=5)


def test_an_idle_session_has_ended_and_the_next_page_asks_to_log_in_again(operator):
    client = signed_in("operator")
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/system/topology/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_the_idle_time_comes_from_the_environment(tmp_path):
    env = production_env(tmp_path)
    show = "from django.conf import settings; print(settings.SESSION_COOKIE_AGE, settings.SESSION_IDLE_TIMEOUT)"
    assert run_manage("shell", "-v", "0", "-c", show, env=env).stdout.split() == ["1800", "1800"]
    env["SESSION_IDLE_MINUTES"] = "5"
    assert run_manage("shell", "-v", "0", "-c", show, env=env).stdout.split() == ["300", "300"]
