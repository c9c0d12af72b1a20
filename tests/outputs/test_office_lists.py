"""The lists the office and the fund chase: duplicates, not verified, conflicts."""
import pandas as pd

from linkage.core.config import load_config
from linkage.jobs.run import run
from linkage.store import Store


def read(out_dir, stem) -> pd.DataFrame:
    return pd.read_csv(out_dir / f"{stem}.csv", dtype=str, keep_default_na=False)


def insurance_members(result) -> pd.DataFrame:
    roles = {s.name: s.role for s in result.config.sources}
    clusters = result.clusters
    return clusters[clusters["source"].map(roles) == "insurance"]


def test_every_duplicate_enrolment_entity_is_listed_with_each_enrolment(office_run):
    golden = office_run.golden
    flagged = golden[golden["duplicate_enrolment"]].set_index("entity_id")
    assert len(flagged) > 5  # the small world has married daughters, pupils, migrants
    dups = read(office_run.out_dir, "duplicate_enrolments")
    assert set(dups["entity_id"]) == set(flagged.index)
    per_entity = dups.groupby("entity_id").size()
    assert (per_entity == flagged.loc[per_entity.index, "n_enrolments"]).all()
    assert (dups["n_enrolments"].astype(int) == dups["entity_id"].map(per_entity)).all()
    numbers = dups.groupby("entity_id")["enrolment_no"].agg(lambda s: sorted(map(int, s)))
    assert all(n == list(range(1, len(n) + 1)) for n in numbers)
    members = insurance_members(office_run)
    listed = dups.merge(members, on=["source", "record_id"], suffixes=("", "_member"))
    assert len(listed) == len(dups)
    assert (listed["entity_id"] == listed["entity_id_member"]).all()
    assert (dups["resident_id"] == flagged.loc[dups["entity_id"], "id_number"].fillna("")
            .to_numpy()).all()


def test_duplicate_list_shows_what_was_paid_and_the_receipt(office_run):
    dups = read(office_run.out_dir, "duplicate_enrolments")
    ncms = dups[dups["scheme"] == "NCMS"]
    assert len(ncms) > 0
    assert ncms["receipt"].str.fullmatch(r"\d{8}").all()
    assert ncms["amount"].isin(["250.00", "350.00", "125.00", "0.00"]).all()
    assert ncms["tier"].isin(["一档", "二档"]).all()
    assert ncms["clerk"].ne("").all()
    urban = dups[dups["scheme"] == "URBAN"]
    assert urban["tier"].isin(["一档", "二档"]).all()
    assert urban["enrolled_on"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()


def test_not_verified_lists_the_insurance_records_without_a_registry_person(office_run):
    golden = office_run.golden
    unverified = set(golden.loc[golden["status"] == "UNVERIFIED", "entity_id"])
    members = insurance_members(office_run)
    expected = members[members["entity_id"].isin(unverified)]
    listed = read(office_run.out_dir, "not_verified")
    assert len(listed) == len(expected) > 0
    assert set(zip(listed["source"], listed["record_id"])) == set(
        zip(expected["source"], expected["record_id"]))
    assert listed["reason"].str.startswith("no police registry record; ").all()


def test_a_conflict_is_listed_with_every_record_and_the_reason(demo_job):
    config = load_config(demo_job)
    first = run(config)
    police = first.clusters[first.clusters["source"] == "police"]
    a, b = police["record_id"].iloc[0], police["record_id"].iloc[1]
    Store(config.store).add_decision(("police", a), ("police", b), "match", "supervisor")
    second = run(config)
    conflicts = read(second.out_dir, "conflicts")
    golden = second.golden
    conflict_ids = set(golden.loc[golden["status"] == "CONFLICT", "entity_id"])
    assert conflict_ids and set(conflicts["entity_id"]) == conflict_ids
    merged = second.clusters[second.clusters["entity_id"].isin(conflict_ids)]
    assert set(zip(conflicts["source"], conflicts["record_id"])) == set(
        zip(merged["source"], merged["record_id"]))
    assert {"police"} <= set(conflicts["source"])
    assert conflicts["reason"].str.contains("registry records with different ID numbers").all()
    roster = read(second.out_dir, "roster")
    assert not roster["entity_id"].isin(conflict_ids).any()
