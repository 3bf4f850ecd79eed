"""The large data set of the console load benchmark (``manage.py load_bench_data``).

One cluster with 3 presence redundancy groups (6 nodes, HA on, their services), 1,000 end
users, a persistent chat database per group on the local PostgreSQL holding 10,000 persistent
rooms in all, 1,000 finished merge jobs and 100,000 audit trail entries, plus N super
administrators for the benchmark to log in as. Rows are written with ``bulk_create`` and
``COPY`` where there are many; the few topology rows are saved one by one (and audited).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from auditlog.models import LogEntry
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone
from psycopg import sql

from dbmerge.choices import JobKind, JobState, MergeDatabaseType
from dbmerge.models import MergeJob
from imp_admin.roles import SUPER_ADMINISTRATOR
from messaging.database_assignment import assign
from messaging.dbcheck.install import install_schema
from messaging.models import ChatSettings, DatabaseType, ExternalDatabase
from messaging.tc.stanzas import RoomConfig
from topology.choices import HAReason, HAState, NodeRole
from topology.models import Cluster, EndUser, Node, RedundancyGroup, ensure_services

BENCH_PORT_BASE = 7600
BATCH = 5000


@dataclass
class Sizes:
    users: int = 1000
    groups: int = 3
    rooms: int = 10_000
    merge_jobs: int = 1000
    audit_entries: int = 100_000
    admins: int = 20


def load(sizes: Sizes, pg: dict, database_prefix: str, admin_password: str, say=print) -> list[str]:
    """Build the data set in an empty config DB; returns the chat databases created."""
    if Cluster.objects.exists():
        raise ValueError("The config DB already holds a topology; load the benchmark data into an empty one.")
    rng = random.Random(11)
    with transaction.atomic():
        cluster = Cluster.objects.create(name="bench", cluster_id="bench", domain="example.com")
        nodes, groups = [], []
        for index in range(sizes.groups):
            pair = [
                Node.objects.create(
                    name=f"imp-{index + 1}{side}",
                    cluster=cluster,
                    role=NodeRole.PUBLISHER if index == 0 and side == "a" else NodeRole.SUBSCRIBER,
                    ip_address="127.0.0.1",
                    agent_port=BENCH_PORT_BASE + 2 * index + offset,
                )
                for offset, side in enumerate("ab")
            ]
            group = RedundancyGroup.objects.create(name=f"subcluster{index + 1}", cluster=cluster)
            group.set_servers(*pair)
            group.ha_enabled = True
            group.save()
            nodes += pair
            groups.append(group)
        for node in nodes:
            ensure_services(node)
        Node.objects.filter(pk__in=[n.pk for n in nodes]).update(ha_state=HAState.NORMAL, ha_reason=HAReason.NORMAL)
        EndUser.objects.bulk_create(
            [
                EndUser(
                    user_id=f"user{n:04d}",
                    jid=f"user{n:04d}@example.com",
                    display_name=f"User {n:04d}",
                    assigned_node=nodes[n % len(nodes)],
                )
                for n in range(sizes.users)
            ],
            batch_size=BATCH,
        )
        admins = _admins(sizes.admins, admin_password)
    say(f"topology: 1 cluster, {len(groups)} redundancy groups, {len(nodes)} nodes, {sizes.users} end users")

    databases = []
    per_group = -(-sizes.rooms // len(groups))
    proposed = {}
    for index, group in enumerate(groups):
        name = f"{database_prefix}{group.name}"
        database = _chat_database(pg, name)
        outcome = install_schema(database)
        if not outcome.ok:
            raise RuntimeError(f"{database}: {outcome.message}")
        rooms = min(per_group, sizes.rooms - index * per_group)
        _rooms(pg, name, f"conference-{index + 1}-bench.example.com", rooms)
        proposed.update(dict.fromkeys(group.members.all(), database))
        databases.append(name)
        say(f"{database}: {rooms} persistent rooms")
    assign(proposed)
    settings = ChatSettings.for_cluster(cluster)
    settings.enable_persistent_chat = True
    settings.save()

    chat_databases = list(ExternalDatabase.objects.filter(database_name__in=databases))
    _merge_jobs(sizes.merge_jobs, chat_databases, admins, rng)
    say(f"{sizes.merge_jobs} merge jobs")
    _audit_entries(sizes.audit_entries, admins, nodes, rng)
    say(f"{sizes.audit_entries} audit trail entries")
    return databases


def _admins(count: int, password: str) -> list[User]:
    hashed = make_password(password)  # one hash for all: hashing 20 times adds nothing
    User.objects.bulk_create(
        [User(username=f"bench-admin-{n:02d}", password=hashed, is_staff=True) for n in range(1, count + 1)]
    )
    admins = list(User.objects.filter(username__startswith="bench-admin-").order_by("username"))
    role = Group.objects.get(name=SUPER_ADMINISTRATOR)
    role.user_set.add(*admins)
    return admins


def _chat_database(pg: dict, name: str) -> ExternalDatabase:
    with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **pg) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database = ExternalDatabase(
        database_name=name, db_type=DatabaseType.POSTGRES, username=pg["user"], hostname=pg["host"], port=pg["port"]
    )
    database.set_password(pg.get("password") or "bench")
    database.save()
    return database


def _rooms(pg: dict, name: str, alias: str, count: int) -> None:
    owner = "user0000@example.com"
    with psycopg.connect(dbname=name, connect_timeout=5, **pg) as conn:
        with conn.cursor().copy(
            "COPY tc_rooms (room_jid, creator_jid, subject, type, config, spacket, start_msg_id, next_msg_id) "
            "FROM STDIN"
        ) as copy:
            for n in range(count):
                jid = f"room{n:05d}@{alias}"
                config = RoomConfig(f"room{n:05d}", True, False, 50).to_xml()
                copy.write_row((jid, owner, f"Room {n:05d}", "persistent", config, "", 1, 1))
        with conn.cursor().copy(
            "COPY tc_users (room_jid, real_jid, role, affiliation, nick_jid, reason, initiator_jid) FROM STDIN"
        ) as copy:
            for n in range(count):
                jid = f"room{n:05d}@{alias}"
                copy.write_row((jid, owner, "none", "owner", f"{jid}/user0000", "", owner))
        conn.execute("ANALYZE")


def _merge_jobs(count: int, databases: list[ExternalDatabase], admins: list[User], rng: random.Random) -> None:
    now = timezone.now()
    states = [JobState.COMPLETED] * 6 + [JobState.VALIDATED, JobState.VALIDATION_FAILED, JobState.FAILED]
    jobs = []
    for n in range(count):
        source_1, source_2 = rng.sample(databases, 2)
        state = rng.choice(states)
        finished = now - timedelta(minutes=count - n)
        rows = rng.randint(1_000, 200_000)
        progress = {"tc_msgarchive": {"done": rows, "total": rows}} if state == JobState.COMPLETED else {}
        jobs.append(
            MergeJob(
                db_type=MergeDatabaseType.POSTGRES,
                source_1=source_1,
                source_2=source_2,
                target=source_1,
                database_name=source_1.database_name,
                kind=JobKind.MERGE,
                state=state,
                created_by=rng.choice(admins),
                started=finished - timedelta(seconds=30),
                finished=finished,
                progress=progress,
                reason="" if state in (JobState.COMPLETED, JobState.VALIDATED) else "Benchmark data: did not pass.",
            )
        )
    MergeJob.objects.bulk_create(jobs, batch_size=BATCH)


def _audit_entries(count: int, admins: list[User], nodes: list[Node], rng: random.Random) -> None:
    users = list(EndUser.objects.values_list("pk", "user_id")[:1000])
    user_type = ContentType.objects.get_for_model(EndUser)
    node_type = ContentType.objects.get_for_model(Node)
    start = timezone.now() - timedelta(days=365)
    step = timedelta(days=365) / max(count, 1)
    entries = []
    for n in range(count):
        if n % 10:
            pk, label = rng.choice(users)
            content_type, changes = user_type, {"display_name": [f"Old {label}", f"New {label}"]}
        else:
            node = rng.choice(nodes)
            pk, label, content_type = node.pk, node.name, node_type
            changes = {"ip_address": ["127.0.0.1", "127.0.0.2"]}
        entries.append(
            LogEntry(
                content_type=content_type,
                object_pk=str(pk),
                object_id=pk,
                object_repr=label,
                action=LogEntry.Action.UPDATE,
                changes=changes,
                actor=rng.choice(admins),
                timestamp=start + step * n,
            )
        )
        if len(entries) == BATCH:
            LogEntry.objects.bulk_create(entries)
            entries = []
    LogEntry.objects.bulk_create(entries)
