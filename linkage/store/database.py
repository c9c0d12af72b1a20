"""Opening a job's store (SQLAlchemy: SQLite by default, PostgreSQL for a shared deployment),
and its runs, results and reviewers' decisions.

A run's results are written in one transaction when the run finishes, so a run that dies
half-way (even by SIGKILL) leaves only a 'running' row behind, which the next run marks failed,
and the previous complete run stays the one later runs build on. Membership and golden records
are versions (linkage.store.versions): a run writes only the rows that changed since the job's
latest complete run, and reads back exactly its own state. The schema comes from the
Alembic migrations in linkage/store/migrations, applied when a store is opened. Reviewers'
decisions live beside the runs and outlast them, as do the review app's accounts, leases,
audit trail, second-review requests and reversals.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import NamedTuple

import numpy as np
import pandas as pd
import sqlalchemy as sa

from linkage.store import correspondences as corr_rows
from linkage.store import queue_rows, versions
from linkage.store.integrity import seal, sqlite_file
from linkage.store.tables import (
    DECISIONS,
    decisions,
    entity_members,
    golden,
    household_correspondences,
    run_rejects,
    runs,
    scored_pairs,
)

Key = tuple[str, str]  # (source, record_id)


def canonical_pair(a: Key, b: Key) -> tuple[Key, Key]:
    return (a, b) if a <= b else (b, a)


class Superseded(RuntimeError):
    """A run built on an earlier run (`linkage add`) finds that another run of the job completed
    meanwhile. Storing it would make a state without that run's records or decisions the latest
    one (two adds at once would each miss the other's records), so it is refused."""


def _still_latest(conn: sa.Connection, run_id: str, base: str) -> None:
    """Refuse to store ``run_id`` unless ``base`` is still its job's latest complete run.

    The write lock is taken before looking (SQLite: a first write; PostgreSQL: the base run's
    row, which every run built on it locks), so of two runs built on one base only the first
    to store passes.
    """
    job = conn.execute(sa.select(runs.c.job).where(runs.c.run_id == run_id)).scalar()
    conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == base).with_for_update())
    conn.execute(runs.update().where(runs.c.run_id == run_id).values(status="running"))
    latest = latest_complete(conn, job)
    if latest != base:
        raise Superseded(f"run {latest} of job '{job}' completed while this run was built on "
                         f"run {base}; storing it would drop what {latest} added. Nothing was "
                         "stored: run `linkage add` again (it builds on the latest run)")


def latest_complete(conn: sa.Connection, job: str | None) -> str | None:
    """The job's latest complete run (of any job when ``job`` is None), on the caller's
    connection."""
    q = sa.select(runs.c.run_id).where(runs.c.status == "complete")
    if job is not None:
        q = q.where(runs.c.job == job)
    return conn.execute(q.order_by(runs.c.finished_at.desc(), runs.c.run_id.desc())
                        .limit(1)).scalar()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _sqlite_wal(engine: sa.Engine) -> None:
    """Put an SQLite file store in WAL mode (kept in the file: set once, by whoever opens it).

    In WAL mode readers never wait for a writer: the review app and the check API read on
    while `linkage run` holds its write transaction, which in rollback-journal mode blocked
    every read until the commit. synchronous stays FULL: NORMAL would save the fsync of each
    commit (0.25 ms here) but let a power cut undo the last commits (a stored run, a
    reviewer's decision) that the caller was already told were done.
    """
    if sqlite_file(engine) is None:
        return
    # Switching the journal mode needs the file to itself for a moment, and SQLite answers
    # "database is locked" at once (no busy wait) while another process that opened the store
    # at the same moment holds a lock: try again until the mode is WAL, whoever set it.
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    while True:
        try:
            with engine.connect() as conn:
                if str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower() != "wal":
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            return
        except sa.exc.OperationalError as exc:
            if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


WAL_SWITCH_SECONDS = 30.0  # as long as the store's busy timeout


def _wal_size_limit(dbapi_connection, _record) -> None:
    """A run's transaction leaves its size in the WAL file (a GB at a million persons) for as
    long as any process holds the store open; each connection cuts it back after a checkpoint."""
    dbapi_connection.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")


WAL_SIZE_LIMIT = 64 * 1024 * 1024


class Store:
    def __init__(self, url: str):
        self.url = url
        if url.startswith("sqlite:///"):
            from pathlib import Path

            path = url[len("sqlite:///"):]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        # SQLite: wait up to 30 s for another writer (review server, a run) instead of 5 s.
        sqlite = url.startswith("sqlite")
        self.engine = sa.create_engine(url, connect_args={"timeout": 30} if sqlite else {})
        if sqlite:
            sa.event.listen(self.engine, "connect", _wal_size_limit)
        from linkage.store import migrate  # its Alembic env imports the tables

        migrate.upgrade(self.engine)  # checks an SQLite file first (StoreDamaged)
        _sqlite_wal(self.engine)

    def close(self) -> None:
        """Close every connection, then seal a SQLite file as this process leaves it, so the
        next process to open it need not read every page to know it is sound (see
        linkage.store.integrity)."""
        self.engine.dispose()
        seal(self.engine)

    def begin_run(self, job: str) -> str:
        """A 'running' row naming the process, so a later run can tell if it was killed."""
        self.close_interrupted()
        run_id = _now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
        with self.engine.begin() as conn:
            conn.execute(runs.insert().values(run_id=run_id, job=job, started_at=_now(),
                                              status="running", summary=owner))
        return run_id

    def close_interrupted(self) -> list[str]:
        """Mark 'running' rows whose process on this host is gone (killed) as failed.

        Their results were never written (a run stores everything in its last transaction),
        so only the status changes; runs of other hosts are left alone.
        """
        from linkage.jobs.staging import pid_alive

        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(runs.c.run_id, runs.c.summary)
                                .where(runs.c.status == "running")).all()
        gone = []
        for run_id, summary in rows:
            try:
                owner = json.loads(summary or "{}")
            except ValueError:
                continue
            if (isinstance(owner, dict) and owner.get("host") == socket.gethostname()
                    and isinstance(owner.get("pid"), int) and not pid_alive(owner["pid"])):
                gone.append(run_id)
        for run_id in gone:
            with self.engine.begin() as conn:
                conn.execute(runs.update().where(runs.c.run_id == run_id,
                                                 runs.c.status == "running").values(
                    status="failed", finished_at=_now(),
                    summary=json.dumps({"error": "interrupted: its process ended without "
                                                 "finishing the run"})))
        return gone

    def fail_run(self, run_id: str, message: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(
                status="failed", finished_at=_now(), summary=json.dumps({"error": message})))

    def finish_run(
        self,
        run_id: str,
        summary: dict,
        model: dict,
        members: pd.DataFrame,
        golden_rows: pd.DataFrame,
        pairs: pd.DataFrame,
        carry_pairs_from: str | None = None,
        rejects: pd.DataFrame | None = None,
        planned: Versions | None = None,
        keep_runs: int | None = None,
        pair_rows: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
        correspondences: pd.DataFrame | None = None,
    ) -> dict:
        """Write every result of a run atomically and mark it complete; returns the rows
        written and closed per versioned table (linkage.store.versions).

        ``rejects``: the run's rejected rows (source, record_id, file, row, column, reason,
        row_sha256, first_rejected_run), kept so later runs can tell which they repeat.
        ``planned``: the versions :meth:`plan_versions` made for these members and golden
        rows; used when its base is still the job's latest complete run, made again here
        otherwise (another run completed meanwhile). ``keep_runs``: the job's latest complete
        runs (this one included) whose state stays readable; the versions only older runs
        read are deleted and those runs marked (:meth:`members` of one is an error).

        ``carry_pairs_from``: the run this one was built on, whose stored pairs it keeps as
        well (`linkage add` links a few records and the earlier pairs still wait for their
        reviewers). It must still be the job's latest complete run: see :class:`Superseded`.
        ``pair_rows`` turns a chunk of ``pairs`` into the table's columns (the run makes each
        pair's explanation text only as its chunk is written).
        ``correspondences``: the household step's correspondences (linkage.core.household),
        kept so reviewers can look at them; a run built on another keeps the base run's
        correspondences of the households it did not touch.
        """
        with self.engine.begin() as conn:
            cache = _page_cache(conn, -STORE_CACHE_KIB)
            try:
                if carry_pairs_from:  # named in the run's row below, not copied (pairs_of)
                    _still_latest(conn, run_id, carry_pairs_from)
                job = conn.execute(sa.select(runs.c.job).where(runs.c.run_id == run_id)).scalar()
                _lock_versions(conn)
                if planned is None or planned.base_run != latest_complete(conn, job):
                    planned = _plan(conn, job, members, golden_rows, None)
                _write_versions(conn, entity_members, job, run_id, planned.members,
                                ["source", "record_id"])
                _write_versions(conn, golden, job, run_id, planned.golden, ["entity_id"],
                                prepare=_golden_columns)
                _bulk(conn, scored_pairs, pairs, run_id, prepare=pair_rows)
                if rejects is not None:
                    _bulk(conn, run_rejects, _reject_columns(rejects), run_id)
                if correspondences is not None:
                    rows = corr_rows.rows_of(correspondences, job)
                    if carry_pairs_from:
                        rows = corr_rows.with_base(conn, carry_pairs_from, rows)
                    _bulk(conn, household_correspondences, rows, run_id)
                conn.execute(runs.update().where(runs.c.run_id == run_id).values(
                    status="complete", finished_at=_now(), pairs_from=carry_pairs_from,
                    summary=json.dumps(summary, ensure_ascii=False, default=str),
                    model=json.dumps(model, ensure_ascii=False)))
                if keep_runs is not None:
                    _prune(conn, job, keep_runs)
            finally:
                _page_cache(conn, cache)
        return planned.counts

    def plan_versions(self, job: str, members: pd.DataFrame, golden_rows: pd.DataFrame,
                      base: tuple[str, pd.DataFrame] | None = None,
                      known_digests: pd.Series | None = None,
                      open_golden: pd.DataFrame | None = None) -> Versions:
        """What storing these members and golden rows will write and close, against the job's
        latest complete run; ``base``: that run's id and membership, when the caller has read
        it already (a run reads it for stable entity ids); ``known_digests``: entity_id ->
        digest of golden rows taken unchanged from that run (`add`), not serialised again;
        ``open_golden``: entity_id, digest of that run's golden rows (kept beside the state),
        instead of reading the open versions."""
        with self.engine.connect() as conn:
            return _plan(conn, job, members, golden_rows, base, known_digests, open_golden)

    def first_rejections(self, job: str, rejects: pd.DataFrame) -> pd.Series:
        """Per reject (source, record_id, row_sha256), the earliest complete run of the job that
        rejected the same row, None where none did (a run that failed told the office nothing).
        """
        hashes = sorted(set(rejects["row_sha256"].dropna().astype(str)))
        found = []
        with self.engine.connect() as conn:
            for start in range(0, len(hashes), 500):
                found += conn.execute(
                    sa.select(run_rejects.c.source, run_rejects.c.record_id,
                              run_rejects.c.row_sha256, run_rejects.c.first_rejected_run,
                              runs.c.finished_at)
                    .join(runs, runs.c.run_id == run_rejects.c.run_id)
                    .where(runs.c.job == job, runs.c.status == "complete",
                           run_rejects.c.row_sha256.in_(hashes[start:start + 500]))).all()
        key = ["source", "record_id", "row_sha256"]
        earlier = (pd.DataFrame(found, columns=[*key, "first", "at"])
                   .sort_values("at", kind="stable").drop_duplicates(key)
                   .set_index(key)["first"])
        wanted = pd.MultiIndex.from_frame(rejects[key].fillna("").astype(str))
        return pd.Series(earlier.reindex(wanted).to_numpy(dtype=object), index=rejects.index)

    def last_complete_run(self, job: str) -> str | None:
        with self.engine.connect() as conn:
            return latest_complete(conn, job)

    def complete_run_summaries(self, job: str) -> list[tuple[str, dict]]:
        """Every complete run of the job with its summary, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(runs.c.run_id, runs.c.summary)
                .where(runs.c.job == job, runs.c.status == "complete")
                .order_by(runs.c.finished_at, runs.c.run_id)).all()
        return [(run_id, json.loads(summary) if summary else {}) for run_id, summary in rows]

    def run_summary(self, run_id: str) -> dict:
        """The summary a run stored (an unknown run is an error)."""
        with self.engine.connect() as conn:
            text = conn.execute(
                sa.select(runs.c.summary).where(runs.c.run_id == run_id)).scalar_one()
        return json.loads(text)

    def golden_records(self, run_id: str) -> Iterator[str]:
        """The run's golden rows, each the whole row as JSON text, streamed from the store
        (the connection stays open until the last row is read)."""
        with self.engine.connect() as conn:
            if not _readable(conn, run_id):
                return
            yield from conn.execute(sa.select(golden.c.record).where(
                versions.valid_in(golden, run_id))).scalars()

    def stored_weights(self, run_id: str) -> np.ndarray:
        """The weights of the pairs the run stored (match and review bands, refused merges)."""
        with self.engine.connect() as conn:
            return np.fromiter(conn.execute(
                sa.select(scored_pairs.c.weight).where(queue_rows.pairs_of(run_id)))
                .scalars(), dtype=np.float64)

    def refused_merges(self, run_id: str) -> list[tuple[str, str, str, str]]:
        """The run's match-band pairs clustering refused to merge (those with a reason), as
        (source_l, record_l, source_r, record_r)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(
                scored_pairs.c.source_l, scored_pairs.c.record_l, scored_pairs.c.source_r,
                scored_pairs.c.record_r).where(queue_rows.pairs_of(run_id),
                                               scored_pairs.c.band == "match",
                                               scored_pairs.c.reason != "")).all()
        return [tuple(r) for r in rows]

    def members(self, run_id: str) -> pd.DataFrame:
        """The run's membership: source, record_id, entity_id."""
        with self.engine.connect() as conn:
            if not _readable(conn, run_id):
                return pd.DataFrame(columns=["source", "record_id", "entity_id"])
            rows = conn.execute(sa.select(entity_members.c.source, entity_members.c.record_id,
                                          entity_members.c.entity_id)
                                .where(versions.valid_in(entity_members, run_id))).all()
        return pd.DataFrame(rows, columns=["source", "record_id", "entity_id"])

    def verified_entities(self, run_id: str) -> np.ndarray:
        """The run's VERIFIED entity ids: the persons its card roster listed."""
        with self.engine.connect() as conn:
            if not _readable(conn, run_id):
                return np.zeros(0, dtype=object)
            return np.asarray(conn.execute(sa.select(golden.c.entity_id).where(
                versions.valid_in(golden, run_id), golden.c.status == "VERIFIED"))
                .scalars().all(), dtype=object)

    def run_model(self, run_id: str) -> dict | None:
        """The model a run scored with (FSModel.to_dict()), or None if it stored none."""
        with self.engine.connect() as conn:
            text = conn.execute(sa.select(runs.c.model).where(runs.c.run_id == run_id)).scalar()
        return json.loads(text) if text else None

    def stored_pair(self, run_id: str, a: tuple[str, str], b: tuple[str, str]) -> dict | None:
        """The pair as the run stored it (weight, probability, band, reason, explanation as
        JSON text), or None: a run stores only its match and review bands and refused merges."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(scored_pairs).where(
                queue_rows.pairs_of(run_id) & pair_condition(scored_pairs, a, b))).first()
        return dict(row._mapping) if row is not None else None

    def add_decision(self, a: tuple[str, str], b: tuple[str, str], decision: str, reviewer: str,
                     score: float | None = None, note: str | None = None) -> int:
        """Record a reviewer's decision; it replaces any earlier active one for the pair."""
        with self.engine.begin() as conn:
            return insert_decision(conn, a, b, decision, reviewer, score, note)

    def correspondences(self, run_id: str) -> pd.DataFrame:
        """The run's household correspondences as stored (the table's columns, no run_id)."""
        t = household_correspondences
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*[t.c[c] for c in corr_rows.COLUMNS])
                                .where(t.c.run_id == run_id)
                                .order_by(t.c.insurance_household, t.c.registry_household)).all()
        return pd.DataFrame(rows, columns=corr_rows.COLUMNS)

    def correspondence_decisions(self) -> pd.DataFrame:
        """Reviewers' standing decisions on correspondences (insurance_household,
        registry_household, decision 'same' / 'different'), for the household step."""
        return corr_rows.standing(self.engine)

    def active_decisions(self) -> pd.DataFrame:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(decisions.c.source_l, decisions.c.record_l,
                                          decisions.c.source_r, decisions.c.record_r,
                                          decisions.c.decision, decisions.c.reviewer)
                                .where(decisions.c.active)).all()
        return pd.DataFrame(rows, columns=["source_l", "record_l", "source_r", "record_r",
                                           "decision", "reviewer"])


def pair_condition(table: sa.Table, a: tuple[str, str], b: tuple[str, str]):
    """SQL condition selecting one pair (in canonical order) in a table with the pair columns."""
    (sl, rl), (sr, rr) = canonical_pair(a, b)
    return ((table.c.source_l == sl) & (table.c.record_l == rl)
            & (table.c.source_r == sr) & (table.c.record_r == rr))


def insert_decision(conn, a: tuple[str, str], b: tuple[str, str], decision: str, reviewer: str,
                    score: float | None = None, note: str | None = None,
                    active: bool = True) -> int:
    """Insert a decision inside the caller's transaction; an active one deactivates the old one.

    The review app writes the decision, its audit row and the lease release in one transaction,
    so the statement lives here and both it and Store.add_decision use it.
    """
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
    (sl, rl), (sr, rr) = canonical_pair(a, b)
    if active:
        conn.execute(decisions.update().where(pair_condition(decisions, a, b) & decisions.c.active)
                     .values(active=False))
    result = conn.execute(decisions.insert().values(
        source_l=sl, record_l=rl, source_r=sr, record_r=rr, decision=decision,
        reviewer=reviewer, decided_at=_now(), score=score, note=note, active=active))
    queue_rows.sync_pair(conn, (sl, rl), (sr, rr))  # the kept review queue, same transaction
    return int(result.inserted_primary_key[0])


def _reject_columns(rejects: pd.DataFrame) -> pd.DataFrame:
    """A rejects frame in the run_rejects table's columns."""
    out = rejects.rename(columns={"row": "row_number", "column": "column_name"})[[
        "source", "record_id", "row_sha256", "file", "row_number", "column_name", "reason",
        "first_rejected_run"]]
    return out.assign(record_id=out["record_id"].fillna("").astype(str),
                      row_number=pd.to_numeric(out["row_number"], errors="coerce").astype("Int64"))


GOLDEN_COLUMNS = ["entity_id", "status", "name", "id_number", "birth_date", "gender", "record",
                  "digest"]
CHUNK = 100_000  # golden rows serialised at a time
IN_CHUNK = 400  # keys per IN list when closing versions


def _golden_columns(part: pd.DataFrame) -> pd.DataFrame:
    """The golden table's columns of some golden rows, the whole row kept as JSON in `record`
    and its hash in `digest`.

    Serialised by pandas in C rather than per row, one chunk at a time: at a million persons
    the JSON of all rows at once would hold gigabytes beside everything else.
    """
    rows = part.drop(columns="digest", errors="ignore")
    record = pd.Series(rows.to_json(orient="records", lines=True, force_ascii=False,
                                    date_format="iso").splitlines() if len(rows) else [],
                       index=rows.index, dtype=object)
    digest = part["digest"] if "digest" in part else versions.digest(record)
    return rows.assign(record=record, digest=digest)[GOLDEN_COLUMNS]


class Versions(NamedTuple):
    """The versions storing a run writes and closes (linkage.store.versions)."""

    base_run: str | None
    members: versions.VersionDelta
    golden: versions.VersionDelta
    digests: np.ndarray  # per golden row planned, its digest (kept for the next `add`)

    @property
    def counts(self) -> dict:
        return {"entity_members": self.members.counts, "golden": self.golden.counts}


def _plan(conn, job: str, members: pd.DataFrame, golden_rows: pd.DataFrame,
          base: tuple[str, pd.DataFrame] | None,
          known_digests: pd.Series | None = None,
          open_golden: pd.DataFrame | None = None) -> Versions:
    """The versions against the job's latest complete run, read on ``conn`` unless ``base``
    is that run with its membership; ``known_digests`` and ``open_golden`` hold only when
    made against it."""
    latest = latest_complete(conn, job)
    if base is not None and base[0] == latest:
        open_members = base[1][["source", "record_id", "entity_id"]]
    else:
        open_members = pd.DataFrame(conn.execute(sa.select(
            entity_members.c.source, entity_members.c.record_id, entity_members.c.entity_id)
            .where(versions.open_in(entity_members, job))).all(),
            columns=["source", "record_id", "entity_id"])
    current = base is not None and base[0] == latest
    if open_golden is None or not current:
        open_golden = pd.DataFrame(conn.execute(
            sa.select(golden.c.entity_id, golden.c.digest)
            .where(versions.open_in(golden, job))).all(), columns=["entity_id", "digest"])
    digests = np.zeros(len(golden_rows), dtype=np.int64)
    todo = np.ones(len(golden_rows), dtype=bool)
    if known_digests is not None and current:
        at = pd.Index(known_digests.index).get_indexer(golden_rows["entity_id"].to_numpy())
        todo = at < 0  # positions, not reindex: a float NaN would round 64-bit digests
        digests[~todo] = known_digests.to_numpy(dtype=np.int64)[at[~todo]]
    # the others' a chunk at a time (the JSON of all rows at once takes gigabytes at 1M)
    rows = golden_rows[todo] if not todo.all() else golden_rows
    digests[todo] = np.concatenate([_golden_columns(rows.iloc[start:start + CHUNK])["digest"]
                                    .to_numpy(dtype=np.int64)
                                    for start in range(0, len(rows), CHUNK)]
                                   or [np.zeros(0, dtype=np.int64)])
    return Versions(latest, versions.diff_members(open_members, members, latest),
                    versions.diff_golden(open_golden, golden_rows.assign(digest=digests),
                                         latest), digests)


PRUNED = "state_pruned"  # summary key of a run whose state keep_runs deleted


class StatePruned(LookupError):
    """The run's membership and golden records were deleted by the job's keep_runs."""


def _readable(conn, run_id: str) -> bool:
    """Whether the run has a state to read (it completed); StatePruned if keep_runs deleted
    it. A run that failed or still runs stored nothing."""
    row = conn.execute(sa.select(runs.c.status, runs.c.summary)
                       .where(runs.c.run_id == run_id)).first()
    if row is None or row.status != "complete":
        return False
    if row.summary and PRUNED in row.summary and json.loads(row.summary).get(PRUNED):
        raise StatePruned(f"run {run_id} is older than the job's keep_runs: its membership "
                          "and golden records are no longer in the store")
    return True


def _prune(conn, job: str, keep_runs: int) -> None:
    """Delete the versions closed at or before the oldest run kept (no kept run reads them)
    and mark the runs before it."""
    order = [r for r, in conn.execute(
        sa.select(runs.c.run_id).where(runs.c.job == job, runs.c.status == "complete")
        .order_by(runs.c.finished_at, runs.c.run_id)).all()]
    if len(order) <= keep_runs:
        return
    oldest_kept = order[-keep_runs]
    for table in (entity_members, golden):
        conn.execute(table.delete().where(table.c.valid_to.in_(
            versions.ordered_before(oldest_kept))))
    for run_id, text in conn.execute(sa.select(runs.c.run_id, runs.c.summary).where(
            runs.c.run_id.in_(order[:-keep_runs]))).all():
        summary = json.loads(text) if text else {}
        if not summary.get(PRUNED):
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(
                summary=json.dumps({**summary, PRUNED: True}, ensure_ascii=False)))


def _lock_versions(conn) -> None:
    """Serialise the writers of versions: two runs closing the same open rows at once would
    each leave the other's rows open. SQLite has one writer already; PostgreSQL locks the
    table against other writers (readers go on)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE entity_members IN SHARE ROW EXCLUSIVE MODE")


def _write_versions(conn, table: sa.Table, job: str, run_id: str,
                    delta: versions.VersionDelta, key: list[str], prepare=None) -> None:
    """Close the open versions the run ends (all of the job's, for a rewrite), then write
    its new ones."""
    opened = versions.open_in(table, job)
    if delta.rewrite:
        conn.execute(table.update().where(opened).values(valid_to=run_id))
    elif len(delta.closed):
        keys = list(delta.closed[key].itertuples(index=False, name=None))
        column = (sa.tuple_(*[table.c[k] for k in key]) if len(key) > 1 else table.c[key[0]])
        for start in range(0, len(keys), IN_CHUNK):
            chunk = keys[start:start + IN_CHUNK]
            conn.execute(table.update().where(
                opened, column.in_(chunk if len(key) > 1 else [k[0] for k in chunk]))
                .values(valid_to=run_id))
    _bulk(conn, table, delta.new, run_id, prepare=prepare)


STORE_CACHE_KIB = 64 * 1024  # SQLite's page cache while a run is stored (its default: 2 MB)


def _page_cache(conn, size: int | None) -> int | None:
    """Set an SQLite connection's ``PRAGMA cache_size`` (negative: KiB) and return what it
    was; None and nothing done elsewhere. Storing a run inserts millions of rows into indexes
    keyed in no order (record ids, entity ids): with room for their pages, 1.85M membership
    rows took 13 s instead of 20 s at SQLite's default 2 MB (sqlite3 alone; 128 and 256 MB no
    better). The whole store stage of a 1M-person run, I/O-bound, showed no gain beyond its
    noise (64 against 66 s). The pooled connection gets its old size back afterwards."""
    if conn.dialect.name != "sqlite" or size is None:
        return None
    raw = conn.connection.driver_connection
    was = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size={int(size)}")
    return was


def _bulk(conn, table: sa.Table, frame: pd.DataFrame, run_id: str, chunk: int = 100_000,
          prepare=None) -> None:
    """Insert a frame's rows with the driver's executemany on plain tuples.

    Building a dict per row through SQLAlchemy cost more than the database itself at a
    million entities; a positional statement and tuples keep it to the driver's speed on
    SQLite and PostgreSQL alike. The chunk's columns are put in the statement's order first,
    so each row is made once (building rows, then reordering each, took 15 s of a profiled
    82 s store stage at a million persons). ``prepare`` turns each chunk into the table's
    columns, so derived text exists for one chunk at a time.
    """
    if frame.empty:
        return
    prepare = prepare or (lambda part: part)
    columns = ["run_id", *prepare(frame.iloc[:1]).columns]
    statement = table.insert().compile(dialect=conn.dialect, column_keys=columns)
    names = list(statement.positiontup or [])
    cursor = conn.connection.driver_connection.cursor()
    try:
        for start in range(0, len(frame), chunk):
            part = prepare(frame.iloc[start:start + chunk])
            part = part.astype(object).where(part.notna(), None)
            part.insert(0, "run_id", run_id)
            if names:
                cursor.executemany(str(statement),
                                   list(part[names].itertuples(index=False, name=None)))
            else:
                cursor.executemany(str(statement), part[columns].to_dict("records"))
    finally:
        cursor.close()
