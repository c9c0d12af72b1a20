"""The online check reads a record's household as the batch run does (issue 16 part 6): a
record naming its NCMS household is listed in it, and the batch run's household step weighs
its pairs with the registry household(s) the run linked the other members into.

The world: the small synthetic prefecture with two 红光嘎查 families added. 王建国's NCMS
household lists him and his wife only; their son 王浩然 (2019) is in the registry household
and not yet enrolled, and the family now enrols him under his milk name 狗剩 (no ID, birth year
only), as clerks key infants. 张伟's NCMS household already lists its son as 狗剩, whom the
batch run links to the registry's 张子轩 by household: what the check must now do too.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from demo_config import write_demo_config

from linkage.core.config import load_config
from linkage.jobs.run import run
from linkage.online.check import check_records
from linkage.online.master import load_master

MODEL = Path(__file__).resolve().parents[1] / "core" / "data" / "demo_model.json"
WANG, ZHANG = "15050299000001", "15050299000002"  # NCMS household codes (家庭编号)
PLACE = {"township": "大林镇", "village": "红光村1组"}


def valid_id(text: str) -> str:
    """The ID with its check character set right (GB 11643)."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(text[:17], weights))
    return text[:17] + "10X98765432"[total % 11]


REGISTRY_COLUMNS = ["人员编号", "户号", "姓名", "公民身份号码", "性别", "出生日期", "与户主关系"]
REGISTRY = [
    ("GA900000001", "900001", "王建国", valid_id("150502196003151234"), "男", "1960-03-15", "户主"),
    ("GA900000002", "900001", "李秀英", valid_id("150502196208201226"), "女", "1962-08-20", "配偶"),
    ("GA900000003", "900001", "王浩然", valid_id("150502201905051213"), "男", "2019-05-05", "子"),
    ("GA900000011", "900002", "张伟", valid_id("150502198511020319"), "男", "1985-11-02", "户主"),
    ("GA900000012", "900002", "刘芳", valid_id("150502198702140524"), "女", "1987-02-14", "配偶"),
    ("GA900000013", "900002", "张子轩", valid_id("150502201807010615"), "男", "2018-07-01", "子"),
]
NCMS_COLUMNS = ["参合编号", "家庭编号", "成员姓名", "身份证号", "性别", "出生日期", "与户主关系"]
NCMS = [
    ("NH9000000001", WANG, "王建国", valid_id("150502196003151234"), "男", "1960-03-15", "本人"),
    ("NH9000000002", WANG, "李秀英", valid_id("150502196208201226"), "女", "1962-08-20", "妻"),
    ("NH9000000011", ZHANG, "张伟", valid_id("150502198511020319"), "男", "1985-11-02", "本人"),
    ("NH9000000012", ZHANG, "刘芳", valid_id("150502198702140524"), "女", "1987-02-14", "妻"),
    ("NH9000000013", ZHANG, "狗剩", None, "男", "2018", "子"),
]


@pytest.fixture(scope="module")
def job(small_world, tmp_path_factory):
    """The demo job over the small world with the two families, run once with the demo's
    saved model (the run's household prior included), and its master."""
    root = tmp_path_factory.mktemp("household_check")
    src, data = small_world / "data" / "demo", root / "data"
    data.mkdir()
    police = pd.read_csv(src / "police.csv", dtype=str)
    ncms = pd.read_csv(src / "ncms.csv", dtype=str, encoding="gbk")
    shutil.copy(src / "urban.csv", data / "urban.csv")
    police = pd.concat([police, pd.DataFrame(
        [dict(zip(REGISTRY_COLUMNS, r),
              民族="汉族", 苏木乡镇="大林镇", 嘎查村="红光嘎查", 人员状态="正常",
              住址="内蒙古自治区通辽市科尔沁区大林镇红光嘎查一组") for r in REGISTRY])])
    ncms = pd.concat([ncms, pd.DataFrame(
        [dict(zip(NCMS_COLUMNS, r),
              户主姓名=("王建国" if r[1] == WANG else "张伟"), 乡镇="大林镇", 村="红光村1组",
              参合档次="一档", 缴费金额="250.00", 收据号=r[1][-6:], 录入员="KE001", 参合类型="正常")
         for r in NCMS])])
    police.to_csv(data / "police.csv", index=False)
    ncms.to_csv(data / "ncms.csv", index=False, encoding="gbk")
    path = write_demo_config(root / "demo.yaml", root / "out",
                             f"sqlite:///{root / 'store.sqlite'}", data=data)
    with path.open("a", encoding="utf-8") as f:
        f.write("\nhousehold:\n  milk_names: [狗剩]\n")
    config = load_config(path)
    result = run(config, model_path=MODEL)
    master = load_master(config)
    entity = {(master.sources[s], r): master.entity_ids[e] for s, r, e in
              zip(master.source_code, master.record_id, master.entity)}
    return {"config": config, "run_id": result.run_id, "master": master, "entity": entity}


def milk_child(**extra) -> dict:
    """王浩然 enrolled by his family under his milk name, as the clerk keys an infant."""
    return {"source": "ncms", "name": "狗剩", "gender": "男", "birth_date": "2019",
            "relation": "子", **PLACE, **extra}


def check(job, record: dict):
    return check_records(job["master"], [record])[0]


def without_household_index(master):
    """The master as it was before the household evidence: no household index."""
    return dataclasses.replace(master, households=None)


def test_the_batch_run_links_the_milk_name_child_by_household(job):
    entity = job["entity"]
    assert entity[("ncms", "NH9000000013")] == entity[("police", "GA900000013")]
    assert entity[("ncms", "NH9000000001")] == entity[("police", "GA900000001")]


def test_a_milk_name_child_checked_with_its_household_is_the_registry_child(job):
    child = job["entity"][("police", "GA900000003")]
    alone = check(job, milk_child())
    assert alone.verdict == "new_person" and alone.entity_id is None
    assert all(c.explanation["household"] == 0.0 for c in alone.candidates)

    placed = check(job, milk_child(household_id=WANG))
    assert (placed.verdict, placed.entity_id) == ("known_person", child), placed.reason
    best = placed.candidates[0]
    assert best.record == ("police", "GA900000003") and best.band == "match"
    assert best.explanation["household"] > 5
    assert best.household_note.startswith(
        f"assigned within ncms:{WANG}↔police:900001, 3 of 3 members agree, +")
    assert best.household_note.endswith(f"+{best.explanation['household']:.2f} bits")
    assert placed.reason.startswith(f"first enrolment of {child}; household: assigned within")
    # The weight is the parts, the prior and the household term, as a batch run's is.
    fields = sum(v["weight"] for k, v in best.explanation.items()
                 if isinstance(v, dict))
    total = fields + best.explanation["prior"] + best.explanation["household"]
    assert total == pytest.approx(best.weight, abs=0.01 * (len(best.explanation) + 1))
    # Its parents, the household's other members, are not this child: contradicted.
    parents = [c for c in placed.candidates if c.record[1] in ("GA900000001", "GA900000002")]
    assert parents and all(c.explanation["household"] < 0 and c.band == "non_match"
                           for c in parents)


def test_without_or_with_an_unknown_household_the_answer_is_todays(job):
    master = job["master"]
    before = without_household_index(master)
    records = [milk_child(), milk_child(household_id="15050299999999"),
               milk_child(household_id="  "),
               {"source": "ncms", "name": "王建国", "id_number": valid_id("150502196003151234"),
                "birth_date": "1960-03-15", "gender": "男", **PLACE},
               {"source": "police", "name": "王浩然", "birth_date": "2019-05-05", "gender": "男",
                "household_id": WANG, **PLACE}]  # a registry record: no NCMS household
    now = check_records(master, records)
    then = check_records(before, records)
    assert [dataclasses.asdict(r) for r in now] == [dataclasses.asdict(r) for r in then]
    assert [dataclasses.asdict(r) for r in check_records(
        master, records, household_evidence=False)] == [dataclasses.asdict(r) for r in then]
    off = check_records(master, [milk_child(household_id=WANG)], household_evidence=False)[0]
    assert off.verdict == "new_person" and all(
        c.explanation["household"] == 0.0 for c in off.candidates)
    # An unknown household id weighs like none (only renewals read the id itself).
    def weighed(r):
        return r.verdict, [(c.entity_id, c.weight, c.explanation) for c in r.candidates]

    assert weighed(check(job, records[1])) == weighed(check(job, records[0]))
    assert all(c.explanation["household"] == 0.0 and c.household_note == ""
               for r in now for c in r.candidates)


def test_a_renewal_does_not_compete_with_its_own_listing(job):
    """The household's own record of the person (same record id, or one member keyed again)
    is the record checked, not another member: renewals stay renewals."""
    entity = job["entity"]
    head = {"source": "ncms", "name": "王建国", "id_number": valid_id("150502196003151234"),
            "birth_date": "1960-03-15", "gender": "男", "relation": "本人",
            "household_id": WANG, **PLACE}
    # A clear match, settled by its fields (module docstring): with its record id, or
    # without it as plainly the household's listing keyed again (same ID and name).
    for record in (dict(head, record_id="NH9000000001"), head):
        result = check(job, record)
        assert (result.verdict, result.entity_id) == (
            "known_person", entity[("police", "GA900000001")]), result.reason
        assert result.reason.startswith("renews the enrolment of")
        assert result.candidates[0].explanation["household"] == 0, record
    # 张's 狗剩, re-collected without its record id, is the enrolment the household has.
    again = check(job, {"source": "ncms", "name": "狗剩", "gender": "男", "birth_date": "2018",
                        "relation": "子", "household_id": ZHANG, **PLACE})
    assert (again.verdict, again.entity_id) == (
        "known_person", entity[("police", "GA900000013")]), again.reason
    assert [e["record_id"] for e in again.candidates[0].enrolments if e["renewed"]] == [
        "NH9000000013"]


def test_a_whole_family_re_collected_in_one_batch(job):
    """A desk enters the family book at once: each member is read within the household,
    in a batch of more than the per-record path takes (the frame standardisation)."""
    entity = job["entity"]
    family = [
        {"source": "ncms", "name": "王建国", "id_number": valid_id("150502196003151234"),
         "birth_date": "1960-03-15", "gender": "男", "relation": "户主", "household_id": WANG,
         **PLACE},
        {"source": "ncms", "name": "李秀英", "id_number": valid_id("150502196208201226"),
         "birth_date": "1962-08-20", "gender": "女", "relation": "妻", "household_id": WANG,
         **PLACE},
        milk_child(household_id=WANG),
    ]
    others = [{"source": "urban", "name": f"路人{k}", "birth_date": f"1990-01-{k + 1:02d}",
               "gender": "女"} for k in range(17)]
    results = check_records(job["master"], family + others)
    assert [(r.verdict, r.entity_id) for r in results[:3]] == [
        ("known_person", entity[("police", "GA900000001")]),
        ("known_person", entity[("police", "GA900000002")]),
        ("known_person", entity[("police", "GA900000003")])]
    single = check(job, milk_child(household_id=WANG))
    assert results[2].candidates[0].weight == pytest.approx(single.candidates[0].weight)


def test_a_newborn_the_registry_has_not_got_stays_a_new_person(job):
    daughter = {"source": "ncms", "name": "丫头", "gender": "女", "birth_date": "2024",
                "relation": "女", "household_id": WANG, **PLACE}
    result = check(job, daughter)
    assert result.verdict == "new_person", result.reason
    assert all(c.band == "non_match" for c in result.candidates)


def test_the_masked_scope_learns_nothing_new_of_the_household(job):
    """check shows no household term, note, registry household or member detail; check_full
    shows the term (a number) and the note in the reason, within the API's schema."""
    from linkage.web.check_api import CheckOut, result_json

    record = milk_child(household_id=WANG)
    result = check(job, record)
    masked = result_json(result, job["run_id"], False, record)
    text = json.dumps(masked, ensure_ascii=False)
    for hidden in ("900001", WANG, "王浩然", "2019-05-05", "150502201905051213"[:14],
                   "assigned", "bits", "household\""):
        assert hidden not in text, hidden
    assert masked["reason"] == "matches a known person"
    candidate = masked["candidates"][0]
    assert candidate["explanation"] is None and candidate["weight"] is None
    assert candidate["golden"]["household_id"] is None
    assert set(candidate) == set(result_json(check(job, {
        "source": "ncms", "name": "王建国", "id_number": valid_id("150502196003151234"),
        "birth_date": "1960-03-15", "gender": "男", **PLACE}), job["run_id"], False,
        record)["candidates"][0])
    full = result_json(result, job["run_id"], True, record)
    CheckOut.model_validate(full)
    assert isinstance(full["candidates"][0]["explanation"]["household"], float)
    assert "household: assigned within" in full["reason"]


def test_household_arrays_are_codes_not_objects(job):
    master = job["master"]
    assert master.households.positions.dtype == np.int32
    assert master.households.hashes.dtype == np.uint64
    assert master.relation.dtype.kind == "i" and master.relation.itemsize <= 2
    extra = master.households.nbytes + master.relation.nbytes
    assert extra < 0.05 * master.memory_bytes()


def test_the_checks_hard_negative_rule_is_the_household_steps():
    """household.hard_negatives (what the check asks before placing a record in its
    household) gives the step's own cannot-links: twins, a member keyed twice, a parent's ID."""
    from linkage.core import household, model
    from linkage.core.compare import build_comparisons, comparison_vectors
    from linkage.core.standardise import standardise_records
    from linkage.engines import local

    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")
    columns = ["source", "record_id", "household_id", "name", "id_number", "birth_date",
               "gender", "relation", "township", "village"]
    rows = [
        ("ncms", "N1", WANG, "王建国", valid_id("150502196003151234"), "1960-03-15", "男", "户主"),
        ("ncms", "N2", WANG, "王建国", valid_id("150502196003151234"), "1960-03-15", "男", "户主"),
        ("ncms", "N3", WANG, "王大宝", None, "2012-06-01", "男", "子"),
        ("ncms", "N4", WANG, "王二宝", None, "2012-06-01", "男", "子"),
        ("ncms", "N5", WANG, "王小明", valid_id("150502196003151234"), "2015-02-02", "男", "子"),
        ("police", "P1", "900001", "王建国", valid_id("150502196003151234"), "1960-03-15", "男",
         "户主"),
        ("police", "P3", "900001", "王大宝", valid_id("150502201206011213"), "2012-06-01", "男",
         "子"),
    ]
    raw = pd.DataFrame([r + ("大林镇", "红光村1组") for r in rows], columns=columns).astype(object)
    fields = {c for c in columns if c not in ("source", "record_id")}
    records = standardise_records(raw, fields).reset_index(drop=True)
    comparisons = build_comparisons(config.comparisons)
    fs = model.FSModel.load(MODEL)
    left, right = np.triu_indices(len(records), 1)
    gamma = comparison_vectors(records, comparisons, left, right)
    scorer = local.FieldScorer(records, config, comparisons, fs)
    weight, parts = scorer(left, right, gamma)
    params = local.household_params(config)
    cannot, note = household.hard_negatives(records, left, right, gamma, parts, weight, fs,
                                            params)
    step = household.household_step(records, scorer.authority, left, right, gamma, parts,
                                     weight, fs, params, scorer.compare_and_score,
                                     fs.household_prior)
    assert (cannot == step.cannot[:len(left)]).all()
    ids = records["record_id"].to_numpy()
    said = {(ids[a], ids[b]): c for a, b, c in zip(left, right, cannot)}
    assert not said[("N1", "N2")]  # one member keyed twice
    assert said[("N3", "N4")]  # twins
    assert said[("N1", "N5")] and said[("N5", "P1")]  # a father's ID on his son


def test_an_enrolment_checked_again_gets_the_batch_runs_own_weight(job):
    """Each household member sent again as it stands in the roster (its record id and
    household) is weighed against its registry person as the run weighed that pair: the same
    field weights, and where the check goes through the household step the same household
    term; a settled check (a clear match, module docstring) has no household term."""
    import sqlalchemy as sa

    from linkage.store import Store, scored_pairs

    engine = Store(job["config"].store).engine
    try:
        with engine.connect() as conn:
            stored = pd.read_sql(sa.select(scored_pairs).where(
                scored_pairs.c.run_id == job["run_id"]), conn)
    finally:
        engine.dispose()
    partners = {"NH9000000001": "GA900000001", "NH9000000002": "GA900000002",
                "NH9000000011": "GA900000011", "NH9000000012": "GA900000012",
                "NH9000000013": "GA900000013"}
    stepped = 0
    for (rid, household_id, name, id_number, gender, birth, relation), partner in zip(
            NCMS, partners.values()):
        record = {"source": "ncms", "record_id": rid, "household_id": household_id,
                  "name": name, "id_number": id_number, "gender": gender, "birth_date": birth,
                  "relation": relation, **PLACE}
        result = check(job, record)
        assert result.verdict == "known_person" and result.reason.startswith("renews"), rid
        assert result.entity_id == job["entity"][("police", partner)], rid
        row = stored[stored["record_l"].isin([rid, partner])
                     & stored["record_r"].isin([rid, partner])].iloc[0]
        term = json.loads(row["explanation"])["household"]
        if all(c.explanation["household"] == 0 for c in result.candidates):
            # Settled by its fields: the pair, where a blocking rule finds it, has the run's
            # field weight (the run's weight less its household term).
            got = [c for c in result.candidates if c.record == ("police", partner)]
            if got:
                assert got[0].weight == pytest.approx(row["weight"] - term, abs=2e-3), rid
            continue
        stepped += 1
        got = next(c for c in result.candidates if c.record == ("police", partner))
        assert got.weight == pytest.approx(row["weight"], abs=2e-3), rid
        assert got.explanation["household"] == pytest.approx(term, abs=0.01), rid
    assert stepped  # 张's 狗剩 at least: its match rests on the household


def test_a_clear_renewal_is_answered_without_the_household_step(job, monkeypatch):
    """A renewal of a clearly matched NCMS member, sent with its household id and record id,
    is settled by its field weights: the household step is not run, the answer is the one it
    gives with the step, and no household term or note is shown."""
    from linkage.core import household

    entity = job["entity"]
    record = {"source": "ncms", "record_id": "NH9000000011", "household_id": ZHANG,
              "name": "张伟", "id_number": valid_id("150502198511020319"), "gender": "男",
              "birth_date": "1985-11-02", "relation": "本人", **PLACE}
    milk = milk_child(household_id=WANG)
    stepped = check(job, milk)  # before the patch: a check that needs the step

    def refuse(*args, **kwargs):
        raise AssertionError("household_step called for a settled check")

    monkeypatch.setattr(household, "household_step", refuse)
    result = check(job, record)
    assert (result.verdict, result.entity_id) == (
        "known_person", entity[("police", "GA900000011")]), result.reason
    assert result.reason == f"renews the enrolment of {result.entity_id}"
    assert all(c.explanation["household"] == 0.0 and c.household_note == ""
               for c in result.candidates)
    # The same record in a batch with one that needs the step: only that one goes through it.
    with pytest.raises(AssertionError, match="household_step called"):
        check_records(job["master"], [record, milk])
    monkeypatch.undo()
    both = check_records(job["master"], [record, milk])
    assert (both[0].verdict, both[0].entity_id) == (result.verdict, result.entity_id)
    assert all(c.explanation["household"] == 0.0 for c in both[0].candidates)
    assert (both[1].verdict, both[1].entity_id) == (stepped.verdict, stepped.entity_id)
    assert both[1].candidates[0].weight == pytest.approx(stepped.candidates[0].weight)


def test_a_match_that_could_be_a_housemates_goes_through_the_step(job, monkeypatch):
    """Not settled, so the step runs: a record the household's listing of 张伟 could be a
    housemate of (his name and birth year, no ID, listed as a son), and a renewal whose ID's
    birthdate contradicts its own birthdate."""
    from linkage.core import household

    calls = []
    step = household.household_step

    def counted(*args, **kwargs):
        calls.append(1)
        return step(*args, **kwargs)

    monkeypatch.setattr(household, "household_step", counted)
    head = {"source": "ncms", "name": "张伟", "id_number": valid_id("150502198511020319"),
            "gender": "男", "birth_date": "1985-11-02", "relation": "本人",
            "household_id": ZHANG, **PLACE}
    son = dict(head, id_number=None, birth_date="1985", relation="子")
    for record in (son, dict(head, record_id="NH9000000011", birth_date="1958-11-02")):
        calls.clear()
        check(job, record)
        assert calls, record
