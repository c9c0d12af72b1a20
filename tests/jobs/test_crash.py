"""Runs killed with SIGKILL (real `linkage run` processes) leave the store and the output folder
consistent, and the next run gives the same entities, golden records and review pairs as a run
that was never interrupted. Also killed in the middle of the store transaction, on SQLite and on
the real PostgreSQL server."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from demo_config import write_demo_config

from linkage.core.config import load_config
from linkage.jobs.run import run
from linkage.store import entity_members, golden, runs, scored_pairs
from linkage.store.queue_rows import pairs_of

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# Stages the pipeline announces, in order (bookkeeping.StageTimer). Standardising happens file
# by file inside ingest (linkage.jobs.state), which is killed with no kept state to read.
STAGES = ["ingest", "block", "compare", "train", "score", "cluster", "golden", "pairs",
          "versions", "keep", "write", "outputs", "store"]


def write_job(world: Path, folder: Path, store_url: str) -> Path:
    """The demo job over the small world with its own output folder and store (u from 50,000
    random pairs: a tenth of the training time, same results on this world)."""
    return write_demo_config(world / "configs" / f"crash-{folder.name}-{uuid.uuid4().hex[:6]}.yaml",
                             folder / "out", store_url, fast_training=True)


def start(config: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "linkage.cli", "run", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=REPO)


def wait_for_stage(proc: subprocess.Popen, stage: str) -> None:
    """Read the run's progress until it announces `stage`."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if re.search(rf"\] {stage} \.\.\.", line):
            return
    proc.wait()
    raise AssertionError(f"the run ended (code {proc.returncode}) before stage {stage}:\n"
                         + "".join(seen[-20:]))


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def snapshot(url: str, run_id: str) -> dict:
    """What a run produced in the store, without its run id: its pairs, and the membership and
    golden records valid in it (versions: a run over unchanged inputs writes none)."""
    from linkage.store import Store

    store = Store(url)
    engine = store.engine
    try:
        with engine.connect() as conn:
            cols = [c for c in scored_pairs.c if c.name != "run_id"]
            pairs = sorted(conn.execute(sa.select(*cols).where(
                pairs_of(run_id))).all())
        return {"entities": sorted(map(tuple, store.members(run_id).to_numpy().tolist())),
                "golden": sorted(store.golden_records(run_id)), "pairs": pairs,
                "review": [p for p in pairs if p.band == "review" or p.reason]}
    finally:
        engine.dispose()


def run_states(url: str) -> dict[str, str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.select(runs.c.run_id, runs.c.status)).all())
    finally:
        engine.dispose()


def assert_consistent(url: str, complete: set[str]) -> str:
    """Only the given runs are complete, and no other run has a row in any result table.

    Returns the id of the one run left unfinished by the kill.
    """
    states = run_states(url)
    assert {r for r, s in states.items() if s == "complete"} == complete
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            for table in (entity_members, golden, scored_pairs):
                holders = set(conn.execute(sa.select(table.c.run_id).distinct()).scalars())
                assert holders <= complete, f"{table.name} holds rows of an unfinished run"
            for table in (entity_members, golden):  # nor closed a version
                closers = set(conn.execute(sa.select(table.c.valid_to).distinct()).scalars())
                assert closers - {None} <= complete, f"{table.name}: closed by an unfinished run"
    finally:
        engine.dispose()
    [killed] = [r for r, s in states.items() if s == "running"]
    return killed


def output_files(out: Path) -> dict[str, str]:
    """The published output files and their digests (staging folders are hidden)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.iterdir()) if p.is_file() and not p.name.startswith(".")}


def rerun_and_compare(config: Path, url: str, baseline: dict, killed: str) -> None:
    """The next run completes, closes the killed one and equals the uninterrupted run."""
    result = run(load_config(config))
    assert run_states(url)[killed] == "failed"  # marked: its process is gone
    assert snapshot(url, result.run_id) == baseline
    assert not list(result.out_dir.glob(".partial-*"))  # the killed run's staging is cleared
    assert (result.out_dir / "summary.json").read_text(encoding="utf-8").count(result.run_id)


@pytest.fixture(scope="module")
def first_run(small_world, tmp_path_factory):
    """One uninterrupted run on SQLite: its folder (store and outputs), id and results."""
    folder = tmp_path_factory.mktemp("crash-base")
    url = f"sqlite:///{folder / 'store.sqlite'}"
    result = run(load_config(write_job(small_world, folder, url)))
    return folder, result.run_id, snapshot(url, result.run_id), output_files(folder / "out")


@pytest.mark.parametrize("stage", STAGES)
def test_a_run_killed_at_any_stage_leaves_the_store_and_files_whole(stage, first_run,
                                                                    small_world, tmp_path):
    base, first_id, baseline, files = first_run
    folder = tmp_path / "job"
    shutil.copytree(base, folder)
    url = f"sqlite:///{folder / 'store.sqlite'}"
    config = write_job(small_world, folder, url)
    if stage == "ingest":  # killed while standardising, not while reading the kept state
        shutil.rmtree(folder / "out" / "state")

    proc = start(config)
    wait_for_stage(proc, stage)
    kill(proc)

    killed = assert_consistent(url, {first_id})
    assert snapshot(url, first_id) == baseline  # the previous complete run is intact
    assert output_files(folder / "out") == files  # no file half-written or from the dead run
    rerun_and_compare(config, url, baseline, killed)


@pytest.fixture
def pg_app_name():
    return "crash_" + uuid.uuid4().hex[:10]


def test_a_run_killed_inside_its_store_transaction_leaves_nothing_behind(
        backend_url, small_world, tmp_path, pg_app_name):
    """Hold the run at the end of its store transaction (PostgreSQL: a lock keeps it from
    committing; SQLite: a trigger keeps its last statement busy), check readers see none of its
    rows without waiting for it, kill it there, then run again."""
    postgres = backend_url.startswith("postgresql")
    url = backend_url + (f"&application_name={pg_app_name}" if postgres else "")
    config = write_job(small_world, tmp_path, url)
    first = run(load_config(config))
    baseline = snapshot(url, first.run_id)
    files = output_files(tmp_path / "out")

    proc = start(config)
    wait_for_stage(proc, "golden")  # before the store write: take the lock that will hold it
    blocker = _hold_commit(url, postgres)
    try:
        wait_for_stage(proc, "store")
        _wait_inside_transaction(url, postgres, pg_app_name, tmp_path / "store.sqlite")
        assert_consistent(url, {first.run_id})  # its rows are in, uncommitted: none is seen
        kill(proc)
    finally:
        blocker.close()
    if postgres:
        _wait_for_backend_gone(url, pg_app_name)
    killed = assert_consistent(url, {first.run_id})
    assert snapshot(url, first.run_id) == baseline
    assert output_files(tmp_path / "out") == files
    rerun_and_compare(config, url, baseline, killed)


class _Blocker:
    def __init__(self, close):
        self.close = close


def _hold_commit(url: str, postgres: bool) -> _Blocker:
    """A transaction that lets the run insert its rows but not finish its transaction.

    PostgreSQL: SHARE on `runs` admits the foreign-key checks of the inserts but not the final
    UPDATE of the run's row. SQLite (WAL: no reader's lock keeps a writer from committing): a
    trigger on that UPDATE runs a cross join of a minute or so inside the run's transaction;
    the test kills the run long before, and drops the trigger after.
    """
    if postgres:
        engine = sa.create_engine(url.split("&application_name=")[0])
        conn = engine.connect()
        conn.execute(sa.text("LOCK TABLE runs IN SHARE MODE"))

        def close():
            conn.rollback()
            conn.close()
            engine.dispose()
        return _Blocker(close)
    db = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
    db.execute("CREATE TRIGGER hold_commit BEFORE UPDATE OF status ON runs "
               "WHEN NEW.status = 'complete' BEGIN SELECT count(*) FROM "
               "(SELECT 1 FROM golden LIMIT 1500), (SELECT 1 FROM golden LIMIT 1500), "
               "(SELECT 1 FROM golden LIMIT 1500); END")
    return _Blocker(lambda: (db.execute("DROP TRIGGER hold_commit"), db.close()))


def _wait_inside_transaction(url, postgres, app_name, db_path, timeout=4.0):
    """Until the run has written inside its open transaction and waits to finish it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if postgres:
            engine = sa.create_engine(url.split("&application_name=")[0])
            with engine.connect() as conn:
                waiting = conn.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :a "
                    "AND wait_event_type = 'Lock' AND query LIKE 'UPDATE runs%'"),
                    {"a": app_name}).scalar()
            engine.dispose()
            if waiting:
                return
        else:  # the run holds the write lock: its transaction has begun writing
            probe = sqlite3.connect(db_path, isolation_level=None, timeout=0)
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
            except sqlite3.OperationalError:
                time.sleep(0.2)  # its inserts go on into the WAL and page cache
                return
            finally:
                probe.close()
        time.sleep(0.02)
    raise AssertionError("the run never reached its store transaction")


def _wait_for_backend_gone(url: str, app_name: str) -> None:
    """PostgreSQL rolls the dead client's transaction back once its backend notices."""
    engine = sa.create_engine(url.split("&application_name=")[0])
    try:
        for _ in range(200):
            with engine.connect() as conn:
                if not conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity "
                                            "WHERE application_name = :a"),
                                    {"a": app_name}).scalar():
                    return
            time.sleep(0.05)
        raise AssertionError("the killed run's PostgreSQL backend did not end")
    finally:
        engine.dispose()
