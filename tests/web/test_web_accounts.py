"""Accounts (argon2 hashes, ranked roles) and the `linkage users` / `linkage serve` commands."""
import logging

import pytest
import sqlalchemy as sa
from review_helpers import FAST_HASHER, PASSWORD, write_config

from linkage.cli import main
from linkage.store import Store, accounts, users
from linkage.web.server import DropQueryString, log_config


@pytest.fixture
def engine(backend_url):
    store = Store(backend_url)
    yield store.engine
    store.engine.dispose()


def test_users_are_stored_with_argon2_hashes_and_ranked_roles(engine):
    accounts.create_user(engine, "alice", PASSWORD, "reviewer", hasher=FAST_HASHER)
    accounts.create_user(engine, "sam", PASSWORD, "supervisor", hasher=FAST_HASHER)
    with engine.connect() as conn:
        digest = conn.execute(sa.select(users.c.password_hash)
                              .where(users.c.username == "alice")).scalar()
    assert digest.startswith("$argon2id$") and PASSWORD not in digest
    assert accounts.authenticate(engine, "alice", PASSWORD).role == "reviewer"
    assert accounts.authenticate(engine, "alice", "wrong one!") is None
    assert accounts.authenticate(engine, "nobody", PASSWORD) is None
    sam = accounts.get_user(engine, "sam")
    assert sam.has_role("reviewer") and sam.has_role("supervisor") and not sam.has_role("admin")
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "alice").values(active=False))
    assert accounts.authenticate(engine, "alice", PASSWORD) is None
    assert [u.username for u in accounts.list_users(engine)] == ["alice", "sam"]


@pytest.mark.parametrize("username, password, role, message", [
    ("alice", PASSWORD, "boss", "role must be one of"),
    ("al ice", PASSWORD, "reviewer", "username"),
    ("150521196503120016" * 4, PASSWORD, "reviewer", "username"),
    ("alice", "short", "reviewer", "at least 8"),
    ("alice", "long enough", "reviewer", "too easy to guess"),
])
def test_bad_accounts_are_refused_with_a_reason(engine, username, password, role, message):
    with pytest.raises(accounts.AccountError, match=message):
        accounts.create_user(engine, username, password, role, hasher=FAST_HASHER)


@pytest.fixture
def config_path(web_world, tmp_path, backend_url):
    return write_config(web_world, tmp_path, backend_url)


def test_users_add_and_list_from_the_command_line(config_path, monkeypatch, capsys):
    monkeypatch.setenv("LINKAGE_PASSWORD", "from the env")
    assert main(["users", "add", str(config_path), "--username", "alice",
                 "--role", "reviewer"]) == 0
    assert main(["users", "add", str(config_path), "--username", "sam",
                 "--role", "supervisor"]) == 0
    assert main(["users", "add", str(config_path), "--username", "sam",
                 "--role", "admin"]) == 2
    monkeypatch.delenv("LINKAGE_PASSWORD")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["users", "add", str(config_path), "--username", "ada", "--role", "admin"]) == 2
    capsys.readouterr()
    assert main(["users", "list", str(config_path)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in listed] == [["alice", "reviewer"],
                                                         ["sam", "supervisor"]]


def test_serve_runs_uvicorn_with_query_strings_cut_from_the_access_log(config_path, monkeypatch):
    from linkage.web.records import RecordBook

    seen = {}

    def fake_run(app, **kwargs):
        seen.update(kwargs, app=app)

    monkeypatch.setattr("uvicorn.run", fake_run)
    monkeypatch.setattr("linkage.web.records.RecordBook.from_config",
                        classmethod(lambda cls, config: RecordBook()))
    assert main(["serve", str(config_path), "--host", "127.0.0.1", "--port", "8123"]) == 0
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
    assert "drop_query" in seen["log_config"]["handlers"]["access"]["filters"]
    assert seen["app"].state.review.config.job == "demo"
    seen["app"].state.review.store.engine.dispose()

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET",
                               "/supervisor/log?reviewer=alice", "1.1", 200), None)
    assert DropQueryString().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /supervisor/log HTTP/1.1" 200'
    assert "drop_query" in log_config()["filters"]


def test_account_and_token_changes_at_the_command_line_are_audited(demo_job, monkeypatch, capsys):
    from linkage.cli import main
    from linkage.core.config import load_config
    from linkage.store import Store, audit

    monkeypatch.setenv("LINKAGE_PASSWORD", "correct horse battery staple 草原")
    assert main(["users", "add", str(demo_job), "--username", "zhao", "--role", "reviewer"]) == 0
    assert main(["users", "disable", str(demo_job), "--username", "zhao"]) == 0
    assert main(["tokens", "add", str(demo_job), "desk-07", "--scope", "check"]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    token_id = secret.split("_")[1]
    assert main(["tokens", "revoke", str(demo_job), token_id]) == 0
    engine = Store(load_config(demo_job).store).engine
    changes = [(e.action, e.detail.get("change")) for e in reversed(audit.entries(engine))
               if e.action in ("account_change", "token_change")]
    assert changes == [("account_change", "added"), ("account_change", "disable"),
                       ("token_change", "added"), ("token_change", "revoked")]
    rows = audit.entries(engine)
    assert all(e.actor.startswith("cli:") for e in rows if e.action.endswith("_change"))
    assert not any(secret.split("_", 2)[2] in str(e.detail) for e in rows)  # no secret kept
    engine.dispose()
