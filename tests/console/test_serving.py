"""The console under gunicorn (its production server) and Django's development server:
pages, static files from WhiteNoise, the policy header, and no software version in ``Server``."""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import PASSWORD, wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """Just enough of a browser: cookies, no redirects followed, status and headers kept."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), NoRedirect)

    def request(self, path: str, data: dict | None = None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, body, timeout=10) as response:
                return response.status, response.headers, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode(errors="replace")

    def csrf(self) -> str:
        return next(cookie.value for cookie in self.cookies if cookie.name == "csrftoken")


@contextmanager
def serving(command: list[str], port: int, tmp_path: Path, **env: str):
    env = {**os.environ, "SQLITE_PATH": str(settings.DATABASES["default"]["NAME"]), **env}
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    browser = Browser(f"http://127.0.0.1:{port}")

    def answers():
        assert process.poll() is None, (tmp_path / "server.log").read_text()
        try:
            return browser.request("/healthz")[0] == 200
        except OSError:
            return False

    try:
        wait_for(answers, timeout=60, what="the console to answer")
        yield browser
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_gunicorn_serves_the_console_and_its_static_files_and_names_no_version(super_admin, tmp_path):
    static_root = tmp_path / "static"
    env = {"STATIC_ROOT": str(static_root), "STATIC_MANIFEST": "1"}
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collect.returncode == 0, collect.stderr
    port = free_port()
    gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py"]
    with serving(gunicorn, port, tmp_path, GUNICORN_BIND=f"127.0.0.1:{port}", **env) as browser:
        status, headers, page = browser.request("/login/")
        assert status == 200 and "Log in with your administrator account." in page
        assert headers.get_all("Server") == ["gunicorn"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]

        stylesheet = re.search(r'href="(/static/console/console\.[0-9a-f]{12}\.css)"', page).group(1)
        status, headers, css = browser.request(stylesheet)
        assert status == 200 and ".htmx-indicator" in css
        assert "immutable" in headers["Cache-Control"]  # WhiteNoise, hashed name
        icon = re.search(r'<link rel="icon" href="(/static/console/favicon\.[0-9a-f]{12}\.ico)"', page).group(1)
        for url in (icon, "/favicon.ico"):  # linked by the console; asked for by the admin's pages
            status, headers, _ = browser.request(url)
            assert (status, headers["Content-Type"]) == (200, "image/x-icon"), url

        status, headers, _ = browser.request(
            "/login/", {"username": "sadmin", "password": PASSWORD, "csrfmiddlewaretoken": browser.csrf()}
        )
        assert status == 302 and headers["Location"] == "/"
        status, _, page = browser.request("/system/topology/")
        assert status == 200 and "Presence Topology" in page
    log = (tmp_path / "server.log").read_text()
    assert "Using worker: gthread" in log
    assert "Control socket" not in log
    assert log.count("Booting worker with pid") == os.cpu_count()


def test_the_development_server_names_no_version_either(db, tmp_path):
    port = free_port()
    runserver = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    with serving(runserver, port, tmp_path) as browser:
        status, headers, _ = browser.request("/login/")
        assert status == 200
        assert headers.get_all("Server") == ["imp-admin"]
        status, headers, _ = browser.request("/no-such-page/")
        assert headers.get_all("Server") == ["imp-admin"]
