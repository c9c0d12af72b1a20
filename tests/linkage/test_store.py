"""The store on SQLite and on the real PostgreSQL server of the test machine."""
import os
import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from linkage.store import Store

PG_URL = os.environ.get("LINKAGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        with sa.create_engine(PG_URL).connect():
            return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.backend)])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield Store(f"sqlite:///{tmp_path}/s.sqlite")
        return
    if not _pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL}; ./dev test starts it")
    schema = "t_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield Store(PG_URL + f"?options=-csearch_path%3D{schema}")
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


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
