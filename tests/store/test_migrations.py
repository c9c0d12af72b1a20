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


def test_a_store_at_0003_gets_its_review_queue_with_the_decisions_it_holds(backend_url):
    """0004 adds the kept review queue: a store made before it keeps its pairs and decisions,
    and the queue built from them on first use says what the decisions say."""
    from datetime import datetime, timezone

    from linkage.store import review, review_queue, scored_pairs, second_reviews
    from linkage.store.review import pair_ref

    old = sa.create_engine(backend_url)
    migrate.upgrade(old, "0003")
    now = datetime.now(timezone.utc)
    pairs = [("1", 0.52, "review", "score in the review band"), ("2", 0.7, "review", ""),
             ("3", 0.99, "match", "would put two registry persons in one entity"),
             ("4", 0.999, "match", "")]  # a plain match: not for review
    with old.begin() as conn:
        conn.execute(runs.insert().values(run_id="R1", job="demo", started_at=now,
                                          finished_at=now, status="complete"))
        for n, p, band, reason in pairs:
            conn.execute(scored_pairs.insert().values(
                run_id="R1", source_l="ncms", record_l=f"NH{n}", source_r="police",
                record_r=f"GA{n}", weight=1.0, probability=p, band=band, reason=reason))
        conn.execute(decisions.insert().values(  # 王丽 / 王莉 settled as one person
            source_l="ncms", record_l="NH1", source_r="police", record_r="GA1",
            decision="match", reviewer="wang", decided_at=now, active=True))
        conn.execute(decisions.insert().values(
            source_l="ncms", record_l="NH2", source_r="police", record_r="GA2",
            decision="non_match", reviewer="li", decided_at=now, active=True))
        ref = pair_ref(("ncms", "NH2"), ("police", "GA2"))
        conn.execute(second_reviews.insert().values(  # ... and sent back for a second look
            pair_token=ref.token, source_l="ncms", record_l="NH2", source_r="police",
            record_r="GA2", requested_by="sam", requested_at=now))
    assert migrate.current(old) == "0003"
    old.dispose()

    store = Store(backend_url)
    assert migrate.current(store.engine) == migrate.head()
    assert _diff(store.engine) == []
    assert review.ensure_queue(store.engine, "R1") and not review.ensure_queue(store.engine, "R1")
    stats = review.queue_counts(store.engine, "R1", "zhao")
    assert (stats["pairs"], stats["decided"], stats["waiting_for_you"]) == (3, 1, 2)
    first = review.open_pairs(store.engine, "R1", "zhao", limit=10)
    assert [r.pair_token for r in first][:1] == [ref.token]  # the second review comes first
    assert first[0].tier == 0 and [r.record_l for r in first] == ["NH2", "NH3"]
    assert review.queue_counts(store.engine, "R1", "li")["waiting_for_you"] == 1  # li decided NH2
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(review_queue)).scalar() == 3
    store.engine.dispose()
