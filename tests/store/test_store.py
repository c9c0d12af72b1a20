"""The store on SQLite and on the real PostgreSQL server of the test machine."""
import pandas as pd
import pytest

from linkage.store import Store


@pytest.fixture
def store(backend_url):
    return Store(backend_url)


def test_run_results_are_written_atomically(store):
    members = pd.DataFrame({"source": ["police", "ncms"], "record_id": ["GA1", "NH1"],
                            "entity_id": ["E1", "E1"]})
    golden = pd.DataFrame({"entity_id": ["E1"], "status": ["VERIFIED"], "name": ["张伟"],
                           "id_number": ["150521196503120016"], "birth_date": ["1965-03-12"],
                           "gender": ["M"]})
    pairs = pd.DataFrame({"source_l": ["ncms"], "record_l": ["NH1"], "source_r": ["police"],
                          "record_r": ["GA1"], "weight": [25.0], "probability": [0.999],
                          "band": ["match"], "reason": [""], "explanation": ["{}"]})
    assert store.last_complete_run("demo") is None
    failed = store.begin_run("demo")
    store.fail_run(failed, "killed")
    run = store.begin_run("demo")
    store.finish_run(run, {"n": 2}, {"m": 1}, members, golden, pairs)
    assert store.last_complete_run("demo") == run
    assert store.members(run).sort_values("record_id")["entity_id"].tolist() == ["E1", "E1"]


def test_a_new_decision_replaces_the_previous_one_for_the_pair(store):
    store.add_decision(("police", "GA1"), ("ncms", "NH1"), "match", "reviewer1")
    store.add_decision(("ncms", "NH1"), ("police", "GA1"), "non_match", "supervisor")
    active = store.active_decisions()
    assert len(active) == 1
    assert active.iloc[0]["decision"] == "non_match"
    assert (active.iloc[0]["source_l"], active.iloc[0]["record_l"]) == ("ncms", "NH1")
    with pytest.raises(ValueError):
        store.add_decision(("a", "1"), ("b", "2"), "maybe", "x")


def test_a_run_whose_process_is_gone_is_marked_failed_by_the_next_run(store):
    import json
    import socket
    import subprocess
    import sys

    import sqlalchemy as sa

    from linkage.store import runs

    killed = store.begin_run("demo")
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    with store.engine.begin() as conn:  # as if that process had begun the run and been killed
        conn.execute(runs.update().where(runs.c.run_id == killed).values(
            summary=json.dumps({"pid": int(ended.stdout), "host": socket.gethostname()})))
    alive = store.begin_run("demo")  # owned by this (living) process
    store.begin_run("demo")
    with store.engine.connect() as conn:
        states = dict(conn.execute(sa.select(runs.c.run_id, runs.c.status)).all())
    assert states[killed] == "failed" and states[alive] == "running"
    assert store.last_complete_run("demo") is None
