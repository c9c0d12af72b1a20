"""A damaged SQLite store is refused when it is opened, before anything is written to it, with
one line naming the file (`run`, `export`, `serve`, `db upgrade` exit 2); a sound store is in
WAL mode, so readers read on while a run holds its write transaction."""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from linkage.cli import main
from linkage.store import Store, StoreDamaged, entity_members, runs

REPO = Path(__file__).resolve().parents[2]
PAGE = 4096


def _stored_run(store: Store, persons: int = 6000) -> str:
    """One complete run with enough rows that the file spans a few hundred pages."""
    ids = [f"E{i:06d}" for i in range(persons)]
    members = pd.DataFrame({"source": "police", "record_id": [f"GA{i:08d}" for i in range(persons)],
                            "entity_id": ids})
    golden = pd.DataFrame({"entity_id": ids, "status": "VERIFIED", "name": "张伟",
                           "id_number": "150521196503120016", "birth_date": "1965-03-12",
                           "gender": "M"})
    pairs = pd.DataFrame({"source_l": "ncms", "record_l": [f"NH{i:08d}" for i in range(persons)],
                          "source_r": "police", "record_r": members["record_id"],
                          "weight": -3.2, "probability": 0.1, "band": "review", "reason": "",
                          "explanation": "{}"})
    run_id = store.begin_run("demo")
    store.finish_run(run_id, {"n": persons}, {"m": 1}, members, golden, pairs)
    return run_id


@pytest.fixture(scope="module")
def sound_store(tmp_path_factory) -> Path:
    """A sound SQLite store holding one run, closed (its WAL checkpointed into the file)."""
    path = tmp_path_factory.mktemp("sound") / "store.sqlite"
    store = Store(f"sqlite:///{path}")
    _stored_run(store)
    store.engine.dispose()
    return path


def _overwrite_middle_pages(path: Path, pages: int = 4) -> None:
    """Random bytes over whole pages in the middle of the file, as a bad disk block leaves it."""
    n_pages = path.stat().st_size // PAGE
    rng = random.Random(14)
    with open(path, "r+b") as fh:
        fh.seek((n_pages // 2) * PAGE)
        fh.write(rng.randbytes(pages * PAGE))


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)  # a copy cut short (disk full, killed scp)


def _not_a_database(path: Path) -> None:
    path.write_text("source,record_id\npolice,GA1\n" * 200, encoding="utf-8")  # a CSV named .sqlite


DAMAGE = {"middle pages overwritten": _overwrite_middle_pages, "truncated": _truncate,
          "not a database": _not_a_database}


@pytest.fixture(params=list(DAMAGE))
def damaged(request, sound_store, tmp_path) -> Path:
    path = tmp_path / "store.sqlite"
    shutil.copy(sound_store, path)
    DAMAGE[request.param](path)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_damaged_store_is_refused_when_opened_and_left_as_it_was(damaged):
    before = _digest(damaged)
    with pytest.raises(StoreDamaged) as caught:
        Store(f"sqlite:///{damaged}")
    message = str(caught.value)
    assert message.startswith(f"the store {damaged} is damaged (")
    assert "\n" not in message
    assert _digest(damaged) == before  # nothing written: no migration, no journal-mode switch


def test_the_damage_found_is_the_one_integrity_check_reports(sound_store, tmp_path):
    """Without the check at opening, this store opened and a run was written into it."""
    import sqlite3

    path = tmp_path / "store.sqlite"
    shutil.copy(sound_store, path)
    _overwrite_middle_pages(path)
    db = sqlite3.connect(path)
    try:
        try:
            verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            verdict = str(exc)
    finally:
        db.close()
    assert verdict != "ok"
    with pytest.raises(StoreDamaged):
        Store(f"sqlite:///{path}")


def test_a_sound_store_opens_on_each_backend(backend_url):
    store = Store(backend_url)
    run_id = _stored_run(store, persons=50)
    assert Store(backend_url).last_complete_run("demo") == run_id  # opened again: checked, sound
    store.engine.dispose()


@pytest.fixture
def damaged_job(damaged, make_demo_job, tmp_path) -> Path:
    """The demo job over the small world with its store at the damaged file."""
    return make_demo_job(tmp_path, f"sqlite:///{damaged}")


@pytest.mark.parametrize("command", [
    ["export", "CONFIG"], ["db", "upgrade", "CONFIG"], ["db", "current", "CONFIG"],
    ["decide", "CONFIG", "police:GA1", "ncms:NH1", "match", "--reviewer", "r1"],
    ["tokens", "list", "CONFIG"]])
def test_every_command_stops_with_one_line_naming_the_damaged_file(command, damaged_job,
                                                                    damaged, capsys):
    before = _digest(damaged)
    assert main([str(damaged_job) if a == "CONFIG" else a for a in command]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: the store {damaged} is damaged ("), err
    assert not any("Traceback" in line for line in err)
    assert _digest(damaged) == before


@pytest.mark.parametrize("command", [["run"], ["serve", "--port", "0"]])
def test_linkage_run_and_serve_exit_2_on_a_damaged_store_without_a_traceback(command, damaged_job,
                                                                             damaged):
    """As real processes: what an operator sees (a serve that started would not end)."""
    before = _digest(damaged)
    proc = subprocess.run([sys.executable, "-m", "linkage.cli", command[0], str(damaged_job),
                           *command[1:]], capture_output=True, text=True, cwd=REPO, timeout=120,
                          check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: the store {damaged} is damaged (")
    assert _digest(damaged) == before


# --- the seal: a store left sound by a linkage process is not read page by page again -----------

@pytest.fixture
def quick_checks(monkeypatch):
    """How many times PRAGMA quick_check runs, on any engine, while the test runs."""
    seen = []

    def count(conn, cursor, statement, *args):
        if "quick_check" in statement:
            seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


def _sealed(sound_store: Path, folder: Path) -> Path:
    """A copy of the sound store, opened and closed by linkage: sealed as it was left."""
    path = folder / "store.sqlite"
    shutil.copy(sound_store, path)
    Store(f"sqlite:///{path}").close()
    assert path.with_name(path.name + ".sound").is_file()
    return path


def test_a_store_a_linkage_process_closed_opens_again_without_reading_every_page(
        sound_store, tmp_path, quick_checks):
    path = _sealed(sound_store, tmp_path)
    assert len(quick_checks) == 1  # the copy was checked once, when first opened
    store = Store(f"sqlite:///{path}")
    assert store.last_complete_run("demo") is not None
    assert len(quick_checks) == 1
    _stored_run(store, persons=50)  # a run written and the store closed: sealed as it is now
    store.close()
    Store(f"sqlite:///{path}").close()
    assert len(quick_checks) == 1


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_sealed_store_damaged_afterwards_is_checked_and_refused(sound_store, tmp_path, how,
                                                                  quick_checks):
    path = _sealed(sound_store, tmp_path)
    DAMAGE[how](path)
    with pytest.raises(StoreDamaged):
        Store(f"sqlite:///{path}")
    assert len(quick_checks) == 2


def test_a_copy_of_a_sealed_store_is_checked_in_full_seal_and_all(sound_store, tmp_path,
                                                                  quick_checks):
    """A restored backup is another file (another inode): its copied seal does not vouch
    for it."""
    path = _sealed(sound_store, tmp_path)
    copy = tmp_path / "restored"
    copy.mkdir()
    shutil.copy2(path, copy / path.name)
    shutil.copy2(path.with_name(path.name + ".sound"), copy / (path.name + ".sound"))
    Store(f"sqlite:///{copy / path.name}").close()
    assert len(quick_checks) == 2


def test_a_store_written_by_a_process_that_did_not_seal_it_is_checked_again(sound_store,
                                                                            tmp_path,
                                                                            quick_checks):
    """A writer that leaves without Store.close (the review app killed, sqlite3 by hand)."""
    import sqlite3

    path = _sealed(sound_store, tmp_path)
    db = sqlite3.connect(path)
    db.execute("UPDATE runs SET summary = '{}'")
    db.commit()
    db.close()
    Store(f"sqlite:///{path}").close()
    assert len(quick_checks) == 2


# --- WAL: readers do not wait for a writer ------------------------------------------------------

def test_a_sqlite_store_is_put_in_wal_mode_when_opened(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    store.engine.dispose()


def _write_like_a_run(conn: sa.Connection, run_id: str = "held") -> None:
    """Inside an open transaction, more rows than SQLite's page cache holds, as a run's store
    stage writes them: in rollback-journal mode the writer then holds the exclusive lock that
    keeps every reader out until it commits."""
    conn.execute(runs.insert().values(run_id=run_id, job="demo", status="running",
                                      started_at=pd.Timestamp.now(tz="UTC")))
    conn.execute(entity_members.insert(), [
        {"run_id": run_id, "source": "police", "record_id": f"GA{i:010d}", "entity_id": f"E{i}"}
        for i in range(60_000)])


def _read_runs(url: str) -> tuple[dict, float]:
    """The runs a fresh connection sees, and how long it waited (at most 5 s for a lock)."""
    reader = sa.create_engine(url, connect_args={"timeout": 5})
    started = time.monotonic()
    try:
        with reader.connect() as conn:
            return dict(conn.execute(sa.select(runs.c.run_id, runs.c.status)).all()), \
                time.monotonic() - started
    finally:
        reader.dispose()


def test_a_reader_reads_while_another_connection_holds_an_open_write_transaction(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    store = Store(url)
    first = _stored_run(store, persons=50)
    try:
        with store.engine.connect() as writer:
            writer.begin()
            _write_like_a_run(writer)
            seen, waited = _read_runs(url)  # rollback journal: "database is locked" after 5 s
            assert seen == {first: "complete"}  # the last committed state, nothing half-written
            assert waited < 1.0
            writer.commit()
        assert _read_runs(url)[0] == {first: "complete", "held": "running"}
    finally:
        store.engine.dispose()


def test_a_reader_in_another_process_reads_while_a_run_writes(tmp_path):
    """The review server's case: its process reads while `linkage run`, another process, is
    inside its store transaction."""
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    store = Store(url)
    _stored_run(store, persons=50)
    code = (f"import sqlalchemy as sa, time; e = sa.create_engine({url!r}, "
            "connect_args={'timeout': 5}); t = time.monotonic(); c = e.connect();"
            "print(c.exec_driver_sql('SELECT status FROM runs').scalar(),"
            " round(time.monotonic() - t, 3))")
    try:
        with store.engine.connect() as writer:
            writer.begin()
            _write_like_a_run(writer)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 timeout=60, check=False)
            writer.rollback()
        assert out.returncode == 0, out.stderr
        status, waited = out.stdout.split()
        assert status == "complete" and float(waited) < 1.0
    finally:
        store.engine.dispose()


def test_a_closed_store_is_whole_in_its_one_file(tmp_path):
    """Tests and operators copy a closed store file on its own: the last connection to close
    checkpoints the WAL into the file and removes it."""
    path = tmp_path / "store.sqlite"
    store = Store(f"sqlite:///{path}")
    run_id = _stored_run(store, persons=500)
    store.engine.dispose()
    assert not Path(f"{path}-wal").exists()
    copy = tmp_path / "copy.sqlite"
    shutil.copy(path, copy)
    assert Store(f"sqlite:///{copy}").members(run_id).shape[0] == 500
