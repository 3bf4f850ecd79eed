"""The node agent: reconciles a node's services to the desired state and reports what it sees.

Every reconcile interval it reads the node's service rows, starts, stops or restarts each
service to match what the console asked, carries out each numbered request once, and
writes the observed status back. Every heartbeat interval (an SRM service parameter) it
writes the node's heartbeat. When the SRM moves rooms between nodes it asks the service that
serves rooms (the Text Conference Manager, registered as following the room hosting in
``topology.agent.registry``) to re-read which rooms it serves (``refresh_hosting``); when the
SRM sees a transition of the node or its peer, the services that serve users (the XCP Router)
check at once which users they still serve (``users_moved``).

Each committed heartbeat renews the node's lease (``topology.agent.lease``) while its group
has high availability on (without a peer nobody takes its rooms over, so nothing to fence).
When the lease runs out the agent fences the node: the Text Conference Manager refuses every
request (retryable), and once the heartbeat is older than the heartbeat timeout, when the peer
takes the node's users over, the XCP Router sends them to it. Once a heartbeat gets through again the
agent re-reads the room hosting (which the peer's SRM may have taken meanwhile) before the
node serves again: back in touch, it follows the SRM's states and never resumes by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from topology import observed
from topology.agent.base import START_TIMEOUT, STOP_TIMEOUT, NodeService, ServiceStartError
from topology.agent.db import db
from topology.agent.lease import Lease
from topology.agent.metrics import MetricsEndpoint
from topology.agent.registry import build_service, follows_room_hosting
from topology.catalog import CATALOG, START_ORDER, ControlAction, DesiredState, ServiceName, ServiceStatus
from topology.choices import HOLD_DOWN_STATES, HAState
from topology.models import Node, Service, ServiceParameters, ensure_services

log = logging.getLogger(__name__)

AGENT_STOPPED = "The node agent stopped."
FENCE_CHECK_SECONDS = 0.05
# How long re-reading the rooms may keep failing before the SRM is told (Take Over or Take
# Back Users Failed). Right after a network heals, the database connection pool may need a
# few seconds to replace the connections the outage broke: that is not a failure yet.
HOSTING_RETRY_SECONDS = 12.0
WORKER_THREADS = min(32, (os.cpu_count() or 1) + 4)  # the size of asyncio's default pool


@dataclass
class DesiredServices:
    """What the console wants, read once per reconcile tick."""

    rows: dict[str, Service]
    ha_state: str
    critical: list[str]


class NodeAgent:
    """The process that is one IM and Presence node."""

    def __init__(
        self,
        node_name: str,
        *,
        reconcile_interval: float = 0.5,
        restart_delay: float = 5.0,
        metrics_address: tuple[str, int] | None = None,
    ) -> None:
        self.node_name = node_name
        self.reconcile_interval = reconcile_interval
        self.restart_delay = restart_delay
        self.metrics_address = metrics_address
        self.node: Node | None = None
        # What the metrics endpoint shows: the HA state read at the last reconcile tick and
        # each service's status as last written.
        self.ha_state: str = HAState.UNKNOWN
        self._statuses: dict[str, str] = {}
        self.instances: dict[str, NodeService] = {}
        self._failed_at: dict[str, float] = {}
        self._stop = asyncio.Event()
        self._hosting: tuple[int, ...] | None = None
        self._hosting_lock = asyncio.Lock()
        self.lease = Lease()
        self.fenced = False
        self.heartbeat_timeout = 60.0

    # --- life cycle ---------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Run until SIGTERM or SIGINT, then stop every service and report it."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.request_stop)
        await _start_worker_threads(loop)
        sent_at = time.monotonic()
        self.node, lease_seconds = await db(self._register)
        self.lease.renew(sent_at, lease_seconds)
        log.info("Node agent of %s started", self.node)
        metrics = MetricsEndpoint(self, *self.metrics_address) if self.metrics_address else None
        if metrics is not None:
            metrics.start()
        heartbeat = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")
        fencing = asyncio.create_task(self._fence_loop(), name="fencing")
        reconcile = asyncio.create_task(self._reconcile_loop(), name="reconcile")
        await self._stop.wait()
        log.info("Node agent of %s stopping", self.node)
        reconcile.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reconcile
        for name in reversed(START_ORDER):
            if name in self.instances:
                await self._stop_service(name, ServiceStatus.STOPPED, AGENT_STOPPED)
        for task in (fencing, heartbeat):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await db(self._unregister)
        if metrics is not None:
            metrics.stop()
        log.info("Node agent of %s stopped", self.node)

    def _lease_terms(self, node_id: int, cluster_id: int) -> tuple[float, float]:
        """The lease period a heartbeat buys, and the heartbeat timeout; fencing on with HA on."""
        params = ServiceParameters.for_cluster(cluster_id)
        ha = Node.objects.filter(pk=node_id).values_list("redundancy_group__ha_enabled", flat=True).first()
        self.lease.enforced = bool(ha)
        self.heartbeat_timeout = params.heartbeat_timeout
        return params.lease_seconds

    def _register(self) -> tuple[Node, float]:
        node = Node.objects.get(name=self.node_name)
        ensure_services(node)
        now = timezone.now()
        params = ServiceParameters.for_cluster(node.cluster_id)
        # Nothing runs before the agent starts: forget what an earlier run left behind.
        Service.objects.filter(node=node).exclude(status=ServiceStatus.STOPPED).update(
            status=ServiceStatus.STOPPED, status_reason="", status_changed_at=now, started_at=None
        )
        Node.objects.filter(pk=node.pk).update(
            agent_started_at=now,
            last_heartbeat=now,
            heartbeat_expires_at=now + timedelta(seconds=params.heartbeat_timeout),
        )
        node.refresh_from_db()
        self.ha_state = node.ha_state
        self._statuses = {name: ServiceStatus.STOPPED for name in START_ORDER}
        return node, self._lease_terms(node.pk, node.cluster_id)

    def _unregister(self) -> None:
        now = timezone.now()
        Node.objects.filter(pk=self.node.pk).update(agent_started_at=None, heartbeat_expires_at=now)

    # --- heartbeat ----------------------------------------------------------------------

    def _beat(self) -> tuple[float, float]:
        """Write the heartbeat; the heartbeat interval and the lease period it renews."""
        now = timezone.now()
        params = ServiceParameters.for_cluster(self.node.cluster_id)
        Node.objects.filter(pk=self.node.pk).update(
            last_heartbeat=now, heartbeat_expires_at=now + timedelta(seconds=params.heartbeat_timeout)
        )
        return params.heartbeat_interval, self._lease_terms(self.node.pk, self.node.cluster_id)

    async def _heartbeat_loop(self) -> None:
        while True:
            interval = 1.0
            sent_at = time.monotonic()  # before the write: a slow renewal shortens the lease
            try:
                interval, period = await db(self._beat)
                self.lease.renew(sent_at, period)
            except Exception as exc:
                log.warning("Heartbeat failed: %s", exc)
            await asyncio.sleep(interval)

    # --- fencing ------------------------------------------------------------------------

    def _fence_targets(self, age: float | None = None) -> list:
        """The services to fence (all, to unfence): the TC at once; the Router, which sends the
        users away, once the peer may have taken them over (a short cut only costs retries)."""
        return [
            instance
            for name, instance in self.instances.items()
            if (age is None or name != ServiceName.XCP_ROUTER or age >= self.heartbeat_timeout)
        ]

    async def _fence_loop(self) -> None:
        """Fence the node as soon as its lease runs out; unfence it once a heartbeat got
        through and the room hosting was re-read."""
        while True:
            await asyncio.sleep(FENCE_CHECK_SECONDS)
            held = self.lease.held()
            if not held:
                age = self.lease.age() or 0.0
                reason = f"{self.node} lost touch with the config DB (no heartbeat for {age:.1f} s)"
                if not self.fenced:
                    log.warning("%s: it stops serving its rooms until a heartbeat gets through", reason)
                self.fenced = True
                for instance in self._fence_targets(age):  # also services started while fenced
                    instance.fence(reason)
            elif self.fenced and await self.sync_room_hosting(force=True):
                log.warning("%s is back in touch with the config DB; room hosting re-read", self.node)
                self.fenced = False
                for instance in self._fence_targets():
                    instance.unfence()

    # --- users moved ----------------------------------------------------------------------

    def users_moved(self) -> None:
        """The SRM saw a transition of this node or its peer (its own, the peer's SRM's or a
        Server Action's): the services that serve users check at once whom they still serve,
        rather than at their next look at the config DB."""
        for instance in list(self.instances.values()):
            try:
                instance.users_moved()
            except Exception:
                log.exception("%s could not check its users", instance.name)

    # --- reconcile ----------------------------------------------------------------------

    def _read(self) -> DesiredServices:
        node = Node.objects.only("ha_state", "cluster_id").get(pk=self.node.pk)
        rows = {row.name: row for row in Service.objects.filter(node_id=self.node.pk)}
        critical = ServiceParameters.for_cluster(node.cluster_id).critical_services
        return DesiredServices(rows, node.ha_state, critical)

    async def _reconcile_loop(self) -> None:
        while True:
            try:
                await self.reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Reconcile failed")
            await asyncio.sleep(self.reconcile_interval)

    def service_statuses(self) -> dict[str, str]:
        """Each service's status as this agent last wrote it."""
        return dict(self._statuses)

    async def reconcile_once(self) -> None:
        desired = await db(self._read)
        self.ha_state = desired.ha_state
        for name in START_ORDER:
            row = desired.rows.get(name)
            if row is not None:
                await self._reconcile_service(name, row, desired)
        await self.sync_room_hosting()

    def _why_not(self, name: str, row: Service, desired: DesiredServices) -> tuple[ServiceStatus, str] | None:
        """None if the service should run; else the status and reason to show while it does not."""
        if not row.activated or row.desired_state == DesiredState.STOPPED:
            return ServiceStatus.STOPPED, ""
        if desired.ha_state in HOLD_DOWN_STATES and name in desired.critical:
            return ServiceStatus.STOPPED, "Stopped by the Server Recovery Manager: the node is failed over."
        for dependency in CATALOG[name].depends_on:
            instance = self.instances.get(dependency)
            if instance is None or not instance.is_running():
                return ServiceStatus.NOT_RUNNING, f"{ServiceName(dependency).label} is not running."
        return None

    async def _reconcile_service(self, name: str, row: Service, desired: DesiredServices) -> None:
        instance = self.instances.get(name)
        if instance is not None and not instance.is_running():
            log.warning("%s stopped unexpectedly", name)
            self.instances.pop(name)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(instance.stop(), STOP_TIMEOUT)
            self._failed_at[name] = time.monotonic()
            await db(self._write, name, ServiceStatus.NOT_RUNNING, "The service stopped unexpectedly.")
            instance = None
        new_request = row.request_number > row.handled_request_number
        blocked = self._why_not(name, row, desired)
        if new_request and row.request_action == ControlAction.RESTART and instance is not None:
            for dependent in _dependents_running(name, self.instances):
                await self._stop_service(dependent, ServiceStatus.STOPPED, "")
            await self._stop_service(name, ServiceStatus.STOPPED, "")
            instance = None
        if blocked is None and instance is None:
            last_failure = self._failed_at.get(name)
            if new_request or last_failure is None or time.monotonic() - last_failure >= self.restart_delay:
                await self._start_service(name)
        elif blocked is not None and instance is not None:
            missing = f"{ServiceName(name).label} is not running."
            for dependent in _dependents_running(name, self.instances):
                # A dependent stopped by hand with it (Stop of the XCP Router) shows Stopped; one
                # that still wants to run shows Not Running, and why.
                dependent_row = desired.rows.get(dependent)
                own = self._why_not(dependent, dependent_row, desired) if dependent_row is not None else None
                await self._stop_service(dependent, *(own or (ServiceStatus.NOT_RUNNING, missing)))
            await self._stop_service(name, *blocked)
        elif blocked is not None and (row.status, row.status_reason) != blocked:
            await db(self._write, name, *blocked)
        if new_request:
            await db(self._handled, name, row.request_number)

    async def _start_service(self, name: str) -> None:
        await db(self._write, name, ServiceStatus.STARTING, "")
        hosting = await db(self._hosted_ids) if follows_room_hosting(name) else None
        reason = ""
        database_failure = False
        instance: NodeService | None = None
        try:
            instance = build_service(ServiceName(name), self)
            await asyncio.wait_for(instance.start(), START_TIMEOUT)
        except ServiceStartError as exc:
            reason, database_failure = str(exc), exc.database_failure
        except TimeoutError:
            reason = f"The service did not start within {START_TIMEOUT:.0f} s."
        except Exception as exc:
            log.exception("%s failed to start", name)
            reason = f"{type(exc).__name__}: {exc}"
        if reason:
            log.warning("%s could not start: %s", name, reason)
            if instance is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(instance.stop(), STOP_TIMEOUT)
            self._failed_at[name] = time.monotonic()
            await db(self._write, name, ServiceStatus.NOT_RUNNING, reason, database_failure)
            return
        self.instances[name] = instance
        self._failed_at.pop(name, None)
        if hosting is not None:
            self._hosting = hosting
        await db(self._write, name, ServiceStatus.STARTED, "")
        log.info("%s started", ServiceName(name).label)

    async def _stop_service(self, name: str, status: ServiceStatus, reason: str) -> None:
        instance = self.instances.pop(name, None)
        if instance is None:
            return
        await db(self._write, name, ServiceStatus.STOPPING, "")
        try:
            await asyncio.wait_for(instance.stop(), STOP_TIMEOUT)
        except Exception:
            log.exception("%s did not stop cleanly", name)
        if follows_room_hosting(name):
            self._hosting = None
        await db(self._write, name, status, reason)
        log.info("%s stopped", ServiceName(name).label)

    def _write(self, name: str, status: ServiceStatus, reason: str, database_failure: bool = False) -> None:
        now = timezone.now()
        fields = {
            "status": status,
            "status_reason": reason[:500],
            "status_changed_at": now,
            "database_failure": database_failure,
        }
        if status == ServiceStatus.STARTED:
            fields["started_at"] = now
        elif status != ServiceStatus.STOPPING:
            fields["started_at"] = None
        Service.objects.filter(node_id=self.node.pk, name=name).update(**fields)
        self._statuses[name] = status

    def _handled(self, name: str, number: int) -> None:
        Service.objects.filter(node_id=self.node.pk, name=name, handled_request_number__lt=number).update(
            handled_request_number=number
        )

    # --- room hosting -------------------------------------------------------------------

    def _hosted_ids(self) -> tuple[int, ...]:
        return tuple(home.pk for home in observed.hosted_homes(self.node))

    async def sync_room_hosting(self, force: bool = False) -> bool:
        """Tell the service that serves rooms (the TC) when the rooms it must serve changed.

        Returns False if it failed to re-read them; True otherwise (also when it is not
        running: it reads the hosting itself when it starts).
        """
        async with self._hosting_lock:
            hosting = await db(self._hosted_ids)
            service = next((instance for name, instance in self.instances.items() if follows_room_hosting(name)), None)
            if service is None or not service.is_running():
                return True
            if hosting == self._hosting and not force:
                return True
            if not await self._refresh_hosting(service):
                return False
            log.info("Room hosting of %s now: nodes %s", self.node, hosting)
            self._hosting = hosting
            return True

    @staticmethod
    async def _refresh_hosting(service: NodeService) -> bool:
        """Have ``service`` re-read its rooms, trying again for ``HOSTING_RETRY_SECONDS``."""
        give_up_at = time.monotonic() + HOSTING_RETRY_SECONDS
        while True:
            try:
                await service.refresh_hosting()
                return True
            except Exception as exc:
                if time.monotonic() >= give_up_at:
                    log.exception("%s could not re-read its rooms", service.name)
                    return False
                log.warning("%s could not re-read its rooms (%s); trying again", service.name, exc)
                await asyncio.sleep(0.5)


async def _start_worker_threads(loop: asyncio.AbstractEventLoop) -> None:
    """Give the loop its worker threads (sign-ins, directory reads) now: the pool would start
    them on first need, and starting a thread holds the loop until the OS first runs it, some
    tens of milliseconds each on a loaded machine, just when fifty users sign in on a backup."""
    executor = ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="agent-worker")
    loop.set_default_executor(executor)
    everyone = threading.Barrier(WORKER_THREADS)  # each task waits for the others: one thread each
    waits = [loop.run_in_executor(None, everyone.wait, 10.0) for _ in range(WORKER_THREADS)]
    await asyncio.gather(*waits, return_exceptions=True)  # a broken barrier only means fewer threads yet


def _dependents_running(name: str, instances: dict[str, NodeService]) -> list[str]:
    return [other for other in reversed(START_ORDER) if name in CATALOG[other].depends_on and other in instances]
