"""Membership and golden records stored as versions: a run writes only what changed, and every
run still reads exactly its own state, on SQLite and on the real PostgreSQL server."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkage.store import Store, entity_members, golden, migrate, runs
from linkage.store.history import per_run

JOBS = itertools.count()


def _members(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["source", "record_id", "entity_id"])


def _golden(members: pd.DataFrame, names: dict[str, str] | None = None) -> pd.DataFrame:
    ids = sorted(set(members["entity_id"]))
    names = names or {}
    return pd.DataFrame({"entity_id": ids, "status": "VERIFIED",
                         "name": [names.get(e, "张伟") for e in ids], "id_number": None,
                         "birth_date": "1965-03-12", "gender": "M"})


def _store_run(store: Store, members: pd.DataFrame, names=None, job: str = "demo") -> tuple:
    run = store.begin_run(job)
    counts = store.finish_run(run, {}, {}, members, _golden(members, names), pd.DataFrame())
    return run, counts


def _sorted(frame: pd.DataFrame) -> list:
    return sorted(map(tuple, frame[["source", "record_id", "entity_id"]].to_numpy().tolist()))


def _rows(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


@pytest.fixture
def store(backend_url):
    return Store(backend_url)


def test_an_unchanged_run_writes_nothing_and_a_merge_writes_the_moved_record(store):
    # 张伟 (police GA1, ncms NH1) and 王芳 (police GA2) with her urban record NU2 apart.
    first = _members([("police", "GA1", "E1"), ("ncms", "NH1", "E1"), ("police", "GA2", "E2"),
                      ("urban", "NU2", "E3")])
    r1, counts = _store_run(store, first)
    assert counts["entity_members"]["written"] == 4 and counts["golden"]["written"] == 3
    r2, counts = _store_run(store, first.sample(frac=1, random_state=1))
    assert counts == {"entity_members": {"written": 0, "closed": 0, "rewrite": False},
                      "golden": {"written": 0, "closed": 0, "rewrite": False}}
    merged = _members([("police", "GA1", "E1"), ("ncms", "NH1", "E1"), ("police", "GA2", "E2"),
                       ("urban", "NU2", "E2")])  # a reviewer's 同一人: NU2 joins 王芳
    r3, counts = _store_run(store, merged, names={"E2": "王芳"})
    assert counts["entity_members"] == {"written": 1, "closed": 1, "rewrite": False}
    assert counts["golden"] == {"written": 1, "closed": 2, "rewrite": False}  # E2 new, E3 gone
    assert _rows(store, entity_members) == 5 and _rows(store, golden) == 4
    assert _sorted(store.members(r1)) == _sorted(store.members(r2)) == _sorted(first)
    assert _sorted(store.members(r3)) == _sorted(merged)
    assert sorted(store.verified_entities(r2)) == ["E1", "E2", "E3"]
    assert sorted(store.verified_entities(r3)) == ["E1", "E2"]
    assert len(list(store.golden_records(r3))) == 2
    assert any('"王芳"' in r for r in store.golden_records(r3))
    assert not any('"王芳"' in r for r in store.golden_records(r2))


def test_a_mostly_new_state_is_written_whole(store, monkeypatch):
    from linkage.store import versions

    monkeypatch.setattr(versions, "REWRITE_MIN", 5)
    first = _members([("ncms", f"NH{i}", f"E{i}") for i in range(10)])
    _store_run(store, first)
    renamed = _members([("ncms", f"NH{i}", f"F{i}") for i in range(10)])
    run, counts = _store_run(store, renamed)
    assert counts["entity_members"]["rewrite"] and counts["entity_members"]["written"] == 10
    assert _sorted(store.members(run)) == _sorted(renamed)


def test_two_jobs_in_one_store_keep_their_own_versions(store):
    a = _members([("police", "GA1", "E1")])
    b = _members([("police", "GA1", "X1"), ("ncms", "NH1", "X1")])
    ra, _ = _store_run(store, a, job="county_a")
    rb, _ = _store_run(store, b, job="county_b")
    ra2, counts = _store_run(store, a, job="county_a")
    assert counts["entity_members"]["written"] == 0
    assert _sorted(store.members(ra2)) == _sorted(a)
    assert _sorted(store.members(rb)) == _sorted(b)


def test_a_plan_made_before_another_run_completed_is_made_again(store):
    """A run plans its versions against run 1; an add completes run 2 meanwhile: the store
    diffs against run 2 when it writes, so run 2's records are closed or kept correctly."""
    one = _members([("police", "GA1", "E1"), ("ncms", "NH1", "E1")])
    r1, _ = _store_run(store, one)
    run = store.begin_run("demo")
    late = _members([("police", "GA1", "E1"), ("ncms", "NH1", "E2")])
    planned = store.plan_versions("demo", late, _golden(late), base=(r1, store.members(r1)))
    two = _members([("police", "GA1", "E1"), ("ncms", "NH1", "E1"), ("urban", "NU9", "E9")])
    r2, _ = _store_run(store, two)
    store.finish_run(run, {}, {}, late, _golden(late), pd.DataFrame(), planned=planned)
    assert _sorted(store.members(run)) == _sorted(late)  # NU9 closed, not left open
    assert _sorted(store.members(r2)) == _sorted(two)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(st.sampled_from([f"NH{i}" for i in range(8)]),
                                st.sampled_from(["E1", "E2", "E3", "E4"]), min_size=1),
                min_size=1, max_size=5))
def test_every_run_reads_back_exactly_what_it_stored(backend_url, states):
    """Any sequence of memberships (records joining, leaving, moving, coming back) read back
    run by run, and the per-run expansion history uses says the same."""
    store = Store(backend_url)
    job = f"job{next(JOBS)}"  # one store serves every example: each has its own job
    stored = []
    for state in states:
        members = _members([("ncms", r, e) for r, e in state.items()])
        stored.append((_store_run(store, members, job=job)[0], members))
    for run, members in stored:
        assert _sorted(store.members(run)) == _sorted(members)
    run_ids = [r for r, _ in stored]
    with store.engine.connect() as conn:
        rows = pd.DataFrame(conn.execute(sa.select(
            entity_members.c.run_id, entity_members.c.valid_to, entity_members.c.source,
            entity_members.c.record_id, entity_members.c.entity_id)
            .where(entity_members.c.run_id.in_(run_ids))).all(),
            columns=["run_id", "valid_to", "source", "record_id", "entity_id"])
    expanded = per_run(rows, run_ids)
    for run, members in stored:
        assert _sorted(expanded[expanded["run_id"] == run]) == _sorted(members)
    store.engine.dispose()


def test_a_store_made_before_versions_reads_each_run_as_it_was_written(backend_url):
    """0006 closes each old run's full copy at the job's next run: both old runs read their
    own rows, and the next run writes only its change."""
    old = sa.create_engine(backend_url)
    migrate.upgrade(old, "0005_run_rejects")
    start = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
    states = {"R1": [("police", "GA1", "E1"), ("ncms", "NH1", "E1")],
              "R2": [("police", "GA1", "E1"), ("ncms", "NH1", "E2")]}
    with old.begin() as conn:
        for n, (run, rows) in enumerate(states.items()):
            at = start + timedelta(hours=n)
            conn.execute(runs.insert().values(run_id=run, job="demo", started_at=at,
                                              finished_at=at, status="complete"))
            for source, record, entity in rows:
                conn.exec_driver_sql(
                    "INSERT INTO entity_members (run_id, source, record_id, entity_id) "
                    f"VALUES ('{run}', '{source}', '{record}', '{entity}')")
            for entity in sorted({e for _, _, e in rows}):
                conn.exec_driver_sql(
                    "INSERT INTO golden (run_id, entity_id, status, record) "
                    f"VALUES ('{run}', '{entity}', 'VERIFIED', '{{}}')")
    old.dispose()
    store = Store(backend_url)
    assert migrate.current(store.engine) == migrate.head()
    for run, rows in states.items():
        assert _sorted(store.members(run)) == sorted(rows)
    run, counts = _store_run(store, _members(states["R2"]))
    assert counts["entity_members"]["written"] == 0  # the old rows of R2 are its open versions
    assert _sorted(store.members(run)) == sorted(states["R2"])
    store.engine.dispose()


def test_keep_runs_deletes_what_only_older_runs_read(store):
    """keep_runs 2: after four runs, runs 3 and 4 read their state whole; 1 and 2 say theirs
    is gone, and no version that only they read is left."""
    from linkage.store import StatePruned

    states = [_members([("ncms", "NH1", e), ("police", "GA1", "P1")]) for e in "ABCD"]
    stored = []
    for members in states:
        run = store.begin_run("demo")
        store.finish_run(run, {}, {}, members, _golden(members), pd.DataFrame(), keep_runs=2)
        stored.append(run)
    for run, members in zip(stored[2:], states[2:]):
        assert _sorted(store.members(run)) == _sorted(members)
    for run in stored[:2]:
        with pytest.raises(StatePruned, match="keep_runs"):
            store.members(run)
    assert _rows(store, entity_members) == 3  # GA1 (kept since run 1), NH1 in C and in D
    assert _rows(store, golden) == 3  # P1, C, D
