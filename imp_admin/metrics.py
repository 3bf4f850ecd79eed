"""The console's Prometheus endpoint, ``/metrics``: what the config DB says about every node.

Each scrape runs a fixed handful of aggregate queries, whatever the number of nodes,
services, databases or merge jobs: node HA states, service states, external database check
results, merge jobs by state with their rows copied, and SRM alarms by name. Each node
agent's own endpoint adds what only the running node knows (sessions, rooms hosted, messages
committed and commit latency: ``topology.agent.metrics``).

Access: a request bearing ``Authorization: Bearer <METRICS_TOKEN>`` (for Prometheus), or a
signed-in console user who may view nodes (every console role).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from dbmerge.choices import JobState
from dbmerge.models import MergeJob
from messaging.models import ExternalDatabaseCheck
from topology.catalog import ServiceName, ServiceStatus
from topology.choices import HAState
from topology.models import HAAlarm, Node, Service
from topology.models.ha import AlarmName

METRICS_PERMISSION = "topology.view_node"


class ConfigDBCollector(Collector):
    """Gauges of every node, service, external database and merge job, from the config DB."""

    def describe(self):
        return []

    def collect(self):
        yield from self._nodes()
        yield from self._services()
        yield from self._database_checks()
        yield from self._merge_jobs()
        yield from self._alarms()

    def _nodes(self):
        ha = GaugeMetricFamily(
            "imp_node_ha_state",
            "1 for each node's HA state as its Server Recovery Manager reported it, 0 for the other states.",
            labels=["node", "state"],
        )
        reporting = GaugeMetricFamily(
            "imp_node_agent_reporting", "1 while the node's agent heartbeats, 0 otherwise.", labels=["node"]
        )
        for node in Node.objects.only("name", "ha_state", "last_heartbeat", "heartbeat_expires_at"):
            for state in HAState:
                ha.add_metric([node.name, state.value], 1.0 if state == node.ha_state else 0.0)
            reporting.add_metric([node.name], 1.0 if node.agent_reporting else 0.0)
        yield ha
        yield reporting

    def _services(self):
        family = GaugeMetricFamily(
            "imp_service_state",
            "1 for each service's status as its node agent reported it, 0 for the other statuses.",
            labels=["node", "service", "status"],
        )
        for node, name, current in Service.objects.order_by().values_list("node__name", "name", "status"):
            label = ServiceName(name).label if name in ServiceName.values else name
            for status in ServiceStatus:
                family.add_metric([node, label, status.value], 1.0 if status == current else 0.0)
        yield family

    def _database_checks(self):
        passed = GaugeMetricFamily(
            "imp_external_database_check_passed",
            "1 if the latest status check of an external database passed, 0 if it failed.",
            labels=["database", "check"],
        )
        when = GaugeMetricFamily(
            "imp_external_database_check_timestamp_seconds",
            "When the latest status check of an external database finished (Unix time).",
            labels=["database", "check"],
        )
        rows = ExternalDatabaseCheck.objects.order_by().values_list(
            "database__database_name", "database__hostname", "database__port", "name", "passed", "checked_at"
        )
        for database_name, hostname, port, check, ok, checked_at in rows:
            labels = [f"{database_name}@{hostname}:{port}", check]
            passed.add_metric(labels, 1.0 if ok else 0.0)
            when.add_metric(labels, checked_at.timestamp())
        yield passed
        yield when

    def _merge_jobs(self):
        jobs = GaugeMetricFamily("imp_merge_jobs", "Merge jobs in the config DB, by state.", labels=["state"])
        counts = dict(MergeJob.objects.order_by().values_list("state").annotate(n=Count("pk")))
        for state in JobState:
            jobs.add_metric([state.value], float(counts.get(state.value, 0)))
        yield jobs
        copied = GaugeMetricFamily(
            "imp_merge_rows_copied",
            "Rows the merge jobs in the config DB copied so far (their progress), by job state.",
            labels=["state"],
        )
        totals = dict.fromkeys(JobState.values, 0)
        for state, progress in MergeJob.objects.order_by().exclude(progress={}).values_list("state", "progress"):
            totals[state] = totals.get(state, 0) + sum(int(entry.get("done", 0)) for entry in progress.values())
        for state, total in totals.items():
            copied.add_metric([state], float(total))
        yield copied

    def _alarms(self):
        family = CounterMetricFamily(
            "imp_srm_alarms", "Server Recovery Manager alarms raised (in the config DB), by name.", labels=["name"]
        )
        counts = dict(HAAlarm.objects.order_by().values_list("name").annotate(n=Count("pk")))
        for name in AlarmName:
            family.add_metric([name.value], float(counts.get(name.value, 0)))
        yield family


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConfigDBCollector())
    return registry


def _bearer_token_matches(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if not token or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), token.encode())


@login_not_required
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; 401 without credentials, 403 for a user without the permission."""
    if not _bearer_token_matches(request):
        if not request.user.is_authenticated:
            response = HttpResponse("Metrics need a bearer token or a signed-in console user.\n", status=401)
            response["WWW-Authenticate"] = 'Bearer realm="imp-admin metrics"'
            return response
        if not request.user.has_perm(METRICS_PERMISSION):
            return HttpResponse("You may not view the metrics.\n", status=403)
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
