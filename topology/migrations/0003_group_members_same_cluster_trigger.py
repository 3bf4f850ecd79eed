"""A node's redundancy group belongs to the node's cluster, held by the database itself.

Django cannot express a check that spans two tables, so a trigger refuses a node whose group
is of another cluster, and a group whose cluster changes away from its members'.

On SQLite, Django rebuilds a table for most ALTERs, and the rebuild drops the table's
triggers: a later migration that alters topology_node or topology_redundancygroup must run
SQLITE again (``test_database_refuses_a_member_of_another_cluster_...`` fails until it does).
"""

from django.db import migrations

MESSAGE = "a presence redundancy group holds nodes of its own cluster only"

POSTGRES = [
    f"""
    CREATE FUNCTION topology_group_same_cluster() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_TABLE_NAME = 'topology_node' THEN
            IF NEW.redundancy_group_id IS NOT NULL AND EXISTS (
                SELECT 1 FROM topology_redundancygroup g
                WHERE g.id = NEW.redundancy_group_id AND g.cluster_id <> NEW.cluster_id
            ) THEN
                RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
        ELSIF EXISTS (
            SELECT 1 FROM topology_node n WHERE n.redundancy_group_id = NEW.id AND n.cluster_id <> NEW.cluster_id
        ) THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$
    """,
    "CREATE TRIGGER topology_node_group_same_cluster BEFORE INSERT OR UPDATE OF cluster_id, redundancy_group_id "
    "ON topology_node FOR EACH ROW EXECUTE FUNCTION topology_group_same_cluster()",
    "CREATE TRIGGER topology_redundancygroup_same_cluster BEFORE UPDATE OF cluster_id "
    "ON topology_redundancygroup FOR EACH ROW EXECUTE FUNCTION topology_group_same_cluster()",
]
POSTGRES_REVERSE = [
    "DROP TRIGGER IF EXISTS topology_redundancygroup_same_cluster ON topology_redundancygroup",
    "DROP TRIGGER IF EXISTS topology_node_group_same_cluster ON topology_node",
    "DROP FUNCTION IF EXISTS topology_group_same_cluster()",
]

_NODE_CHECK = f"""
    WHEN NEW.redundancy_group_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM topology_redundancygroup g WHERE g.id = NEW.redundancy_group_id AND g.cluster_id <> NEW.cluster_id
    )
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
"""
SQLITE = [
    f"CREATE TRIGGER topology_node_group_same_cluster_insert BEFORE INSERT ON topology_node FOR EACH ROW {_NODE_CHECK}",
    "CREATE TRIGGER topology_node_group_same_cluster_update BEFORE UPDATE OF cluster_id, redundancy_group_id "
    f"ON topology_node FOR EACH ROW {_NODE_CHECK}",
    f"""
    CREATE TRIGGER topology_redundancygroup_same_cluster BEFORE UPDATE OF cluster_id ON topology_redundancygroup
    FOR EACH ROW WHEN EXISTS (
        SELECT 1 FROM topology_node n WHERE n.redundancy_group_id = NEW.id AND n.cluster_id <> NEW.cluster_id
    )
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
    """,
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS topology_redundancygroup_same_cluster",
    "DROP TRIGGER IF EXISTS topology_node_group_same_cluster_update",
    "DROP TRIGGER IF EXISTS topology_node_group_same_cluster_insert",
]


def _run(statements: dict):
    def run(apps, schema_editor):
        for statement in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("topology", "0002_services_srm_ha")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES, "sqlite": SQLITE}),
            _run({"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE}),
        )
    ]
