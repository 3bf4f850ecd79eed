"""The Celery application: merge jobs, merge validation and external database checks."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imp_admin.settings")

app = Celery("imp_admin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
