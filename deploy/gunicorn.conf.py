"""gunicorn settings for the console: the one place that says how it is served.

    gunicorn -c deploy/gunicorn.conf.py

is the whole command (``scripts/demo``, the systemd unit and ``bench/console_load.py`` use it).

Workers, sized for the 2-core machine the console shares with the node agents, the Celery
worker and the databases: one process per core (``cpu_count()``, so 2 here), each with 4
threads (``gthread``). A page costs mostly Python CPU (views, ORM, templates), which only
processes run in parallel, so more processes than cores would only take CPU from the agents;
the threads overlap the waits on the config DB, Redis and the client, at little memory. The
classic 2 × cores + 1 sync workers suits servers that wait more than they compute, and would
hold 5 copies of Django here. ``WEB_CONCURRENCY`` and ``GUNICORN_THREADS`` override the sizing.
"""

import gc
import multiprocessing
import os

wsgi_app = "imp_admin.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")  # the reverse proxy's upstream
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count())
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
# A request that takes longer than this is a bug (long work runs on Celery): restart the worker.
timeout = 30
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then, staggered, so a slow leak never grows without bound. Not
# often: a restarting worker serves nothing while it loads Django again (1-2 s of CPU here).
# At 2000 both workers of the console bench's no-wait walk (90 pages a second) restarted within
# a second of each other, 50 s into it.
max_requests = 20000
max_requests_jitter = 5000
# Only the local reverse proxy may say a request came over HTTPS (X-Forwarded-Proto).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
proc_name = "imp-admin-console"
# No control socket: its default path (~/.gunicorn/gunicorn.ctl) is one per user, so the demo,
# the tests and the bench on one host would take it from each other; systemd (or Ctrl-C) and
# signals (HUP reloads the workers) manage the process instead.
control_socket_disable = True


def post_worker_init(worker):
    """Freeze what the worker has loaded, so the garbage collector stops walking it.

    A worker holds about 160,000 objects once Django, the URLconf and every view are loaded,
    none of them ever garbage. Each full collection (one every 10-20 page views) walked them
    all: about 70 ms of CPU on this machine, landing on whichever request triggered it.
    ``gc.freeze()`` moves them out of the collector's generations; what requests allocate is
    still collected as before.
    """
    from importlib import import_module

    from django.conf import settings

    import_module(settings.ROOT_URLCONF)  # imports every view module now, before the freeze
    gc.freeze()
