"""Household linkage on realistic small households: correspondences, assignment inside them,
the hard negatives, milk names; and the invariant that assignment is one to one.

Records go through the real standardisers, blocking rules, comparisons and the household step
with the demo's model (tests/core/data/demo_model.json, saved from a demo run), then through
clustering with the run's constraints, so each test reads as "these records become these
people".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.core import blocking, cluster, household, model
from linkage.core.compare import build_comparisons, comparison_vectors
from linkage.core.config import load_config
from linkage.core.standardise import standardise_records
from linkage.engines import local
from linkage.jobs.run import cannot_links, classify

REPO = Path(__file__).resolve().parents[2]
MODEL = Path(__file__).parent / "data" / "demo_model.json"
COLUMNS = ["source", "record_id", "household_id", "name", "id_number", "birth_date", "gender",
           "relation", "township", "village"]


def _config(**household_settings):
    return load_config(REPO / "configs" / "demo.yaml", {"household": household_settings})


class Typed(str):
    """An ID as the clerk typed it, check character and all: :func:`link` leaves it as it is."""


def valid_id(text: str) -> str:
    """The ID with its check character set right (GB 11643): the tests write IDs of real
    shape and let this make them valid, as a registry's are."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(text[:17], weights))
    return text[:17] + "10X98765432"[total % 11]


def _neighbours(count: int = 40) -> list[tuple]:
    """Other registry persons of 五家子村, so that name frequencies are those of a population
    and not of the household under test alone."""
    surnames, given = "赵钱孙李周吴郑冯陈褚卫蒋沈韩杨朱秦尤许何", "明华军平国庆建伟志勇"
    out = []
    for k in range(count):
        name = surnames[k % 20] + given[(k // 20) % 10] + given[(k // 200) % 10]
        year, month, day = 1940 + k % 60, 1 + (k // 60) % 12, 1 + (k // 720) % 28
        out.append(("police", f"X{k}", f"9{k // 4:05d}", name,
                    f"150523{year}{month:02d}{day:02d}{k % 1000:03d}",
                    f"{year}-{month:02d}-{day:02d}", "男", "户主", "三家子乡", "五家子村"))
    return out


def link(rows: list[tuple], neighbours: int = 40, decided: pd.DataFrame | None = None,
         **household_settings):
    """Entities (sets of record ids) and the weighed pairs of ``rows`` (among neighbours);
    ``decided``: reviewers' decisions on correspondences."""
    config = _config(**household_settings)
    raw = pd.DataFrame(rows + _neighbours(neighbours), columns=COLUMNS).astype(object)
    raw["id_number"] = [valid_id(v) if isinstance(v, str) and not isinstance(v, Typed) else v
                        for v in raw["id_number"]]
    raw = raw.where(raw.notna(), None)
    fields = {c for c in COLUMNS if c not in ("source", "record_id")}
    records = standardise_records(raw, fields).reset_index(drop=True)
    comparisons = build_comparisons(config.comparisons)
    fs = model.FSModel.load(MODEL)
    left, right, _ = blocking.candidate_pairs(records, config.blocking, config.link_type)
    gamma = comparison_vectors(records, comparisons, left, right)
    weighed = local.weigh(records, config, comparisons, fs, left, right, gamma, decided)
    scored = local.ScoredPairs.of(weighed, pd.DataFrame({"l": [], "r": [], "decision": []}),
                                  len(records), fs, [], comparisons)
    _, band = classify(scored.weight, scored.decision, config)
    match = np.flatnonzero(band == 0)
    authority = (records["source"] == "police").to_numpy()
    empty = pd.DataFrame({"l": pd.Series([], dtype=int), "r": pd.Series([], dtype=int),
                          "decision": pd.Series([], dtype=object)})
    labels = cluster.cluster(len(records), scored.left[match], scored.right[match],
                             scored.weight[match], authority,
                             cannot_link=cannot_links(empty, scored)).labels
    ids = records["record_id"].to_numpy()
    entities = {frozenset(ids[labels == k]) for k in np.unique(labels)}
    return entities, records, scored


def together(entities, *ids) -> bool:
    return any(set(ids) <= e for e in entities)


def pair_note(records, scored, a: str, b: str) -> str:
    ids = records["record_id"].to_numpy()
    for k in range(len(scored.left)):
        if {ids[scored.left[k]], ids[scored.right[k]]} == {a, b}:
            return scored.note[k]
    return "<no pair>"


# The 王 household of 红光村: registry 户 100001 and NCMS household 1505230901.
WANG_REGISTRY = [
    ("police", "P1", "100001", "王建国", "150523196003151234", "1960-03-15", "男", "户主",
     "三家子乡", "红光村"),
    ("police", "P2", "100001", "李秀英", "150523196208201226", "1962-08-20", "女", "妻",
     "三家子乡", "红光村"),
    ("police", "P3", "100001", "王浩然", "150523201905051213", "2019-05-05", "男", "子",
     "三家子乡", "红光村"),
]


# Its NCMS household 1505230901: the head and his wife as the registry has them.
WANG_NCMS = [
    ("ncms", "N1", "1505230901", "王建国", "150523196003151234", "1960-03-15", "男", "户主",
     "三家子乡", "红光村"),
    ("ncms", "N2", "1505230901", "李秀英", "150523196208201226", "1962-08-20", "女", "妻",
     "三家子乡", "红光村"),
]


def test_a_milk_name_child_without_id_is_read_from_the_household():
    ncms = [
        ("ncms", "N1", "1505230901", "王建国", "150523196003151234", "1960-03-15", "男", "户主",
         "三家子乡", "红光村一组"),
        ("ncms", "N2", "1505230901", "李秀英", "150523196208201226", "1962-08-20", "女", "妻",
         "三家子乡", "红光村一组"),
        ("ncms", "N3", "1505230901", "狗剩", None, "2019", "男", "子", "三家子乡", "红光村一组"),
    ]
    entities, records, scored = link(WANG_REGISTRY + ncms, milk_names=["狗剩"])
    assert together(entities, "P1", "N1") and together(entities, "P2", "N2")
    assert together(entities, "P3", "N3")
    note = pair_note(records, scored, "P3", "N3")
    assert note.startswith("assigned within ncms:1505230901↔police:100001, 3 of 3 members agree")
    # Without the household step the child stays apart: the record alone cannot say who it is.
    entities_off, _, _ = link(WANG_REGISTRY + ncms, milk_names=["狗剩"], enabled=False)
    assert not together(entities_off, "P3", "N3")


def test_assignment_tells_two_sisters_apart_by_birth_year_and_order():
    registry = WANG_REGISTRY[:2] + [
        ("police", "P4", "100001", "王芳", "150523201503021228", "2015-03-02", "女", "长女",
         "三家子乡", "红光村"),
        ("police", "P5", "100001", "王静", "150523201709091220", "2017-09-09", "女", "次女",
         "三家子乡", "红光村"),
    ]
    ncms = WANG_NCMS + [
        # Keyed in the other order, under milk names, with year-only birthdates and no IDs.
        ("ncms", "N5", "1505230901", "二丫", None, "2017", "女", "女", "三家子乡", "红光村"),
        ("ncms", "N4", "1505230901", "大丫", None, "2015", "女", "女", "三家子乡", "红光村"),
    ]
    entities, _, _ = link(registry + ncms, milk_names=["大丫", "二丫"])
    assert together(entities, "P4", "N4") and together(entities, "P5", "N5")
    assert not together(entities, "P4", "N5") and not together(entities, "P5", "N4")


def test_twins_of_one_household_never_merge():
    registry = WANG_REGISTRY[:2] + [
        ("police", "P6", "100001", "王梓轩", "150523201104171219", "2011-04-17", "男", "长子",
         "三家子乡", "红光村"),
        ("police", "P7", "100001", "王梓涵", "150523201104171235", "2011-04-17", "男", "次子",
         "三家子乡", "红光村"),
    ]
    ncms = [
        ("ncms", "N1", "1505230901", "王建国", "150523196003151234", "1960-03-15", "男", "户主",
         "三家子乡", "红光村"),
        ("ncms", "N6", "1505230901", "王梓轩", None, "2011-04-17", "男", "子", "三家子乡",
         "红光村"),
        ("ncms", "N7", "1505230901", "王梓涵", None, "2011-04-17", "男", "子", "三家子乡",
         "红光村"),
    ]
    entities, records, scored = link(registry + ncms)
    assert together(entities, "P6", "N6") and together(entities, "P7", "N7")
    assert not together(entities, "N6", "N7")
    assert pair_note(records, scored, "N6", "N7") == "two members of one household"


def test_a_child_carrying_the_fathers_id_links_to_the_child_not_the_father():
    registry = WANG_REGISTRY[:2] + [
        ("police", "P8", "100001", "王小军", "150523201206061217", "2012-06-06", "男", "子",
         "三家子乡", "红光村"),
    ]
    ncms = WANG_NCMS + [
        # The clerk copied the father's ID onto the son's line.
        ("ncms", "N8", "1505230901", "王小军", "150523196003151234", "2012-06-06", "男", "子",
         "三家子乡", "红光村"),
    ]
    entities, records, scored = link(registry + ncms)
    assert together(entities, "P1", "N1") and together(entities, "P8", "N8")
    assert not together(entities, "P1", "N8")
    assert "parent's ID" in pair_note(records, scored, "P1", "N8")


def test_father_and_son_of_one_name_stay_two_people():
    registry = [
        ("police", "P1", "100001", "王建国", "150523196003151234", "1960-03-15", "男", "户主",
         "三家子乡", "红光村"),
        ("police", "P9", "100001", "王建国", "150523198807071238", "1988-07-07", "男", "子",
         "三家子乡", "红光村"),
    ]
    ncms = [
        ("ncms", "N1", "1505230901", "王建国", None, "1960-03-15", "男", "户主", "三家子乡",
         "红光村"),
        ("ncms", "N9", "1505230901", "王建国", None, "1988-07-07", "男", "子", "三家子乡",
         "红光村"),
    ]
    entities, _, _ = link(registry + ncms)
    assert together(entities, "P1", "N1") and together(entities, "P9", "N9")
    assert not together(entities, "N1", "N9")


def test_a_married_daughter_in_two_ncms_households_links_from_both():
    registry = WANG_REGISTRY[:2] + [
        ("police", "P10", "100001", "王小红", "150523199002021226", "1990-02-02", "女", "女",
         "三家子乡", "红光村"),
        ("police", "Q1", "200001", "赵刚", "150523198805051219", "1988-05-05", "男", "户主",
         "三家子乡", "六家子村"),
        ("police", "Q2", "200001", "赵子涵", "150523201403031215", "2014-03-03", "男", "子",
         "三家子乡", "六家子村"),
    ]
    ncms = WANG_NCMS + [
        ("ncms", "N10", "1505230901", "王小红", "150523199002021226", "1990-02-02", "女", "女",
         "三家子乡", "红光村"),
        # Her husband's household lists her as 妻: she is enrolled twice.
        ("ncms", "M1", "1505230902", "赵刚", "150523198805051219", "1988-05-05", "男", "户主",
         "三家子乡", "六家子村"),
        ("ncms", "M2", "1505230902", "王小红", "150523199002021226", "1990-02-02", "女", "妻",
         "三家子乡", "六家子村"),
        ("ncms", "M3", "1505230902", "赵子涵", "150523201403031215", "2014-03-03", "男", "子",
         "三家子乡", "六家子村"),
    ]
    entities, _, scored = link(registry + ncms)
    assert together(entities, "P10", "N10", "M2")
    kinds = dict(zip(scored.households["insurance_household"] + " " +
                     scored.households["registry_household"], scored.households["kind"]))
    assert kinds["ncms:1505230902 police:200001"] == "split"
    assert kinds["ncms:1505230902 police:100001"] == "split"


# 王丽 married 赵刚 of 东来镇前进村: the registry moved her to his 户 200001 as 妻, and his NCMS
# household lists her; her parents' NCMS household in 红光村 still lists her as 女, without ID.
ZHAO_REGISTRY = [
    ("police", "Q1", "200001", "赵刚", "150523198805051219", "1988-05-05", "男", "户主", "东来镇",
     "前进村"),
    ("police", "Q2", "200001", "王丽", "150523199002021226", "1990-02-02", "女", "妻", "东来镇",
     "前进村"),
    ("police", "Q3", "200001", "赵子涵", "150523201403031215", "2014-03-03", "男", "子", "东来镇",
     "前进村"),
]
ZHAO_NCMS = [
    ("ncms", "M1", "1505230902", "赵刚", "150523198805051219", "1988-05-05", "男", "户主", "东来镇",
     "前进村"),
    ("ncms", "M2", "1505230902", "王丽", "150523199002021226", "1990-02-02", "女", "妻", "东来镇",
     "前进村"),
    ("ncms", "M3", "1505230902", "赵子涵", "150523201403031215", "2014-03-03", "男", "子", "东来镇",
     "前进村"),
]
DAUGHTER_AT_HOME = ("ncms", "N10", "1505230901", "王丽", None, "1990-02-02", "女", "女",
                    "三家子乡", "红光村")


def test_a_married_daughter_left_on_her_parents_roster_is_found_insured_twice():
    """Her home record has no ID and another township: on its fields alone (a common name, the
    birthdate) it waits in review. Her parents' household, otherwise linked, has no registry
    record for her, and the one 王丽 of her birthdate is a wife assigned in another household:
    the place says nothing of a married daughter, and she is found insured twice."""
    rows = WANG_REGISTRY[:2] + ZHAO_REGISTRY + WANG_NCMS + [DAUGHTER_AT_HOME] + ZHAO_NCMS
    entities, records, scored = link(rows, neighbours=400)
    assert together(entities, "Q2", "M2", "N10")
    assert pair_note(records, scored, "N10", "Q2").startswith(
        "a daughter her household leaves over, and a wife or daughter-in-law assigned in another")
    # Without the household step the pair waits for a reviewer.
    entities_off, _, _ = link(rows, neighbours=400, enabled=False)
    assert not together(entities_off, "Q2", "N10")


def test_a_daughter_with_two_namesake_wives_elsewhere_is_left_to_a_reviewer():
    """Two wives named 王丽 born that day in two other households: which one she married the
    record cannot say, so neither pair is lifted."""
    other = [
        ("police", "R1", "300001", "孙志勇", "150523198701011213", "1987-01-01", "男", "户主",
         "大榆树镇", "五家子村"),
        ("police", "R2", "300001", "王丽", "150523199002024321", "1990-02-02", "女", "妻",
         "大榆树镇", "五家子村"),
        ("ncms", "S1", "1505230903", "孙志勇", "150523198701011213", "1987-01-01", "男", "户主",
         "大榆树镇", "五家子村"),
        ("ncms", "S2", "1505230903", "王丽", "150523199002024321", "1990-02-02", "女", "妻",
         "大榆树镇", "五家子村"),
    ]
    rows = WANG_REGISTRY[:2] + ZHAO_REGISTRY + WANG_NCMS + [DAUGHTER_AT_HOME] + ZHAO_NCMS + other
    entities, records, scored = link(rows, neighbours=400)
    assert not together(entities, "Q2", "N10") and not together(entities, "R2", "N10")
    assert not pair_note(records, scored, "N10", "Q2").startswith("a daughter")
    assert together(entities, "Q2", "M2") and together(entities, "R2", "S2")


def test_a_daughter_registered_at_home_gains_nothing_from_a_namesake_wife_elsewhere():
    """The registry keeps her in her parents' 户: she is assigned there, not left over, and the
    wife of her name and birthdate in 前进村 is another woman."""
    registry = WANG_REGISTRY[:2] + [
        ("police", "P10", "100001", "王丽", "150523199002025520", "1990-02-02", "女", "女",
         "三家子乡", "红光村")] + ZHAO_REGISTRY
    rows = registry + WANG_NCMS + [DAUGHTER_AT_HOME] + ZHAO_NCMS
    entities, records, scored = link(rows, neighbours=400)
    assert together(entities, "P10", "N10")
    assert not together(entities, "Q2", "N10")
    assert not pair_note(records, scored, "N10", "Q2").startswith("a daughter")


def test_one_member_keyed_twice_by_the_clerk_is_one_person():
    ncms = WANG_NCMS + [
        # The same wife again, with a 1 January placeholder and another word for 妻.
        ("ncms", "N2b", "1505230901", "李秀英", "150523196208201226", "1962-01-01", "女",
         "妻子", "三家子乡", "红光村"),
    ]
    entities, _, _ = link(WANG_REGISTRY + ncms)
    assert together(entities, "P2", "N2", "N2b")


def test_milk_name_namesakes_of_two_villages_are_not_one_infant():
    registry = WANG_REGISTRY + [
        ("police", "Q1", "200001", "赵刚", "150523198805051219", "1988-05-05", "男", "户主",
         "三家子乡", "六家子村"),
        ("police", "Q3", "200001", "赵宇航", "150523201905051210", "2019-05-05", "男", "子",
         "三家子乡", "六家子村"),
    ]
    ncms = [
        ("ncms", "N1", "1505230901", "王建国", "150523196003151234", "1960-03-15", "男", "户主",
         "三家子乡", "红光村"),
        ("ncms", "N3", "1505230901", "狗剩", None, "2019-05-05", "男", "子", "三家子乡", "红光村"),
        ("ncms", "M1", "1505230902", "赵刚", "150523198805051219", "1988-05-05", "男", "户主",
         "三家子乡", "六家子村"),
        ("ncms", "M3", "1505230902", "狗剩", None, "2019-05-05", "男", "子", "三家子乡",
         "六家子村"),
    ]
    entities, _, _ = link(registry + ncms, milk_names=["狗剩"])
    assert together(entities, "P3", "N3") and together(entities, "Q3", "M3")
    assert not together(entities, "N3", "M3")


def test_milk_names_are_learned_from_infants_of_many_households():
    from linkage.core.name_evidence import learn_milk_names

    rows = []
    for k in range(8):  # 8 households' infants called 狗蛋 in NCMS, formal names in the registry
        rows.append(("ncms", f"N{k}", f"H{k}", "狗蛋", 2021, "狗蛋", ""))
        rows.append(("police", f"P{k}", f"R{k}", f"王子{k}", 2021, f"子{k}", "王"))
    for k in range(8):  # a fashionable name: common among infants in every source
        rows.append(("ncms", f"F{k}", f"G{k}", "李子涵", 2021, "子涵", "李"))
        rows.append(("police", f"Q{k}", f"S{k}", "李子涵", 2021, "子涵", "李"))
    for k in range(30):
        rows.append(("police", f"A{k}", f"T{k}", f"张伟{k}", 1970, f"伟{k}", "张"))
    records = pd.DataFrame(rows, columns=["source", "record_id", "household_id", "name_key",
                                          "birth_year", "name_given", "name_surname"])
    authority = (records["source"] == "police").to_numpy()
    learned = learn_milk_names(records, min_households=5, ratio=10, authority=authority)
    assert "狗蛋" in learned and "子涵" not in learned


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_assignment_never_gives_a_record_two_partners_in_one_household_pair(data):
    """Every member against every member, any weights (ties too): one to one, and as many
    pairs as the smaller household has members."""
    rows = []
    for c, (ni, nr) in enumerate(data.draw(st.lists(st.tuples(st.integers(1, 5),
                                                              st.integers(1, 5)),
                                                    min_size=1, max_size=6))):
        for i in range(ni):
            for r in range(nr):
                s = data.draw(st.sampled_from([-8.0, 0.0, 3.5, 3.5, 12.0]) | st.floats(-30, 30))
                rows.append((c, 10 * c + i, 1000 + 10 * c + r, s))
    members = pd.DataFrame(rows, columns=["c", "i", "r", "s"])
    chosen = members[household._assign(members)]
    assert not chosen.duplicated(["c", "i"]).any()
    assert not chosen.duplicated(["c", "r"]).any()
    sizes = members.groupby("c").agg(i=("i", "nunique"), r=("r", "nunique"))
    got = chosen.groupby("c").size().reindex(sizes.index, fill_value=0)
    assert (got == sizes.min(axis=1)).all()


def test_household_codes_key_by_source_and_household():
    records = pd.DataFrame({"source": ["police", "ncms", "police", "ncms"],
                            "household_id": ["1", "1", "1", None]})
    codes = household.household_codes(records)
    assert codes[0] == codes[2] and codes[0] != codes[1] and codes[3] == -1


def test_a_child_with_a_parents_id_and_an_unreadable_birthdate_is_not_the_parent():
    """The birthdate 99.6 cannot be read, so the record's birth year comes from the ID it
    carries, the mother's: that year is no evidence the two are one person."""
    registry = WANG_REGISTRY[:2] + [
        ("police", "P11", "100001", "陈敏梅", "152326196801086281", "1968-01-08", "女", "儿媳",
         "三家子乡", "红光村"),
    ]
    ncms = [
        ("ncms", "N1", "1505230901", "王建国", "150523196003151234", "1960-03-15", "男", "户主",
         "三家子乡", "红光村"),
        ("ncms", "N11", "1505230901", "陈敏梅", "152326196801086281", "68.1.8", "女", "儿媳",
         "三家子乡", "红光村"),
        ("ncms", "N12", "1505230901", "张欣", "152326196801086281", "99.6", "女", "之孙女",
         "三家子乡", "红光村"),
    ]
    entities, records, scored = link(registry + ncms)
    assert together(entities, "P11", "N11")
    assert not together(entities, "N11", "N12") and not together(entities, "P11", "N12")
    assert pair_note(records, scored, "N11", "N12") == "two members of one household"


def test_names_common_in_one_birth_year_are_weaker_evidence():
    from linkage.core.name_evidence import NameModel

    rows = [("ncms", f"A{k}", "李子涵", 2016) for k in range(30)]  # the year's fashion
    rows += [("ncms", f"B{k}", f"王{k}", 1960 + k % 40) for k in range(2000)]
    rows += [("ncms", "C1", "李子涵", 1975)]
    records = pd.DataFrame(rows, columns=["source", "record_id", "name_key", "birth_year"])
    names = NameModel.learn(records)
    bits = names.evidence(records, len(records)).cohort_bits
    assert bits[0] < -1.0  # 李子涵 born 2016: one of thirty that year
    assert bits[-1] == 0.0 and bits[40] == 0.0  # the 1975 one, and a rare name


def test_a_namesake_elsewhere_does_not_take_a_registry_person_assigned_more_surely():
    """Two 何岩燕 born the same day in two villages: the registry's one is assigned inside her
    own household pair (c0); the other's household pair rests on her alone (c1) and her ID
    differs, so c1 goes. A married daughter listed twice carries one ID: her c1 stays."""
    corr = pd.DataFrame({"hi": [10, 11], "hr": [20, 20], "anchors": [2, 1],
                         "anchor_i": [1, 3], "anchor_r": [101, 101]})
    members = pd.DataFrame({"c": [0, 0, 1], "i": [1, 2, 3], "r": [101, 102, 101],
                            "w": [40.0, 35.0, 7.7], "strong": [True, True, True]})
    ids = np.array(["", "15232219730129556", "15232219700505121", "15043019730129908"],
                   dtype=object)
    kept = household._keep_correspondences(corr, members, ids)["kept"].tolist()
    assert kept == [True, False]
    ids[3] = ids[1]  # the same woman, listed in her parents' and her husband's households
    kept = household._keep_correspondences(corr, members, ids)["kept"].tolist()
    assert kept == [True, True]
    ids[3] = "15232219730129566"  # a one-digit typo of the same ID: one person
    assert household._keep_correspondences(corr, members, ids)["kept"].tolist() == [True, True]


def test_a_relation_mis_keyed_on_one_member_keyed_twice_is_still_one_person():
    """罗娜晓 keyed as 配偶 and again as 女, with one ID, name and birthdate: not a mother and a
    daughter (those are a generation apart), one woman."""
    ncms = [
        ("ncms", "N1", "1505230901", "王建国", "150523196003151234", "1960-03-15", "男", "户主",
         "三家子乡", "红光村"),
        ("ncms", "N2", "1505230901", "李秀英", "150523196208201226", "1962-08-20", "女", "配偶",
         "三家子乡", "红光村"),
        ("ncms", "N2c", "1505230901", "李秀英", "150523196208201226", "1962/8/20", "女", "女",
         "三家子乡", "红光村"),
    ]
    entities, _, _ = link(WANG_REGISTRY + ncms)
    assert together(entities, "P2", "N2", "N2c")


def test_a_member_keyed_twice_under_a_homophone_and_another_relation_word_is_one_person():
    """李秀英 keyed again as 李秀瑛, 儿媳 for 妻, with her ID: one woman. Twins carry two IDs,
    so one ID and a name that sounds the same is a clerk's double, not a second person."""
    ncms = WANG_NCMS + [
        ("ncms", "N2d", "1505230901", "李秀瑛", "150523196208201226", "1962-08-20", "女",
         "儿媳", "三家子乡", "红光村"),
    ]
    entities, _, _ = link(WANG_REGISTRY + ncms)
    assert together(entities, "P2", "N2", "N2d")


def test_the_heads_spouse_keyed_twice_without_her_id_is_one_person():
    """The head's wife twice, once with a character dropped and no ID, the same birthdate. A
    household has one head's spouse. No blocking rule pairs the two records (another name
    key, no ID), so the step compares them because both reach the review threshold against
    her registry record."""
    ncms = WANG_NCMS + [
        ("ncms", "N2e", "1505230901", "李英", None, "1962-08-20", "女", "妻", "三家子乡",
         "红光村"),
    ]
    entities, records, scored = link(WANG_REGISTRY + ncms)
    assert together(entities, "P2", "N2", "N2e")
    assert pair_note(records, scored, "P2", "N2e").startswith(
        "one member keyed twice within ncms:1505230901↔police:100001")


def test_twins_with_names_of_one_sound_never_merge():
    """王梓轩 and 王子轩 (zǐ xuān both), twins without IDs in NCMS: one birthdate, one relation,
    one sound. Only a spelling alike, or one ID, makes two such records one person. (Which twin
    is which is not asserted: in a birth cohort of four records the exact name weighs less
    than the homophone, whose level has no term frequency.)"""
    registry = WANG_REGISTRY[:2] + [
        ("police", "P6", "100001", "王梓轩", "150523201104171219", "2011-04-17", "男", "长子",
         "三家子乡", "红光村"),
        ("police", "P7", "100001", "王子轩", "150523201104171235", "2011-04-17", "男", "次子",
         "三家子乡", "红光村"),
    ]
    ncms = WANG_NCMS[:1] + [
        ("ncms", "N6", "1505230901", "王梓轩", None, "2011-04-17", "男", "子", "三家子乡",
         "红光村"),
        ("ncms", "N7", "1505230901", "王子轩", None, "2011-04-17", "男", "子", "三家子乡",
         "红光村"),
    ]
    entities, records, scored = link(registry + ncms)
    assert not together(entities, "N6", "N7") and not together(entities, "P6", "P7")
    assert pair_note(records, scored, "N6", "N7") == "two members of one household"


def test_a_child_keyed_twice_under_another_spelling_without_his_id_is_one_person():
    """王达来 keyed again as 王达赖 (one Mongolian name, two transliterations) without his ID:
    one relation, one birthdate, and the registry household holds one boy of that age, so one
    boy. Twins are two registry records (test_twins_of_one_household_never_merge); a twin never
    registered keeps a name of his own (tests/online/test_check_household.py)."""
    registry = WANG_REGISTRY[:2] + [
        ("police", "P9", "100001", "王达来", "150523201108221218", "2011-08-22", "男", "子",
         "三家子乡", "红光村"),
    ]
    ncms = WANG_NCMS + [
        ("ncms", "N9", "1505230901", "王达来", "150523201108221218", "2011-08-22", "男", "儿子",
         "三家子乡", "红光村"),
        ("ncms", "N9b", "1505230901", "王达赖", None, "2011-08-22", "男", "子",
         "三家子乡", "红光村"),
    ]
    entities, records, scored = link(registry + ncms)
    assert together(entities, "P9", "N9", "N9b")


def test_a_child_keyed_twice_with_his_id_mistyped_is_one_person():
    """王达来 keyed again as 王达春 with two digits of his ID swapped (its check character fails:
    a typo of his number, not a twin's). One relation, one birthdate, and the registry household
    holds one boy of that age: one boy, enrolled twice."""
    registry = WANG_REGISTRY[:2] + [
        ("police", "P9", "100001", "王达来", "150523201108221218", "2011-08-22", "男", "子",
         "三家子乡", "红光村"),
    ]
    his = valid_id("150523201108221218")
    mistyped = Typed(his[:14] + his[15] + his[14] + his[16:])
    ncms = WANG_NCMS + [
        ("ncms", "N9", "1505230901", "王达来", his, "2011-08-22", "男", "儿子", "三家子乡",
         "红光村"),
        ("ncms", "N9c", "1505230901", "王达春", mistyped, "2011-08-22", "男", "子", "三家子乡",
         "红光村"),
    ]
    entities, records, scored = link(registry + ncms)
    assert together(entities, "P9", "N9", "N9c")
    assert pair_note(records, scored, "N9c", "P9").startswith("one member keyed twice within")


def test_a_son_keyed_twice_with_a_digit_of_his_birth_year_off_is_one_person():
    """王浩然 keyed again without his ID and born 2016 for 2019: two sons of one household never
    share a name, and the registry household holds one 王浩然 of his relation. (A prefecture's
    worth of neighbours, so that his name is as rare among his cohort as it is in life.)"""
    ncms = WANG_NCMS + [
        ("ncms", "N3", "1505230901", "王浩然", "150523201905051213", "2019-05-05", "男", "子",
         "三家子乡", "红光村"),
        ("ncms", "N3b", "1505230901", "王浩然", None, "2016-05-05", "男", "子", "三家子乡",
         "红光村"),
    ]
    entities, records, scored = link(WANG_REGISTRY + ncms, neighbours=2000)
    assert together(entities, "P3", "N3", "N3b")
    assert pair_note(records, scored, "N3b", "P3").startswith("one member keyed twice within")


def test_a_child_keyed_again_under_his_milk_name_without_id_or_date_is_one_person():
    """狗剩 with his ID and birthdate, and 狗剩 again with neither, the year alone: the milk
    name says nothing across households, but the registry household holds one son of that
    year, whom the first record takes. The second is read from the household as the first is."""
    ncms = WANG_NCMS + [
        ("ncms", "N3", "1505230901", "狗剩", "150523201905051213", "2019-05-05", "男", "子",
         "三家子乡", "红光村"),
        ("ncms", "N3b", "1505230901", "狗剩", None, "2019", "男", "子", "三家子乡", "红光村"),
    ]
    entities, records, scored = link(WANG_REGISTRY + ncms, milk_names=["狗剩"])
    assert together(entities, "P3", "N3", "N3b")
    assert "read as its double is" in pair_note(records, scored, "N3b", "P3")


def test_twins_one_keyed_without_his_id_stay_two_people():
    """Twins 王梓轩 and 王子轩, both registered; NCMS has 王梓轩 with his ID and 王子轩 without:
    two names, so no double, and the second twin is assigned to his own registry record."""
    registry = WANG_REGISTRY[:2] + [
        ("police", "P6", "100001", "王梓轩", "150523201104171219", "2011-04-17", "男", "长子",
         "三家子乡", "红光村"),
        ("police", "P7", "100001", "王子轩", "150523201104171235", "2011-04-17", "男", "次子",
         "三家子乡", "红光村"),
    ]
    ncms = WANG_NCMS + [
        ("ncms", "N6", "1505230901", "王梓轩", "150523201104171219", "2011-04-17", "男", "子",
         "三家子乡", "红光村"),
        ("ncms", "N7", "1505230901", "王子轩", None, "2011", "男", "子", "三家子乡", "红光村"),
    ]
    entities, _, _ = link(registry + ncms)
    assert not together(entities, "N6", "N7") and not together(entities, "P6", "P7")
    assert together(entities, "P6", "N6") and together(entities, "P7", "N7")


def test_a_grandson_keyed_twice_with_year_and_month_only_is_one_person():
    """闫杰飞 keyed again as 闫杰菲 (a homophone), his ID damaged by Excel and his birthdate
    written 07.8 as forms write 出生年月: one relation, one birth month, one boy."""
    registry = WANG_REGISTRY[:2] + [
        ("police", "P8", "100001", "闫杰飞", "150523200708021554", "2007-08-02", "男", "孙子",
         "三家子乡", "红光村"),
    ]
    ncms = WANG_NCMS + [
        ("ncms", "N8", "1505230901", "闫杰飞", "150523200708021554", "07.8.2", None, "孙",
         "三家子乡", "红光村"),
        ("ncms", "N8b", "1505230901", "闫杰菲", Typed("1.50523E+17"), "07.8", "男", "孙子",
         "三家子乡", "红光村"),
    ]
    entities, _, _ = link(registry + ncms)
    assert together(entities, "P8", "N8", "N8b")


def _decided(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["insurance_household", "registry_household", "decision"])


def _kinds(scored) -> dict[str, str]:
    corr = scored.households
    return dict(zip(corr["insurance_household"] + " " + corr["registry_household"],
                    corr["kind"]))


def test_a_rejected_correspondence_assigns_no_member_inside_it():
    """A reviewer says 不是同一户 of the 王 households: the child without an ID, read from the
    household before, is no longer assigned there; the parents still link on their own IDs."""
    ncms = WANG_NCMS + [
        ("ncms", "N3", "1505230901", "狗剩", None, "2019", "男", "子", "三家子乡", "红光村"),
    ]
    rejected = _decided(("ncms:1505230901", "police:100001", "different"))
    entities, records, scored = link(WANG_REGISTRY + ncms, milk_names=["狗剩"], decided=rejected)
    assert together(entities, "P1", "N1") and together(entities, "P2", "N2")
    assert not together(entities, "P3", "N3")
    assert not pair_note(records, scored, "P3", "N3").startswith("assigned within")
    corr = scored.households.iloc[0]
    assert (corr["kind"], corr["kept"], corr["decision"], corr["assignment"]) == (
        "rejected", False, "different", "[]")
    # Without the decision the household links the child (as in the first test above).
    entities, _, scored = link(WANG_REGISTRY + ncms, milk_names=["狗剩"])
    assert together(entities, "P3", "N3") and scored.households.iloc[0]["kind"] == "1:1"


# 王小红 registered twice (in her parents' 户 100001 and her husband's 200001) and enrolled in
# her husband's NCMS household only.
DOUBLE_REGISTRY = WANG_REGISTRY[:2] + [
    ("police", "P10", "100001", "王小红", "150523199002021226", "1990-02-02", "女", "女",
     "三家子乡", "红光村"),
    ("police", "Q1", "200001", "赵刚", "150523198805051219", "1988-05-05", "男", "户主",
     "三家子乡", "六家子村"),
    ("police", "Q4", "200001", "王小红", "150523199002021226", "1990-02-02", "女", "妻",
     "三家子乡", "六家子村"),
    ("police", "Q2", "200001", "赵子涵", "150523201403031215", "2014-03-03", "男", "子",
     "三家子乡", "六家子村"),
]
ZHAO_NCMS = [
    ("ncms", "M1", "1505230902", "赵刚", "150523198805051219", "1988-05-05", "男", "户主",
     "三家子乡", "六家子村"),
    ("ncms", "M2", "1505230902", "王小红", "150523199002021226", "1990-02-02", "女", "妻",
     "三家子乡", "六家子村"),
    ("ncms", "M3", "1505230902", "赵子涵", "150523201403031215", "2014-03-03", "男", "子",
     "三家子乡", "六家子村"),
]


def test_a_confirmed_correspondence_is_kept_where_the_lone_anchor_rule_drops_it():
    """The 赵 household's pair with her parents' 户 rests on 王小红 alone, who is assigned
    inside the 赵 households already: the step drops it as a registry double. A reviewer who
    confirms it (同一户) keeps it, and 王小红 is assigned inside it."""
    _, records, scored = link(DOUBLE_REGISTRY + WANG_NCMS + ZHAO_NCMS)
    assert _kinds(scored)["ncms:1505230902 police:100001"] == "dropped"
    assert not pair_note(records, scored, "M2", "P10").startswith("assigned within")

    confirmed = _decided(("ncms:1505230902", "police:100001", "same"))
    _, records, scored = link(DOUBLE_REGISTRY + WANG_NCMS + ZHAO_NCMS, decided=confirmed)
    kinds = _kinds(scored)
    assert kinds["ncms:1505230902 police:100001"] == "split"
    assert kinds["ncms:1505230902 police:200001"] == "split"
    assert pair_note(records, scored, "M2", "P10").startswith(
        "assigned within ncms:1505230902↔police:100001, 1 of 3 members agree")
    # A decision on another household pair, or an undecided one ('unsure'), changes nothing.
    other = _decided(("ncms:1505230901", "police:200001", "different"),
                     ("ncms:1505230902", "police:100001", "unsure"))
    _, _, scored = link(DOUBLE_REGISTRY + WANG_NCMS + ZHAO_NCMS, decided=other)
    assert _kinds(scored)["ncms:1505230902 police:100001"] == "dropped"


def test_a_namesake_elsewhere_gains_nothing_from_a_household_pair_he_alone_makes():
    """王建国 keyed twice as head of 1505230901 (once with his ID and a digit off his birthdate,
    once without ID), and another 王建国 born the same day in 五家子村 with his own ID. The
    registry's 王建国 of 红光村 is assigned to the keyed record with the ID; the double without ID
    matches him on its fields. The pair with the namesake would make a household pair of its
    own (1505230901↔200001) resting on that pair alone: it must not be lifted by it, or the
    namesake outranks the man's own record."""
    ncms = [
        ("ncms", "N1", "1505230901", "王建国", "150523196003151234", "1960-03-18", "男", "户主",
         "三家子乡", "红光村二组"),
        ("ncms", "N1b", "1505230901", "王建国", None, "1960-03-15", "男", "户主", "三家子乡",
         "红光村二组"),
        ("ncms", "N2", "1505230901", "李秀英", "150523196208201226", "1962-08-20", "女", "妻",
         "三家子乡", "红光村二组"),
    ]
    namesake = [
        ("police", "Q1", "200001", "王建国", "150502196003157716", "1960-03-15", "男", "户主",
         "三家子乡", "五家子村"),
        ("police", "Q2", "200001", "孙桂兰", "150502196305107728", "1963-05-10", "女", "妻",
         "三家子乡", "五家子村"),
    ]
    # Among 400 neighbours the name is rare enough for the namesake pair to reach the match
    # threshold on its fields, as 杨庆国 does among a prefecture's 1.8M records.
    entities, records, scored = link(WANG_REGISTRY + ncms + namesake, neighbours=400)
    assert together(entities, "P1", "N1", "N1b")
    assert not together(entities, "N1b", "Q1")
    assert not pair_note(records, scored, "N1b", "Q1").startswith("assigned within")


def test_a_daughter_whose_household_has_no_registry_household_is_left_to_a_reviewer():
    """Her parents' NCMS household corresponds to no registry 户 (none of them is registered):
    nothing says she is one registered elsewhere rather than a stranger of her name and
    birthdate, so the place still counts."""
    rows = ZHAO_REGISTRY + WANG_NCMS + [DAUGHTER_AT_HOME] + ZHAO_NCMS
    entities, records, scored = link(rows, neighbours=400)
    assert not together(entities, "Q2", "N10")
    assert not pair_note(records, scored, "N10", "Q2").startswith("a daughter")
    assert together(entities, "Q2", "M2")
