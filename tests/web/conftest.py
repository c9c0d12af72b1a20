"""Review-app fixtures: one small synthetic world and one pipeline run per test session, copied
into a fresh store (a SQLite file, or a PostgreSQL schema of its own) for every test."""
from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from review_helpers import add_users, copy_run, login, write_config

from linkage.store import Store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def web_world(tmp_path_factory) -> Path:
    """A synthetic prefecture of 4,000 persons, as the demo job expects it. Larger than the
    shared small world: household linkage leaves some 6 pairs per 1,000 persons for review
    here, and these tests work through a queue of two dozen (claims, leases, second review)."""
    from linkage.synth import generate_world, write_world

    root = tmp_path_factory.mktemp("webworld")
    write_world(generate_world(4000, seed=11), root / "data" / "demo")
    (root / "configs").mkdir()
    shutil.copy(REPO / "configs" / "demo.yaml", root / "configs" / "demo.yaml")
    return root


@pytest.fixture(scope="session")
def web_run(web_world, tmp_path_factory):
    """The demo job run once over the small world, into a SQLite store tests copy from."""
    from linkage.core.config import load_config
    from linkage.jobs.run import run
    from linkage.web.records import RecordBook

    tmp = tmp_path_factory.mktemp("webrun")
    db = tmp / "store.sqlite"
    config = load_config(write_config(web_world, tmp, f"sqlite:///{db}"))
    result = run(config)
    return SimpleNamespace(config=config, db=db, records=RecordBook.from_config(config),
                           run_id=result.run_id, world=web_world)


@pytest.fixture(scope="session")
def template_db(web_run, tmp_path_factory) -> Path:
    """A SQLite store with the session run and the test users, copied file-wise per test (SQLite
    commits each CREATE TABLE on its own, so building a store costs a third of a second)."""
    path = tmp_path_factory.mktemp("template") / "review.sqlite"
    copy_run(web_run.db, f"sqlite:///{path}")
    add_users(f"sqlite:///{path}")
    return path


@pytest.fixture
def store_url(backend_url, web_run, template_db):
    """A fresh store holding the session run and the test users."""
    if backend_url.startswith("sqlite:///"):
        shutil.copy(template_db, backend_url.removeprefix("sqlite:///"))
    else:
        copy_run(web_run.db, backend_url)
        add_users(backend_url)
    return backend_url


@pytest.fixture
def make_app(web_run):
    """Build apps on a store; their connection pools are closed after the test."""
    from linkage.web import create_app

    apps = []

    def build(url: str, **kwargs):
        kwargs.setdefault("records", web_run.records)
        app = create_app(url, web_run.config, "test-secret", **kwargs)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.state.review.store.engine.dispose()


@pytest.fixture
def app(make_app, store_url):
    return make_app(store_url)


@pytest.fixture
def client_for(app):
    """TestClients signed in as a given user (one per call, each its own cookie jar)."""
    from fastapi.testclient import TestClient

    clients = []

    def make(username: str | None = None):
        client = TestClient(app, follow_redirects=False)
        clients.append(client)
        client.csrf = login(client, username) if username else None
        return client

    yield make
    for client in clients:
        client.close()


# --- the check API: the world as a clerk types it, and the app with a token per scope -----------
# (shared by test_check_api.py and test_check_warnings.py)

@pytest.fixture(scope="session")
def world(web_run):
    """The small world's source rows (as text), its truth and the run's entities."""
    data = web_run.world / "data" / "demo"
    police = pd.read_csv(data / "police.csv", dtype=str, keep_default_na=False)
    ncms = pd.read_csv(data / "ncms.csv", dtype=str, keep_default_na=False, encoding="gb18030")
    urban = pd.read_csv(data / "urban.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    truth = pd.read_csv(data / "truth.csv", dtype=str)
    store = Store(f"sqlite:///{web_run.db}")
    members = store.members(web_run.run_id)  # the versions valid in the run
    store.engine.dispose()
    entity = dict(zip(zip(members["source"], members["record_id"]), members["entity_id"]))
    return {"police": police, "ncms": ncms, "urban": urban, "truth": truth, "entity": entity}


@pytest.fixture
def check_url(backend_url, web_run):
    copy_run(web_run.db, backend_url, whole=True)
    return backend_url


@pytest.fixture
def api(make_app, check_url):
    """A TestClient on the review app (check API mounted) and a token per scope."""
    from fastapi.testclient import TestClient

    from linkage.store.tokens import create_token

    app = make_app(check_url)
    engine = app.state.review.store.engine
    tokens = {scope: create_token(engine, f"test-{scope}", scope)[1]
              for scope in ("status", "check", "check_full")}
    with TestClient(app) as client:
        client.tokens = tokens
        client.engine = engine
        client.app_ = app
        yield client
