"""The console's icon: every page gets one from the console itself, with no internet access.

A browser takes a page's icon from its ``<link rel="icon">``; a page that links none (the
Django admin, the API's JSON shown in a browser tab) makes it ask for ``/favicon.ico``. Each page below is followed
the way a browser would, to an icon that answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client

ICO_MAGIC = b"\x00\x00\x01\x00"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FAVICON = finders.find("console/favicon.ico")


def icon_url(page: str) -> str:
    """Where a browser fetches the icon of ``page`` from."""
    link = re.search(r'<link rel="icon" href="([^"]+)"', page)
    return link.group(1) if link else "/favicon.ico"


def test_favicon_ico_is_an_icon_served_to_anyone_without_a_login(anon_client):
    response = anon_client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert "max-age=86400" in response["Cache-Control"]
    body = b"".join(response.streaming_content)
    assert body.startswith(ICO_MAGIC) and body == Path(FAVICON).read_bytes()
    assert anon_client.head("/favicon.ico").status_code == 200
    assert anon_client.post("/favicon.ico").status_code == 405


@pytest.fixture
def staff_client(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("url", ["/admin/", "/admin/auth/user/", "/api/", "/api/nodes/"])
def test_the_django_admin_and_the_api_pages_get_an_icon_where_browsers_look_for_it(staff_client, url):
    response = staff_client.get(url, HTTP_ACCEPT=BROWSER_ACCEPT)
    assert response.status_code == 200
    page = response.content.decode()
    assert icon_url(page) == "/favicon.ico"  # they link none of their own
    icon = staff_client.get("/favicon.ico")
    assert icon.status_code == 200 and b"".join(icon.streaming_content).startswith(ICO_MAGIC)


@pytest.mark.parametrize("url", ["/login/", "/"])
def test_the_console_pages_link_the_same_local_icon(client, super_client, url):
    page = (client if url == "/login/" else super_client).get(url).content.decode()
    href = icon_url(page)
    assert href.startswith("/static/") and href.endswith(".ico")  # served by the console, no CDN
    assert finders.find(href.removeprefix("/static/")) == FAVICON
