"""The partition cases, each a cut of node A's links while Andy and Bob post, then the heal
and, when A was failed over, Fallback. Run by the partition tests and ``bench/partition.py``.

Every case: start both agents, start the conversation, cut, hold the cut (until something
happens or for the case's length), heal, wait until the group is steady again with both users
posting, press Fallback if A was failed over, and count (``GroupOnBed.outcome``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import close_old_connections
from django.test import Client
from django.urls import reverse

from tests.conftest import wait_for
from tests.partition.netns import REDIS_IP, RELAY_IP
from tests.partition.world import CONFIG_DB_ADDRESSES, Conversation, GroupOnBed, Outcome, admin
from topology.catalog import ServiceName, ServiceStatus
from topology.choices import HAState
from topology.models import HATransition, Node, ServerAction, Service

FENCED_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*stops serving its rooms", re.MULTILINE)


@dataclass
class Case:
    """One kind of partition of node A: ``cut`` starts it, ``hold`` lasts it out."""

    name: str
    description: str
    cut: Callable[[GroupOnBed], None]
    hold: Callable[[GroupOnBed, Conversation, float], None]


@dataclass
class CaseRun:
    """What a case did."""

    case: Case
    outcome: Outcome
    fenced_after: float | None  # from the cut to A's TC refusing (A's agent log), if it did
    states_seen: dict[str, list[tuple[str, str]]]  # node → (state, reason) of each transition since the cut
    final_states: dict[str, str]
    page_matches: bool
    fell_back: bool = False
    acks_during_cut: dict[str, int] = field(default_factory=dict)
    acks_after_fallback: int = 0


# --- reading the config DB ---------------------------------------------------------------------


def states(group: GroupOnBed) -> dict[str, str]:
    close_old_connections()
    return dict(Node.objects.filter(pk__in=[n.pk for n in group.nodes.values()]).values_list("name", "ha_state"))


def ready(group: GroupOnBed) -> bool:
    started = Service.objects.filter(
        node__in=group.nodes.values(), name=ServiceName.TEXT_CONFERENCE_MANAGER, status=ServiceStatus.STARTED
    ).count()
    return set(states(group).values()) == {HAState.NORMAL} and started == 2


def steady(group: GroupOnBed) -> bool:
    """Both nodes Normal, or A failed over (with its services running) and B serving its rooms."""
    now = states(group)
    a, b = now[group.nodes["a"].name], now[group.nodes["b"].name]
    return (a, b) in {(HAState.NORMAL, HAState.NORMAL), (HAState.FAILED_OVER, HAState.RUNNING_IN_BACKUP_MODE)}


def group_page_matches(group: GroupOnBed) -> bool:
    """The group page shows each node's state and reason as the config DB holds them."""
    client = Client()
    client.force_login(group.admin)
    response = client.get(reverse("topology:group_detail", args=[group.group.pk]))
    page = response.content.decode()
    nodes = Node.objects.filter(pk__in=[n.pk for n in group.nodes.values()])
    return response.status_code == 200 and all(
        node.get_ha_state_display() in page and node.get_ha_reason_display() in page for node in nodes
    )


REQUESTED = re.compile(r"Fallback of \S+ requested; the Server Recovery Manager carries it out")
REFUSED = re.compile(r"Fallback[^<]* refused: [^<]*|Fallback is not offered[^<]*")


def press_fallback(group: GroupOnBed) -> None:
    """Press Fallback for A on the group page until the page says it was requested, as an
    operator presses it again while the page refuses (A's agent not reporting yet, say)."""
    client = Client()
    client.force_login(group.admin)

    def pressed() -> bool:
        response = client.post(
            reverse("topology:group_detail", args=[group.group.pk]) + "server-action/",
            {"node": group.nodes["a"].pk, "action": "fallback"},
            follow=True,
        )
        page = response.content.decode()
        refusal = REFUSED.search(page)
        pressed.last = refusal.group(0) if refusal else page[-1500:]
        return bool(REQUESTED.search(page))

    wait_for(pressed, 30, lambda: f"the group page accepting Fallback (last answer: {pressed.last})", interval=0.5)


def diagnosis(group: GroupOnBed, what: str) -> Callable[[], str]:
    """``what``, then what a stuck wait needs to be explained: each node's state and reason,
    the chat database's sessions (who waits on whose lock, doing what) and each agent's last
    log lines."""

    def describe() -> str:
        close_old_connections()
        nodes = Node.objects.filter(pk__in=[n.pk for n in group.nodes.values()])
        lines = [what, "states: " + ", ".join(f"{n.name} {n.ha_state} ({n.ha_reason})" for n in nodes)]
        for label, dbname in (("chat database", group.chat_db), ("config DB", group.config_db)):
            lines.append(f"{label} sessions (pid | client | state | wait | blocked by | transaction age | query):")
            with admin(group.bed, dbname) as conn:
                for row in conn.execute(
                    "SELECT pid, client_addr, state, wait_event_type, wait_event, pg_blocking_pids(pid), "
                    "now() - xact_start, left(query, 160) FROM pg_stat_activity WHERE datname = %s "
                    "AND pid <> pg_backend_pid()",
                    (dbname,),
                ):
                    lines.append("  " + " | ".join(str(value) for value in row))
        for action in ServerAction.objects.filter(group=group.group).order_by("pk"):
            lines.append(f"server action {action.action} of node {action.node_id}: {action.status} {action.result}")
        for key, agent in group.agents.items():
            lines.append(f"--- last lines of agent {key} ---")
            lines.extend(agent.log().splitlines()[-25:])
        return "\n".join(lines)

    return describe


def fenced_at(group: GroupOnBed, since: float) -> float | None:
    """When A's agent logged that it stops serving its rooms, first after ``since``."""
    for stamp in FENCED_LINE.findall(group.agents["a"].log()):
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if at >= since:
            return at
    return None


# --- the cases ---------------------------------------------------------------------------------


def _until_backup_serves(group: GroupOnBed, conversation: Conversation, cut_at: float) -> None:
    b = group.nodes["b"].name
    wait_for(
        lambda: states(group)[b] == HAState.RUNNING_IN_BACKUP_MODE, 60, diagnosis(group, "B running in backup mode")
    )
    since = time.time()
    wait_for(
        lambda: conversation.acked_by_each_since(since) >= 5, 60, lambda: f"both users posting on B ({conversation})"
    )


def _until_heartbeats_outlast_the_timeout(group: GroupOnBed, conversation: Conversation, cut_at: float) -> None:
    """A keeps renewing its heartbeat through the cut, past the time B would take it over."""
    a = group.nodes["a"]
    timeout = group.params.heartbeat_timeout

    def renewed_past_timeout() -> bool:
        close_old_connections()
        beat = Node.objects.get(pk=a.pk).last_heartbeat
        return beat is not None and beat.timestamp() > cut_at + timeout + 1

    wait_for(renewed_past_timeout, 60, "A's heartbeat renewed past the heartbeat timeout")
    andy = conversation.chatters[0]
    wait_for(lambda: sum(1 for *_, at in andy.acked if at > cut_at) >= 5, 30, "Andy posting on A")


def _flap(group: GroupOnBed, conversation: Conversation, cut_at: float) -> None:
    """Down for half the heartbeat timeout, up as long, four times (the cut began it)."""
    half = group.params.heartbeat_timeout / 2
    for cycle in range(4):
        time.sleep(half)
        group.bed.link("a", up=True)
        time.sleep(half)
        if cycle < 3:
            group.bed.link("a", up=False)


def _lossy(group: GroupOnBed, conversation: Conversation, cut_at: float) -> None:
    """Three heartbeat timeouts of loss and delay."""
    time.sleep(3 * group.params.heartbeat_timeout)


def _cut_lossy(group: GroupOnBed) -> None:
    group.bed.lose("a", RELAY_IP, 20)
    group.bed.delay_config_db(200)


CASES = {
    case.name: case
    for case in (
        Case(
            "config-db",
            "cut A from the config DB only",
            lambda group: group.bed.cut("a", *CONFIG_DB_ADDRESSES),
            _until_backup_serves,
        ),
        Case("everything", "cut A from everything", lambda group: group.bed.link("a", up=False), _until_backup_serves),
        Case(
            "redis",
            "cut A from the Redis bus only",
            lambda group: group.bed.cut("a", REDIS_IP),
            _until_heartbeats_outlast_the_timeout,
        ),
        Case(
            "flapping",
            "A's link down for half the heartbeat timeout, four times",
            lambda group: group.bed.link("a", up=False),
            _flap,
        ),
        Case("lossy", "20 % loss and 200 ms delay between A and the config DB", _cut_lossy, _lossy),
    )
}


def run_case(group: GroupOnBed, case: Case, *, fall_back: bool = True) -> CaseRun:
    """Run ``case`` on a fresh group (agents not started yet); see the module docstring."""
    group.start_agent("a")
    group.start_agent("b")
    wait_for(lambda: ready(group), 90, "both nodes Normal with Text Conference Manager started")
    conversation = Conversation(group).start()
    try:
        wait_for(lambda: conversation.acked_by_each_since(0) >= 5, 60, "the first acknowledgements")
        last_transition = HATransition.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        cut_at = time.time()
        case.cut(group)
        case.hold(group, conversation, cut_at)
        heal_at = time.time()
        acks_during_cut = {
            chatter.user: sum(1 for _, _, at in chatter.acked if cut_at < at <= heal_at)
            for chatter in conversation.chatters
        }
        group.bed.heal("a")
        wait_for(lambda: steady(group), 90, diagnosis(group, "the group steady after the heal"))
        since = time.time()
        wait_for(
            lambda: conversation.acked_by_each_since(since) >= 3,
            60,
            lambda: diagnosis(group, f"both users posting after the heal ({conversation})")(),
        )
        fell_back = False
        acks_after_fallback = 0
        if fall_back and states(group)[group.nodes["a"].name] == HAState.FAILED_OVER:
            press_fallback(group)
            wait_for(
                lambda: set(states(group).values()) == {HAState.NORMAL},
                60,
                diagnosis(group, "both Normal after Fallback"),
            )
            fell_back = True
            since = time.time()
            wait_for(
                lambda: conversation.acked_by_each_since(since) >= 5,
                60,
                lambda: diagnosis(group, f"both users posting after Fallback ({conversation})")(),
            )
            acks_after_fallback = conversation.acked_by_each_since(since)
    finally:
        conversation.finish()
    seen: dict[str, list[tuple[str, str]]] = {node.name: [] for node in group.nodes.values()}
    for name, state, reason in (
        HATransition.objects.filter(pk__gt=last_transition)
        .order_by("at", "pk")
        .values_list("node__name", "to_state", "reason")
    ):
        seen[name].append((state, reason))
    fenced = fenced_at(group, cut_at)
    return CaseRun(
        case=case,
        outcome=group.outcome(conversation.room, conversation.chatters, cut_at),
        fenced_after=None if fenced is None else fenced - cut_at,
        states_seen=seen,
        final_states=states(group),
        page_matches=group_page_matches(group),
        fell_back=fell_back,
        acks_during_cut=acks_during_cut,
        acks_after_fallback=acks_after_fallback,
    )
