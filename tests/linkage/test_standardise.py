"""The per-value parsers the online check uses give what the column standardisers give."""
import pandas as pd
import pytest

from linkage.standardise import STANDARDISERS, VALUE_PARSERS

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
            assert (pd.isna(want) and pd.isna(got)) if pd.isna(want) else got == want, (value, column)


def test_standardise_records_leaves_the_raw_records_as_they_were():
    from linkage.standardise import standardise_records

    raw = pd.DataFrame({"source": ["ncms", "urban"], "record_id": ["N1", "U1"],
                        "name": ["张 伟", "包·巴特尔"], "gender": ["", "男"],
                        "birth_date": ["", "1975.3.12"],
                        "id_number": ["150525198001011235", "无"],
                        "household_id": [" H1 ", ""]})
    before = raw.copy()
    out = standardise_records(raw, {"name", "gender", "birth_date", "id_number", "household_id"})
    pd.testing.assert_frame_equal(raw, before)
    assert out["gender"].tolist() == ["M", "M"] and out["household_id"].tolist() == ["H1", None]
