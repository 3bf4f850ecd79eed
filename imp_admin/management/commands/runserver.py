"""``runserver`` that does not name its software versions in the ``Server`` header.

Django's development server says ``WSGIServer/0.2 CPython/3.11.2``; a version in a header
tells an attacker what to try. The console's production server is gunicorn
(``deploy/gunicorn.conf.py``), which says only ``gunicorn``.
"""

from django.contrib.staticfiles.management.commands.runserver import Command as StaticfilesRunserver
from django.core.servers import basehttp

SERVER_NAME = "imp-admin"


class Command(StaticfilesRunserver):
    def inner_run(self, *args, **options):
        basehttp.ServerHandler.server_software = SERVER_NAME
        basehttp.WSGIRequestHandler.server_version = SERVER_NAME
        basehttp.WSGIRequestHandler.sys_version = ""
        return super().inner_run(*args, **options)
