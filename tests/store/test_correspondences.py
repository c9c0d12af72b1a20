"""Household correspondences and reviewers' decisions on them, on SQLite and PostgreSQL: a
run stores its correspondences with the rest of its results, `linkage add` keeps the base
run's correspondences of the households it did not touch, and decisions are audited and
stand until replaced ('unsure' never replaces a standing one)."""
import pandas as pd
import pytest
import sqlalchemy as sa

from linkage.store import Store, audit_log, household_correspondences, scored_pairs
from linkage.store import correspondences as corr


@pytest.fixture
def store(backend_url):
    s = Store(backend_url)
    yield s
    s.engine.dispose()


MEMBERS = pd.DataFrame({"source": ["police", "ncms"], "record_id": ["GA1", "NH1"],
                        "entity_id": ["E1", "E1"]})
GOLDEN = pd.DataFrame({"entity_id": ["E1"], "status": ["VERIFIED"], "name": ["王建国"],
                       "id_number": ["150523196003151234"], "birth_date": ["1960-03-15"],
                       "gender": ["M"]})
PAIRS = pd.DataFrame({"source_l": ["ncms"], "record_l": ["NH1"], "source_r": ["police"],
                      "record_r": ["GA1"], "weight": [25.0], "probability": [0.999],
                      "band": ["match"], "reason": [""], "explanation": ["{}"]})
# As linkage.core.household gives them: a 1:1 whose members all agree, a split with a member
# left over, and a lone anchor dropped as a registry double.
STEP = pd.DataFrame({
    "insurance_household": ["ncms:1505230901", "ncms:1505230902", "ncms:1505230902"],
    "registry_household": ["police:100001", "police:100001", "police:200001"],
    "anchors": [2, 1, 3], "members_insurance": [2, 3, 3], "members_registry": [2, 3, 3],
    "members_agreeing": [2, 0, 3], "kind": ["1:1", "dropped", "1:1"],
    "kept": [True, False, True], "decision": ["", "", ""],
    "assignment": ['[["N1", "P1", 39.09, true], ["N2", "P2", 39.09, true]]',
                   '[["M2", "P10", 36.5, true]]', "[]"],
})


def _finish(store, run, correspondences, base=None):
    store.finish_run(run, {}, {}, MEMBERS, GOLDEN, PAIRS, carry_pairs_from=base,
                     correspondences=correspondences)


def test_a_run_stores_its_correspondences_with_its_results(store):
    run = store.begin_run("demo")
    _finish(store, run, STEP.iloc[:2].assign(members_agreeing=[2, 1]))
    rows = store.correspondences(run)
    assert rows["kind"].tolist() == ["1:1", "dropped"]
    assert rows["tier"].tolist() == [corr.AGREED, corr.LOOK]
    assert rows[["left_insurance", "left_registry"]].values.tolist() == [[0, 0], [2, 2]]
    assert rows["kept"].tolist() == [True, False]
    assert rows["assignment"].iloc[1] == '[["M2", "P10", 36.5, true]]'
    assert corr.counts(store.engine, run) == {
        "kinds": {"1:1": 1, "dropped": 1},
        "tiers": {"look": 1, "left_over": 0, "agreed": 1, "all": 2}}
    look = corr.listing(store.engine, run, "look")
    assert [(r.insurance_household, r.registry_household) for r in look] == [
        ("ncms:1505230902", "police:100001")]
    assert corr.households_to_show(store.engine, run) == {"ncms:1505230902", "police:100001"}
    assert corr.get(store.engine, run, "ncms:1505230901", "police:100001").anchors == 2


def test_correspondences_are_stored_in_the_runs_one_transaction(store, monkeypatch):
    """A correspondence the database refuses (no kind) leaves nothing of the run stored."""
    rows_of = corr.rows_of
    monkeypatch.setattr(corr, "rows_of", lambda frame, job: rows_of(frame, job).assign(
        kind=[None, "1:1", "1:1"]))
    run = store.begin_run("demo")
    with pytest.raises(Exception, match="(?i)null"):  # the driver's not-null violation
        _finish(store, run, STEP)
    assert store.last_complete_run("demo") is None
    with store.engine.connect() as conn:
        for table in (household_correspondences, scored_pairs):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


def test_an_add_run_keeps_the_base_runs_correspondences_of_untouched_households(store):
    base = store.begin_run("demo")
    _finish(store, base, STEP)
    added = store.begin_run("demo")
    touched = STEP.iloc[[2]].assign(members_agreeing=2, kind="1:1")
    _finish(store, added, touched, base=base)
    rows = store.correspondences(added)
    assert list(zip(rows["insurance_household"], rows["registry_household"], rows["kind"])) == [
        ("ncms:1505230901", "police:100001", "1:1"),
        ("ncms:1505230902", "police:200001", "1:1")]
    assert rows["members_agreeing"].tolist() == [2, 2]  # the add's own row


def test_correspondence_decisions_stand_until_replaced_and_are_audited(store):
    e = store.engine
    pair = ("ncms:1505230902", "police:100001")
    first = corr.decide(e, *pair, "alice", "different", "R1", note="另一户")
    assert store.correspondence_decisions().values.tolist() == [[*pair, "different"]]
    corr.decide(e, *pair, "bob", "unsure", "R1")  # kept, inactive: the rejection stands
    assert store.correspondence_decisions().values.tolist() == [[*pair, "different"]]
    assert corr.standing_of(e, [pair]) == {pair: "different"}
    corr.decide(e, *pair, "sam", "same", "R1")
    assert store.correspondence_decisions().values.tolist() == [[*pair, "same"]]
    log = corr.history(e, *pair)
    assert [(r.reviewer, r.decision, r.active) for r in log] == [
        ("alice", "different", False), ("bob", "unsure", False), ("sam", "same", True)]
    assert log[0].note == "另一户" and log[0].decision_id == first
    with e.connect() as conn:
        audited = conn.execute(sa.select(audit_log.c.actor, audit_log.c.action,
                                         audit_log.c.decision_id)
                               .order_by(audit_log.c.audit_id)).all()
    assert [(a, b) for a, b, _ in audited] == [("alice", "decide_correspondence"),
                                               ("bob", "decide_correspondence"),
                                               ("sam", "decide_correspondence")]
    assert audited[0][2] == first
    with pytest.raises(ValueError):
        corr.decide(e, *pair, "alice", "match", "R1")
