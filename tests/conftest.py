"""Fixtures every suite shares: a small synthetic world, the demo job over it, and a store
location on each back end (a SQLite file, or a PostgreSQL schema of its own on the real server)."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from demo_config import write_demo_config

REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("LINKAGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    """A synthetic prefecture of 1,500 persons written as the demo job expects it."""
    from linkage.synth import generate_world, write_world

    root = tmp_path_factory.mktemp("world")
    write_world(generate_world(1500, seed=11), root / "data" / "demo")
    (root / "configs").mkdir()
    shutil.copy(REPO / "configs" / "demo.yaml", root / "configs" / "demo.yaml")
    return root


@pytest.fixture(scope="session")
def make_demo_job(small_world):
    """Write the demo config over the small world with output and store under ``folder``
    (or the store at the given URL)."""

    def make(folder: Path, store: str | None = None) -> Path:
        return write_demo_config(small_world / "configs" / f"demo-{folder.name}.yaml",
                                 folder / "out", store or f"sqlite:///{folder / 'store.sqlite'}")

    return make


@pytest.fixture
def demo_job(make_demo_job, tmp_path) -> Path:
    """The demo config over the small world, with a store and output of its own."""
    return make_demo_job(tmp_path)


def pg_available() -> bool:
    try:
        engine = sa.create_engine(PG_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


def _store_location(kind: str, folder: Path):
    """A SQLite file not yet made in ``folder``, or a PostgreSQL schema of its own (dropped
    after)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder}/store.sqlite"
        return
    if not pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}; ./dev test starts it")
    schema = "t_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield PG_URL + f"?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.backend)])
def backend_url(request, tmp_path):
    """An empty store location on each back end."""
    yield from _store_location(request.param, tmp_path)


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.backend)])
def module_backend_url(request, tmp_path_factory):
    """backend_url for module-scoped fixtures (one pipeline run shared by a module's tests)."""
    yield from _store_location(request.param, tmp_path_factory.mktemp("store"))

