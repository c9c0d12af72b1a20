"""Schema migrations of the store (Alembic, scripts in linkage/store/migrations), run when a
store opens.

Opening a store checks an SQLite file (linkage.store.integrity.check_sqlite_file), then brings
its schema to the newest revision. Processes that open one store at the same moment (two runs,
or a run and the review server, starting together) take turns: on
PostgreSQL under an advisory lock held by the migrating transaction, on SQLite under the write
lock of a `BEGIN IMMEDIATE` transaction. Both back ends have transactional DDL this way, so a
process killed while migrating leaves the store as it was.
"""
from __future__ import annotations

import functools
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

SCRIPTS = Path(__file__).resolve().parent / "migrations"
# Any constant both processes agree on: "linkage" in ASCII, as the advisory lock's key.
PG_LOCK_KEY = 0x6C696E6B616765


def alembic_config(url: str | None = None) -> Config:
    """A Config pointing into the package (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@functools.lru_cache(maxsize=1)
def head() -> str:
    """The newest revision (scripts are read once per process)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(engine: sa.Engine) -> str | None:
    """The store's revision, None for an empty store or one made before migrations; a damaged
    SQLite file raises StoreDamaged (what `db current` had best say about it)."""
    from linkage.store.integrity import check_sqlite_file

    check_sqlite_file(engine)
    return _revision(engine)


def _revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the store to `revision`; quick when it is there already.

    An SQLite file is checked first and a damaged one refused (StoreDamaged) before anything
    is written to it: every process that opens a store (`run`, `export`, `serve`, `db upgrade`)
    comes through here.
    """
    from linkage.store.integrity import check_sqlite_file

    check_sqlite_file(engine)
    if revision == "head" and _revision(engine) == head():
        return
    url = engine.url
    in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
    if in_memory:  # one connection, one process: nothing to take turns with
        with engine.begin() as conn:
            _upgrade(conn, revision)
        return
    locked = _locking_engine(url)
    try:
        with locked.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            _upgrade(conn, revision)
    finally:
        locked.dispose()


def _upgrade(conn: sa.Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


def _locking_engine(url: sa.URL) -> sa.Engine:
    """One connection whose transaction holds the lock the migration runs under.

    pysqlite begins transactions lazily and not before DDL; with its own transaction handling
    off and an explicit BEGIN IMMEDIATE, the whole migration is one SQLite write transaction.
    """
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, poolclass=NullPool)
    engine = sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
