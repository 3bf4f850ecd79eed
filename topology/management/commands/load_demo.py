"""Create the reference use case's topology: two clusters, HA groups, Andy, Bob, Catherine, Deborah."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from imp_admin.roles import SUPER_ADMINISTRATOR
from topology import certificates
from topology.choices import NodeRole, UserAssignmentMode
from topology.credentials import set_password
from topology.models import Cluster, EndUser, Node, NodeServiceParameters, RedundancyGroup, ServiceParameters

DEMO_PORT_BASE = 7400  # node agents listen on 7401, 7402, … on loopback
DEMO_XMPP_PORT_BASE = 5220  # and their XMPP client ports on 5221, 5222, …

# Server Recovery Manager timers for the demo, short enough to watch a failover happen; set
# through the same service parameters an administrator edits (product defaults: 15/60/120/90).
DEMO_SRM_TIMERS = {
    "heartbeat_interval": 2,
    "heartbeat_timeout": 10,
    "initialization_heartbeat_timeout": 20,
    "critical_service_delay": 15,
}
# Clients wait 2–5 s before signing in again on the other node (product: 120–537 s).
DEMO_RELOGIN_LIMITS = {"client_relogin_lower_limit": 2, "client_relogin_upper_limit": 5}

CLUSTERS = [
    # name, cluster id, domain, user assignment mode, groups: (name, ha, [(node, role)])
    (
        "cluster1",
        "imp1",
        "example.com",
        UserAssignmentMode.NONE,
        [
            ("subcluster1", True, [("imp-1a", NodeRole.PUBLISHER), ("imp-1b", NodeRole.SUBSCRIBER)]),
            ("subcluster2", True, [("imp-2a", NodeRole.SUBSCRIBER), ("imp-2b", NodeRole.SUBSCRIBER)]),
        ],
    ),
    (
        "cluster2",
        "imp2",
        "example.com",
        UserAssignmentMode.BALANCED,
        [("c2-subcluster1", False, [("imp-c2a", NodeRole.PUBLISHER), ("imp-c2b", NodeRole.SUBSCRIBER)])],
    ),
]
USERS = [
    ("andy", "Andy", "imp-1a"),
    ("bob", "Bob", "imp-1b"),
    ("catherine", "Catherine", "imp-2a"),
    ("deborah", "Deborah", "imp-2b"),
    ("erin", "Erin", "imp-c2a"),
    ("frank", "Frank", "imp-c2b"),
]


def demo_password(user_id: str) -> str:
    """The demo's chat password of an end user: ``andy`` → ``andy-demo`` (README)."""
    return f"{user_id}-demo"


class Command(BaseCommand):
    help = "Load the demo topology of the reference use case and create an admin login."

    def add_arguments(self, parser):
        parser.add_argument("--admin-password", help="Password for the 'admin' login (default: random).")
        parser.add_argument(
            "--chat-databases",
            action="store_true",
            help="Also create a persistent chat database per HA group (per node without HA) on the local "
            "PostgreSQL (PGHOST, PGPORT, PGUSER, PGPASSWORD), install the TC schema, assign it, and enable "
            "persistent chat.",
        )
        parser.add_argument("--chat-database-prefix", default="imp_demo_tc_", help="Name prefix of those databases.")
        parser.add_argument(
            "--merge-story",
            type=int,
            metavar="MESSAGES",
            default=0,
            help="With --chat-databases: leave subcluster2 as before high availability, each of its nodes with a "
            "database of its own holding MESSAGES room messages (archived), and register an empty destination "
            "for their merge (External Database Jobs).",
        )

    def handle(
        self, *args, admin_password=None, chat_databases=False, chat_database_prefix="", merge_story=0, **options
    ):
        if merge_story and not chat_databases:
            raise CommandError("--merge-story needs --chat-databases.")
        self._load_topology(admin_password)
        if chat_databases:
            from messaging import demo

            server = {
                "host": os.environ.get("PGHOST", "127.0.0.1"),
                "port": int(os.environ.get("PGPORT", "5432")),
                "user": os.environ.get("PGUSER", "postgres"),
                "password": os.environ.get("PGPASSWORD", ""),
            }
            if merge_story:
                demo.prepare_merge_story()
            lines = demo.provision_chat_databases(**server, prefix=chat_database_prefix)
            self.stdout.write("Persistent chat enabled; external databases assigned:")
            for line in lines:
                self.stdout.write(f"  {line}")
            if merge_story:
                self.stdout.write(
                    f"Merge story: {demo.MERGE_STORY_GROUP} without high availability, as before its merge:"
                )
                for line in demo.fill_merge_story(**server, prefix=chat_database_prefix, messages=merge_story):
                    self.stdout.write(f"  {line}")

    @transaction.atomic
    def _load_topology(self, admin_password: str | None) -> None:
        port = DEMO_PORT_BASE
        nodes: dict[str, Node] = {}
        for name, cluster_id, domain, mode, groups in CLUSTERS:
            cluster, _ = Cluster.objects.update_or_create(
                name=name, defaults={"cluster_id": cluster_id, "domain": domain, "user_assignment_mode": mode}
            )
            ServiceParameters.objects.update_or_create(cluster=cluster, defaults=DEMO_SRM_TIMERS)
            for group_name, ha, members in groups:
                for node_name, role in members:
                    port += 1
                    nodes[node_name], _ = Node.objects.update_or_create(
                        name=node_name,
                        defaults={
                            "cluster": cluster,
                            "role": role,
                            "ip_address": "127.0.0.1",
                            "agent_host": "127.0.0.1",
                            "agent_port": port,
                            "xmpp_port": DEMO_XMPP_PORT_BASE + port - DEMO_PORT_BASE,
                        },
                    )
                    NodeServiceParameters.objects.update_or_create(node=nodes[node_name], defaults=DEMO_RELOGIN_LIMITS)
                group, _ = RedundancyGroup.objects.update_or_create(
                    name=group_name, defaults={"cluster": cluster, "ha_enabled": False}
                )
                group.set_servers(*[nodes[node_name] for node_name, _ in members])
                group.ha_enabled = ha
                group.full_clean()
                group.save()
        for user_id, display, node in USERS:
            user, _ = EndUser.objects.update_or_create(
                user_id=user_id,
                defaults={"jid": f"{user_id}@example.com", "display_name": display, "assigned_node": nodes[node]},
            )
            set_password(user, demo_password(user_id))

        password = admin_password or secrets.token_urlsafe(12)
        admin, _ = User.objects.get_or_create(username="admin")
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        admin.groups.add(Group.objects.get(name=SUPER_ADMINISTRATOR))
        self.stdout.write(self.style.SUCCESS("Demo topology loaded: 2 clusters, 6 nodes, 3 groups, 6 users."))
        timers = DEMO_SRM_TIMERS
        self.stdout.write(
            "Server Recovery Manager timers shortened for the demo: critical service delay "
            f"{timers['critical_service_delay']} s, heartbeat timeout {timers['heartbeat_timeout']} s, client "
            "re-login 2–5 s (System > Service Parameters)."
        )
        self.stdout.write(f"Log in as admin / {password}")
        certificates.demo_ca()  # each node's certificate is signed by it when its XMPP port first starts
        self.stdout.write(
            "XMPP client ports (STARTTLS; trust the demo CA "
            f"{certificates.demo_ca_paths()[0]}): "
            + ", ".join(f"{node.name} {node.agent_host}:{node.xmpp_port}" for node in nodes.values())
        )
        self.stdout.write(
            "Chat passwords of the demo users: "
            + ", ".join(f"{user_id} / {demo_password(user_id)}" for user_id, _, _ in USERS)
        )
