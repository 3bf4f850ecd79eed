import psycopg
import pytest


def test_postgres_factory_creates_and_drops_a_database(postgres):
    name = postgres.database()
    with postgres.connect(name) as conn:
        assert conn.execute("select current_database()").fetchone()[0] == name
    postgres.cleanup()
    postgres.databases.clear()
    with pytest.raises(psycopg.OperationalError):
        postgres.connect(name).close()
