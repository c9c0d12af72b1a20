"""The store's schema comes from Alembic migrations, on SQLite and on the real PostgreSQL server."""
import subprocess
import sys

import pandas as pd
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from linkage.cli import main
from linkage.store import Store, decisions, metadata, migrate, runs


def _diff(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                metadata)


def test_migrations_build_exactly_the_store_metadata(backend_url):
    store = Store(backend_url)
    assert migrate.current(store.engine) == migrate.head()
    assert _diff(store.engine) == []
    store.engine.dispose()


def test_a_store_made_before_migrations_is_adopted_with_its_data(backend_url):
    old = sa.create_engine(backend_url)
    metadata.create_all(old)  # what Store() did before migrations
    with old.begin() as conn:
        conn.execute(runs.insert().values(run_id="R1", job="demo", started_at=pd.Timestamp.now(
            tz="UTC").to_pydatetime(), status="complete"))
    assert migrate.current(old) is None
    old.dispose()

    store = Store(backend_url)
    store.add_decision(("police", "GA1"), ("ncms", "NH1"), "match", "wang")
    assert migrate.current(store.engine) == migrate.head()
    assert store.last_complete_run("demo") == "R1"
    assert _diff(store.engine) == []
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar() == 1
    store.engine.dispose()


def test_processes_opening_one_new_store_at_once_all_succeed(backend_url):
    """Four processes open an empty store together: each waits its turn, none fails."""
    code = "import sys; from linkage.store import Store; Store(sys.argv[1]).engine.dispose()"
    procs = [subprocess.Popen([sys.executable, "-c", code, backend_url], stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    engine = sa.create_engine(backend_url)
    assert migrate.current(engine) == migrate.head()
    assert _diff(engine) == []
    engine.dispose()


def test_db_commands_show_and_upgrade_the_revision(demo_job, capsys):
    assert main(["db", "current", str(demo_job)]) == 0
    assert "revision none" in capsys.readouterr().out
    assert main(["db", "upgrade", str(demo_job)]) == 0
    assert f"revision {migrate.head()} (newest {migrate.head()})" in capsys.readouterr().out
