"""The per-value parsers the online check uses give what the column standardisers give."""
import pandas as pd
import pytest

from linkage.core.standardise import STANDARDISERS, VALUE_PARSERS

VALUES = {
    "id_number": ["150525198001011235", "15052519800101123x", "1.50525E+17", "无", None],
    "name": ["包·巴特尔", "張 偉", "单田芳", "", None],
    "birth_date": ["1980年1月1日", "80.1.1", "29221", "农历1965年3月12日", None],
    "gender": ["男", "F", "2", "未知", None],
    "township": ["甘旗卡镇", "努古斯台苏木", "", None],
    "village": ["巴彦塔拉嘎查三组", "东风村2社", None],
    "relation": ["户主", "之子", "孙女", "其他", None],
}


def test_every_standardiser_has_a_value_parser():
    assert set(VALUE_PARSERS) == set(STANDARDISERS) == set(VALUES)


@pytest.mark.parametrize("field", sorted(VALUES))
def test_value_parsers_agree_with_their_standardisers(field):
    frame = STANDARDISERS[field](pd.Series(VALUES[field], dtype=object))
    for i, value in enumerate(VALUES[field]):
        parsed = VALUE_PARSERS[field](value)
        assert list(parsed) == list(frame.columns)
        row = frame.iloc[i]
        for column, got in parsed.items():
            want = row[column]
            same = pd.isna(got) if pd.isna(want) else got == want
            assert same, (value, column)


def test_standardise_records_leaves_the_raw_records_as_they_were():
    from linkage.core.standardise import standardise_records

    raw = pd.DataFrame({"source": ["ncms", "urban"], "record_id": ["N1", "U1"],
                        "name": ["张 伟", "包·巴特尔"], "gender": ["", "男"],
                        "birth_date": ["", "1975.3.12"],
                        "id_number": ["150525198001011235", "无"],
                        "household_id": [" H1 ", ""]})
    before = raw.copy()
    out = standardise_records(raw, {"name", "gender", "birth_date", "id_number", "household_id"})
    pd.testing.assert_frame_equal(raw, before)
    assert out["gender"].tolist() == ["M", "M"] and out["household_id"].tolist() == ["H1", None]


CROSS_FIELD_CASES = [  # raw (id_number, birth_date, gender): one record each
    ("150525198001011232", "", None),  # no birthdate: the ID's, and gender from the ID
    ("150525198001011232", "1980年1月", "女"),  # partial date that agrees; gender kept
    ("150525198001011232", "1981-01-01", None),  # disagrees with the ID
    ("150525198001011235", "", "男"),  # bad check digit: its date is not trusted
    (None, "1980.1.1", None),  # no ID at all
    ("无", None, None),
]


def test_cross_field_rules_give_one_record_what_they_give_a_frame():
    """The online check runs the cross-field rules on one record's plain values; a batch run
    on a frame's arrays. One set of rules: the same columns, values and Python types."""
    from linkage.core.standardise import CROSS_FIELD_INPUTS, cross_field, standardise_records
    from linkage.online.master import plain_value

    fields = {"id_number", "birth_date", "gender"}
    raw = pd.DataFrame(CROSS_FIELD_CASES, columns=["id_number", "birth_date", "gender"])
    frame = standardise_records(raw.assign(source="s", record_id=range(len(raw))), fields)
    assert frame["birth_quality"].tolist()[0] == "from_id" != frame["birth_quality"].tolist()[3]
    assert frame["id_birth_agrees"].tolist()[1:3] == [True, False]
    assert frame["gender"].tolist()[:2] == ["M", "F"]
    for i, (id_number, birth_date, gender) in enumerate(CROSS_FIELD_CASES):
        row = {}
        for field, value in (("id_number", id_number), ("birth_date", birth_date),
                             ("gender", gender)):
            row.update({c: plain_value(v) for c, v in VALUE_PARSERS[field](value).items()})
        row.update(cross_field({c: row[c] for c in CROSS_FIELD_INPUTS if c in row}))
        for col, value in row.items():
            expected = plain_value(frame.at[i, col])
            assert value == expected and type(value) is type(expected), (i, col, value, expected)


def test_compact_records_keeps_every_value_and_the_text_sort_order():
    """A text column of few values becomes a category whose codes sort as the texts do and
    whose texts (None where missing) come back through matchers' column(); identifiers and
    columns of many values stay as they are."""
    import numpy as np

    from linkage.core.standardise import COMPACT_SHARE, compact_records
    from matchers.base import as_objects, column

    n = 50 * COMPACT_SHARE
    village = np.array(["东风村", "巴彦塔拉嘎查", None, "Aoli"] * (n // 4), dtype=object)
    records = pd.DataFrame({
        "source": ["ncms"] * n, "record_id": [f"N{i}" for i in range(n)],
        "name": [f"名{i}" for i in range(n)], "village": village,
        "row": np.arange(n), "household_id": ["H1"] * n})
    out = compact_records(records)
    assert isinstance(out["village"].dtype, pd.CategoricalDtype)
    assert list(out["village"].cat.categories) == sorted({v for v in village if v})
    for col in ("source", "record_id", "name", "household_id"):
        assert out[col].dtype == object
    assert out["row"].tolist() == records["row"].tolist()
    for got in (as_objects(out["village"]), column(out, "village", object)):
        assert got.dtype == object and got.tolist() == village.tolist()  # None, not NaN
    order = out.sort_values(["village", "row"], kind="stable")["row"].tolist()
    text = records["village"].fillna("\uffff")  # missing last, as both sorts put it
    assert order == records.assign(v=text).sort_values(["v", "row"], kind="stable")["row"].tolist()
    pd.testing.assert_frame_equal(out.astype(object).where(out.notna(), None),
                                  records.astype(object))


def test_compact_records_holds_name_and_id_keys_as_arrow_strings_read_back_as_before():
    """The keys made from names and IDs (ARROW_TEXT: given name, pinyin, the ID's first 17
    characters...) become Arrow strings; column(), column_at() and as_objects() give back the
    same values as str objects with None where missing, and blocking codes and term counts are
    those of the object column. The name and ID themselves stay objects, and so does an
    ARROW_TEXT column holding anything but str and None."""
    import numpy as np

    from linkage.core.blocking import _factorized
    from linkage.core.model import term_counts
    from linkage.core.standardise import ARROW_TEXT, compact_records
    from matchers.base import Columns, as_objects, column, column_at

    surnames = "王李张刘陈杨赵黄周吴包白"
    given = ["巴特尔", "秀英", "建国", "桂兰", "晋宇", "其其格", "志强"]
    n = 2_000
    names = np.array([None if i % 17 == 0 else "" if i % 29 == 0
                      else f"{surnames[i % 12]}{given[i % 7]}{i // 84 or ''}" for i in range(n)],
                     dtype=object)
    ids = np.array([None if i % 13 == 0 else f"15052{5 + i % 3}19{60 + i % 40}0{1 + i % 9}"
                    f"{10 + i % 18}{i:03d}"[:17] for i in range(n)], dtype=object)
    records = pd.DataFrame({
        "source": ["police", "ncms"] * (n // 2), "record_id": [f"GA{i:09d}" for i in range(n)],
        "household_id": [f"H{i // 4}" for i in range(n)], "name_given": names,
        "id_prefix17": ids, "name_norm": names, "id_norm": [v and v + "X" for v in ids],
        "name_fold": [f"备注{i}" if i % 3 else np.nan for i in range(n)],
        "name_initials": [f"{i}" if i % 2 else i for i in range(n)], "row": np.arange(n)})
    out = compact_records(records)
    assert {"name_given", "id_prefix17", "name_fold", "name_initials"} <= ARROW_TEXT
    for col in ("name_given", "id_prefix17"):
        assert isinstance(out[col].dtype, pd.ArrowDtype)
        assert out[col].isna().tolist() == [v is None for v in records[col]]
        for got in (column(out, col), column(out, col, object), as_objects(out[col])):
            assert got.dtype == object and got.tolist() == records[col].tolist()
            assert all(type(v) is str or v is None for v in got)  # None, never pd.NA
        rows = np.array([5, 0, 17, 17, n - 1])
        assert column_at(out, col, rows).tolist() == records[col].to_numpy()[rows].tolist()
        assert column_at(Columns({col: records[col].to_numpy()}), col, rows).tolist() == \
            records[col].to_numpy()[rows].tolist()
        codes, distinct, valid = _factorized(out, col)
        want_codes, want_distinct, want_valid = _factorized(records, col)
        assert (codes == want_codes).all() and distinct == want_distinct
        assert (valid == want_valid).all()
        pd.testing.assert_series_equal(term_counts(out, col), term_counts(records, col))
    for col in ("source", "record_id", "household_id", "name_norm", "id_norm", "name_fold",
                "name_initials"):  # NaN in name_fold, numbers in name_initials: left alone
        assert out[col].dtype == object and out[col].tolist() == records[col].tolist()
