import json

import numpy as np
import pandas as pd
import pytest

from linkage.jobs.evaluate import (
    blocking_recall,
    evaluate,
    hard_negatives_merged,
    read_hard_negatives,
    review_load,
)


def _frames():
    clusters = pd.DataFrame({
        "source": ["police", "ncms", "urban", "police", "ncms", "ncms"],
        "record_id": ["GA1", "NH1", "CZ1", "GA2", "NH2", "NH3"],
        "entity_id": ["E1", "E1", "E1", "E2", "E2", "E3"],
    })
    truth = pd.DataFrame({
        "source": clusters["source"], "record_id": clusters["record_id"],
        "person_id": ["p1", "p1", "p1", "p2", "p2", "p2"],
    })
    return clusters, truth


def test_pairwise_and_bcubed():
    clusters, truth = _frames()
    result = evaluate(clusters, truth, {"ncms", "urban"})
    pw = result["pairwise"]
    assert pw["precision"] == 1.0
    assert pw["recall"] == pytest.approx(4 / 6)
    assert result["bcubed"]["precision"] == 1.0


def test_duplicate_enrolment_precision_and_recall():
    clusters, truth = _frames()
    d = evaluate(clusters, truth, {"ncms", "urban"})["duplicate_enrolment"]
    # p1 (NH1+CZ1) found; p2 (NH2+NH3) split across entities: missed.
    assert d["true"] == 2 and d["flagged"] == 1
    assert d["precision"] == 1.0 and d["recall"] == 0.5


def test_blocking_recall_counts_kept_true_pairs():
    clusters, truth = _frames()
    records = clusters[["source", "record_id"]]
    left, right = np.array([0, 3]), np.array([1, 5])
    r = blocking_recall(records, left, right, truth)
    assert r["true_pairs"] == 6 and r["kept"] == 2


# --------------------------------------------------------------------------- issue 16 measures
#
# A small village: 王建国 (insured in NCMS and the urban roster), his son 王小明, 李秀英 (a
# married daughter left in her parents' NCMS household and added to her husband's, and
# registered twice by the police), two unrelated infants both keyed as 狗剩 whose NCMS records
# the linkage wrongly merged with one registry record, and 赵丽, a migrant insured twice and in
# no registry.

INSURANCE = {"ncms", "urban"}
AUTHORITY = {"police"}

RECORDS = [  # source, record_id, entity_id, person_id
    ("police", "GA01", "E1", "王建国"), ("ncms", "NH01", "E1", "王建国"),
    ("urban", "CZ01", "E1", "王建国"),
    ("police", "GA02", "E2", "王小明"), ("ncms", "NH02", "E2", "王小明"),
    ("police", "GA03", "E3", "李秀英"), ("ncms", "NH03", "E3", "李秀英"),
    ("ncms", "NH04", "E4", "李秀英"), ("police", "GA04", "E11", "李秀英"),
    ("police", "GA05", "E5", "狗剩-张家"), ("ncms", "NH05", "E5", "狗剩-张家"),
    ("ncms", "NH06", "E5", "狗剩-刘家"), ("police", "GA06", "E10", "狗剩-刘家"),
    ("urban", "CZ02", "E6", "赵丽"), ("ncms", "NH07", "E6", "赵丽"),
]


def _village():
    frame = pd.DataFrame(RECORDS, columns=["source", "record_id", "entity_id", "person_id"])
    return frame.drop(columns="person_id"), frame.drop(columns="entity_id")


def _clusters_truth(rows):
    frame = pd.DataFrame(rows, columns=["source", "record_id", "entity_id", "person_id"])
    return frame.drop(columns="person_id"), frame.drop(columns="entity_id")


def test_strict_duplicate_enrolment_scores_persons_not_entities():
    clusters, truth = _village()
    result = evaluate(clusters, truth, INSURANCE, AUTHORITY)
    strict = result["strict_duplicate_enrolment"]
    # True duplicates: 王建国, 李秀英, 赵丽. Flagged persons: 王建国 (E1), 赵丽 (E6) and both 狗剩
    # (E5 holds two insurance records). Correct: 王建国 and 赵丽; 李秀英's enrolments are apart.
    assert (strict["true"], strict["flagged"], strict["correct"]) == (3, 4, 2)
    assert strict["precision"] == pytest.approx(2 / 4)
    assert strict["recall"] == pytest.approx(2 / 3)
    assert strict["flagged_not_duplicate"] == 2 and strict["flagged_split"] == 0
    # The entity-level measure is kept beside it and counts E5 once, not its two persons.
    old = result["duplicate_enrolment"]
    assert old["flagged"] == 3 and old["precision"] == pytest.approx(2 / 3)


def test_a_duplicate_whose_enrolments_sit_in_different_flagged_entities_is_not_correct():
    # 陈伟 is insured twice, but his NCMS record was merged with a namesake's and his urban
    # record with another stranger's: both entities are flagged, 陈伟 is not found.
    clusters, truth = _clusters_truth([
        ("ncms", "NH10", "E8", "陈伟"), ("urban", "CZ10", "E9", "陈伟"),
        ("ncms", "NH11", "E8", "陈伟-同名"), ("ncms", "NH12", "E9", "刘芳"),
    ])
    strict = evaluate(clusters, truth, INSURANCE)["strict_duplicate_enrolment"]
    assert (strict["true"], strict["flagged"], strict["correct"]) == (1, 3, 0)
    assert strict["precision"] == 0.0 and strict["recall"] == 0.0
    assert strict["flagged_split"] == 1 and strict["flagged_not_duplicate"] == 2


def test_strict_duplicate_enrolment_without_any_duplicates():
    clusters, truth = _clusters_truth([
        ("police", "GA01", "E1", "王建国"), ("ncms", "NH01", "E1", "王建国"),
        ("police", "GA02", "E2", "王小明"), ("urban", "CZ02", "E2", "王小明"),
    ])
    strict = evaluate(clusters, truth, INSURANCE, AUTHORITY)["strict_duplicate_enrolment"]
    assert (strict["true"], strict["flagged"], strict["correct"]) == (0, 0, 0)
    assert strict["precision"] == 1.0 and strict["recall"] == 1.0  # nothing to find, none wrong


def test_wrong_person_links_count_insurance_records_beside_another_persons_registry_record():
    clusters, truth = _village()
    wrong = evaluate(clusters, truth, INSURANCE, AUTHORITY)["wrong_person_links"]
    # Only 刘家's 狗剩 (NH06) sits with a registry record of another person (GA05, 张家's).
    # 李秀英's second registration GA04 is her own; NH04 alone is a miss, not a wrong link.
    assert wrong["records"] == 1 and wrong["insurance_records"] == 9
    assert wrong["per_10k"] == pytest.approx(10_000 / 9)
    assert wrong["by_source"] == {"ncms": 1, "urban": 0}


def test_a_wrong_link_counts_even_when_the_persons_own_registry_record_is_there_too():
    clusters, truth = _clusters_truth([
        # the registry's two records of 王建国 (a double registration) with his NCMS record: fine
        ("police", "GA01", "E1", "王建国"), ("police", "GA01b", "E1", "王建国"),
        ("ncms", "NH01", "E1", "王建国"),
        # father and son of one name merged: the son's record beside his father's registry one
        ("police", "GA07", "E7", "张伟-父"), ("police", "GA08", "E7", "张伟-子"),
        ("ncms", "NH08", "E7", "张伟-子"),
        # an insurance record with no registry record in its entity is never wrong
        ("urban", "CZ09", "E9", "赵丽"),
    ])
    wrong = evaluate(clusters, truth, INSURANCE, AUTHORITY)["wrong_person_links"]
    assert wrong["records"] == 1 and wrong["insurance_records"] == 3


def test_authority_recall_per_insurance_source():
    clusters, truth = _village()
    recall = evaluate(clusters, truth, INSURANCE, AUTHORITY)["authority_recall"]
    # NCMS: 赵丽 has no registry record; of the other six, NH04 (李秀英) and NH06 (刘家's 狗剩,
    # merged with 张家's registry record) miss their person's registry record.
    assert recall["ncms"] == {"records": 7, "registered": 6, "linked": 4,
                              "recall": pytest.approx(4 / 6)}
    assert recall["urban"] == {"records": 2, "registered": 1, "linked": 1, "recall": 1.0}


def test_measures_needing_the_registry_are_none_without_authority_sources():
    clusters, truth = _village()
    result = evaluate(clusters, truth, INSURANCE)
    assert result["wrong_person_links"] is None and result["authority_recall"] is None
    assert result["hard_negatives"] is None and result["review_load"] is None


HARD_NEGATIVES = """kind,source_l,record_l,source_r,record_r
milk_name_namesakes,ncms,NH05,ncms,NH06
father_son_same_name,police,GA01,police,GA02
child_with_parent_id,ncms,NH01,ncms,NH02
twins,ncms,NH98,ncms,NH99
twins,police,GA05,police,GA06
"""


def _write_world(folder, hard_negatives: str | None):
    clusters, truth = _village()
    folder.mkdir(parents=True, exist_ok=True)
    truth.to_csv(folder / "truth.csv", index=False, encoding="utf-8")
    clusters.to_csv(folder / "clusters.csv", index=False, encoding="utf-8")
    if hard_negatives is not None:
        (folder / "hard_negatives.csv").write_text(hard_negatives, encoding="utf-8")
    return folder / "clusters.csv", folder / "truth.csv"


def test_hard_negatives_merged_by_kind(tmp_path):
    _, truth_path = _write_world(tmp_path, HARD_NEGATIVES)
    clusters, truth = _village()
    hard = read_hard_negatives(truth_path)
    got = evaluate(clusters, truth, INSURANCE, AUTHORITY, hard_negatives=hard)["hard_negatives"]
    assert got["pairs"] == 5 and got["merged"] == 1 and got["unlinked"] == 1
    assert got["by_kind"] == {
        "twins": {"pairs": 2, "merged": 0, "unlinked": 1},  # NH98/NH99 were never linked
        "father_son_same_name": {"pairs": 1, "merged": 0, "unlinked": 0},
        "child_with_parent_id": {"pairs": 1, "merged": 0, "unlinked": 0},
        "same_name_same_birthdate": {"pairs": 0, "merged": 0, "unlinked": 0},
        "milk_name_namesakes": {"pairs": 1, "merged": 1, "unlinked": 0},  # the two 狗剩
    }


def test_hard_negatives_of_a_kind_not_known_yet_are_counted_too():
    clusters, _ = _village()
    hard = pd.DataFrame({"kind": ["clerk_keyed_twice"], "source_l": ["ncms"],
                         "record_l": ["NH05"], "source_r": ["ncms"], "record_r": ["NH06"]})
    got = hard_negatives_merged(clusters, hard)
    assert got["by_kind"]["clerk_keyed_twice"] == {"pairs": 1, "merged": 1, "unlinked": 0}
    assert got["by_kind"]["twins"]["pairs"] == 0


def test_hard_negatives_file_with_wrong_columns_is_refused():
    clusters, _ = _village()
    with pytest.raises(ValueError, match="record_r"):
        hard_negatives_merged(clusters, pd.DataFrame({"kind": [], "source_l": [],
                                                      "record_l": [], "source_r": []}))


def test_missing_hard_negatives_file_gives_none(tmp_path):
    _, truth_path = _write_world(tmp_path, None)
    assert read_hard_negatives(truth_path) is None
    assert read_hard_negatives(None) is None


REVIEW = pd.DataFrame(
    [("police", "GA03", "police", "GA04"),  # 李秀英 registered twice: for the registry office
     ("police", "GA05", "police", "GA06"),  # two infants called 狗剩, each registered once
     ("ncms", "NH04", "police", "GA03"),
     ("ncms", "NH06", "police", "GA06")],
    columns=["source_l", "record_l", "source_r", "record_r"])


def test_review_load_per_thousand_persons_with_registry_pairs_apart():
    clusters, truth = _village()
    load = evaluate(clusters, truth, INSURANCE, AUTHORITY, review=REVIEW)["review_load"]
    assert load["persons"] == 6  # distinct persons in the truth, not records
    assert (load["pairs"], load["registry_pairs"], load["other_pairs"]) == (4, 2, 2)
    assert load["per_1000"] == pytest.approx(2 * 1000 / 6)
    assert load["registry_per_1000"] == pytest.approx(2 * 1000 / 6)
    assert load["total_per_1000"] == pytest.approx(4 * 1000 / 6)
    assert load["registry_same_person"] == 1


def test_review_load_edge_cases():
    _, truth = _village()
    empty = review_load(REVIEW.iloc[:0], AUTHORITY, 6, truth)
    assert empty["pairs"] == 0 and empty["per_1000"] == 0.0 and empty["registry_pairs"] == 0
    unknown = review_load(REVIEW, None, 6)  # registry sources unknown: nothing set apart
    assert unknown["registry_pairs"] is None and unknown["per_1000"] == pytest.approx(4000 / 6)
    assert review_load(REVIEW, AUTHORITY, 0)["per_1000"] == 0.0


def test_api_and_cli_read_review_and_hard_negatives_beside_their_files(tmp_path, capsys):
    from linkage import api
    from linkage.cli import main

    clusters_path, truth_path = _write_world(tmp_path / "with", HARD_NEGATIVES)
    REVIEW.to_csv(clusters_path.with_name("review_pairs.csv"), index=False)
    got = api.evaluate(clusters_path, truth_path, INSURANCE, authority=AUTHORITY)
    assert got["hard_negatives"]["merged"] == 1 and got["review_load"]["registry_pairs"] == 2
    assert got["wrong_person_links"]["records"] == 1
    assert main(["evaluate", "--clusters", str(clusters_path), "--truth", str(truth_path),
                 "--insurance", "ncms,urban", "--authority", "police"]) == 0
    assert json.loads(capsys.readouterr().out) == got

    bare_clusters, bare_truth = _write_world(tmp_path / "bare", None)
    bare = api.evaluate(bare_clusters, bare_truth, INSURANCE)
    assert bare["hard_negatives"] is None and bare["review_load"] is None
    assert bare["strict_duplicate_enrolment"] == got["strict_duplicate_enrolment"]


def test_a_large_roster_evaluates_from_contingency_tables():
    # 200,000 persons, 600,000 records: every measure without listing pairs.
    rng = np.random.default_rng(16)
    n = 200_000
    person = np.repeat(np.arange(n), 3)
    source = np.tile(["police", "ncms", "urban"], n)
    entity = person.copy()
    moved = rng.random(len(person)) < 0.01
    entity[moved] = rng.integers(0, n, moved.sum())
    clusters = pd.DataFrame({"source": source, "record_id": np.arange(len(person)).astype(str),
                             "entity_id": entity.astype(str)})
    truth = clusters[["source", "record_id"]].assign(person_id=person.astype(str))
    result = evaluate(clusters, truth, INSURANCE, AUTHORITY, review=REVIEW)
    strict = result["strict_duplicate_enrolment"]
    assert strict["true"] == n and 0.97 < strict["recall"] < 1.0
    assert 0 < result["wrong_person_links"]["records"] < 0.03 * 2 * n


def test_cli_takes_review_and_hard_negatives_from_anywhere(tmp_path, capsys):
    from linkage.cli import main

    clusters_path, truth_path = _write_world(tmp_path / "run", None)
    (tmp_path / "hn.csv").write_text(HARD_NEGATIVES, encoding="utf-8")
    REVIEW.iloc[2:].to_csv(tmp_path / "decide.csv", index=False)
    assert main(["evaluate", "--clusters", str(clusters_path), "--truth", str(truth_path),
                 "--insurance", "ncms,urban", "--review", str(tmp_path / "decide.csv"),
                 "--hard-negatives", str(tmp_path / "hn.csv")]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["hard_negatives"]["by_kind"]["milk_name_namesakes"]["merged"] == 1
    # no --authority and no config: registry pairs cannot be set apart
    assert got["review_load"]["pairs"] == 2 and got["review_load"]["registry_pairs"] is None
    assert got["wrong_person_links"] is None
