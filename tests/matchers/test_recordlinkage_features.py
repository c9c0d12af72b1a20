"""Our comparisons inside a recordlinkage workflow: index, Compare, our features beside theirs.

On the small synthetic world (police registry against the NCMS roster, read from the CSV files
as a data team would), every feature must give the level the engine gives the same pair, and
the levels must separate the world's true pairs from the others.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import recordlinkage

from linkage.core.standardise import standardise_records
from matchers import make_comparison
from matchers.base import MISSING
from matchers.recordlinkage_features import ComparisonFeature, fields_read

# Standard raw field -> column of each source (as configs/demo.yaml maps them).
POLICE = {"name": "姓名", "id_number": "公民身份号码", "birth_date": "出生日期", "gender": "性别",
          "township": "苏木乡镇", "village": "嘎查村"}
NCMS = {"name": "成员姓名", "id_number": "身份证号", "birth_date": "出生日期", "gender": "性别",
        "township": "乡镇", "village": "村"}
MATCHERS = ("chinese_name", "resident_id", "birthdate", "gender", "place")


@pytest.fixture(scope="module")
def world(small_world):
    data = small_world / "data" / "demo"
    police = pd.read_csv(data / "police.csv", dtype=str, index_col="人员编号")
    ncms = pd.read_csv(data / "ncms.csv", dtype=str, encoding="gbk", index_col="参合编号")
    truth = pd.read_csv(data / "truth.csv", dtype=str)
    person = dict(zip(truth["source"] + "/" + truth["record_id"], truth["person_id"]))
    indexer = recordlinkage.Index()
    indexer.add(recordlinkage.index.Block(left_on="姓名", right_on="成员姓名"))
    indexer.add(recordlinkage.index.Block(left_on="公民身份号码", right_on="身份证号"))
    indexer.add(recordlinkage.index.Block(left_on="户号", right_on="家庭编号"))  # whole families
    indexer.add(recordlinkage.index.Random(2000, random_state=3))
    pairs = indexer.index(police, ncms)
    same = np.array([person.get(f"police/{a}", "?a") == person.get(f"ncms/{b}", "?b")
                     for a, b in pairs], dtype=bool)
    return police, ncms, pairs, same


def _on(source: dict[str, str], matcher: str) -> dict[str, str]:
    return {f: source[f] for f in fields_read(make_comparison(matcher))}


@pytest.fixture(scope="module")
def features(world):
    police, ncms, pairs, _ = world
    compare = recordlinkage.Compare()
    for matcher in MATCHERS:
        compare.add(ComparisonFeature(matcher, _on(POLICE, matcher), _on(NCMS, matcher)))
    compare.exact("性别", "性别", label="gender_as_written")  # recordlinkage's own, alongside
    return compare.compute(pairs, police, ncms)


def test_a_compare_object_takes_our_features_beside_its_own(world, features):
    _, _, pairs, _ = world
    assert list(features.columns) == ["name", "id_number", "birth_date", "gender", "place",
                                      "gender_as_written"]
    assert features.index.equals(pairs) and len(pairs) > 2000
    for matcher, name in zip(MATCHERS, features.columns):
        labels = make_comparison(matcher).labels
        column = features[name]
        assert column.dtype.kind == "i"
        assert column.between(MISSING, len(labels) - 1).all()
        assert column.nunique() >= 3, name  # several levels occur, not just agree/disagree


def test_levels_are_the_engines_levels(world, features):
    police, ncms, pairs, _ = world
    frames = []
    for frame, fields in ((police, POLICE), (ncms, NCMS)):
        frames.append(pd.DataFrame({f: frame[c].to_numpy(dtype=object) for f, c in fields.items()}))
    records = pd.concat(frames, ignore_index=True)
    records = records.astype(object).where(records.notna(), None)
    std = standardise_records(records, set(POLICE))
    left = police.index.get_indexer(pairs.get_level_values(0))
    right = len(police) + ncms.index.get_indexer(pairs.get_level_values(1))
    for matcher, name in zip(MATCHERS, features.columns):
        comparison = make_comparison(matcher)
        cols = list(comparison.columns)
        engine = comparison.compare(std[cols].take(left), std[cols].take(right))
        ours = features[name].to_numpy()
        if matcher in ("birthdate", "gender"):
            # The engine also fills a record's blank gender and birthdate from its valid ID; a
            # feature sees only its own columns, so it may say missing where the engine compares.
            assert np.array_equal(ours[ours != MISSING], engine[ours != MISSING]), name
            assert ((ours == MISSING) | (engine != MISSING)).all(), name
        else:
            assert np.array_equal(ours, engine), name


def test_levels_separate_the_true_pairs(world, features):
    _, _, _, same = world
    assert 100 < same.sum() < len(same) / 2
    name, id_number = features["name"].to_numpy(), features["id_number"].to_numpy()
    different = len(make_comparison("chinese_name").levels)
    assert np.mean(name[same] < different) > 0.95
    assert np.mean(id_number[same] == 0) > 0.85  # exact_valid
    id_levels = make_comparison("resident_id").labels
    two_numbers = [id_levels.index("other_region"), id_levels.index("different")]
    assert np.mean(np.isin(id_number[~same], two_numbers)) > 0.9
    # Family members share a household, village and surname, but neither ID nor given name.
    assert np.mean(name[~same] == different) > 0.8
    # The registry writes 男/女, the roster 1/2: equal as written far less often than equal.
    assert (features["gender"] == 0).sum() > (features["gender_as_written"] == 1).sum() + 100


def test_dedupe_labels_and_parameters():
    police = pd.DataFrame({
        "姓名": ["包·巴特尔", "巴特尔", "王秀英", "王秀兰", None],
        "出生日期": ["1965-03-12", "1965年3月12日", "19800101", "1980", "1970-05-05"],
    }, index=["a", "b", "c", "d", "e"])
    pairs = pd.MultiIndex.from_tuples([("a", "b"), ("c", "d"), ("a", "e"), ("a", "c")])
    compare = recordlinkage.Compare([
        ComparisonFeature("chinese_name", "姓名", values="label"),
        ComparisonFeature("chinese_name", "姓名", levels=["exact", "one_edit"], label="coarse"),
        ComparisonFeature("birthdate", {"birth_date": "出生日期"}, label="born"),
    ])
    out = compare.compute(pairs, police)  # one frame: duplicate detection
    assert out["name"].tolist() == ["surname_dropped", "one_edit", "missing", "different"]
    assert out["coarse"].tolist() == [2, 1, MISSING, 2]
    assert out["born"].tolist() == [0, 6, 7, 7]  # exact; a Jan-1 placeholder: year at most


def test_generic_matchers_read_one_text_column_and_may_sound_alike():
    a = pd.DataFrame({"given": ["catherine", "zhāng", "smith", None]})
    b = pd.DataFrame({"given": ["kathryn", "zhang", "smyth", "x"]})
    pairs = pd.MultiIndex.from_arrays([a.index, b.index])
    compare = recordlinkage.Compare([
        ComparisonFeature("string", "given", label="plain"),
        ComparisonFeature("string", "given", phonetic="metaphone", values="label"),
    ])
    out = compare.compute(pairs, a, b)
    assert out["given"].tolist() == ["phonetic", "phonetic", "phonetic", "missing"]  # tone mark
    assert out["plain"].tolist()[3] == MISSING and out["plain"].tolist()[1] != 0


def test_fields_are_checked():
    with pytest.raises(ValueError, match="reads the fields id_number, birth_date"):
        ComparisonFeature("resident_id", {"id": "身份证号"})
    with pytest.raises(ValueError, match="same fields on both sides"):
        ComparisonFeature("resident_id", {"id_number": "a", "birth_date": "b"}, {"id_number": "c"})
    with pytest.raises(KeyError, match="unknown matcher"):
        ComparisonFeature("soundex", "name")
    with pytest.raises(ValueError, match="values must be"):
        ComparisonFeature("gender", "性别", values="weight")
