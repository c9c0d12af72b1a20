"""Turn mapped raw fields into the standardised columns matchers compare and blocking keys use.

The raw values stay untouched beside the derived ones: the golden record and the roster show
what a clerk typed, the comparison keys only decide.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa

import matchers
from matchers import birthdate, gender, generic, person_name, place, relation, resident_id
from matchers.base import per_distinct

# The standardiser of each standard raw field (matchers/COLUMNS.md), defined once with the
# matchers; any other field is text, compared by the generic matchers.
STANDARDISERS = matchers.STANDARDISERS
# The per-value parser behind each standardiser, for one record at a time (the online check):
# a standardiser's one-row frame costs a millisecond of pandas, the parser microseconds.
# tests/matchers/test_fuzz_standardisers.py pins each pair to agree.
VALUE_PARSERS = {
    "id_number": resident_id.parse_id,
    "name": person_name.parse_name,
    "birth_date": lambda v: dict(zip(birthdate.COLUMNS, birthdate.parse_birthdate(v))),
    "gender": lambda v: {"gender": gender.parse_gender(v)},
    "township": lambda v: {"township_norm": place.township_core(v)},
    "village": place.parse_village,
    "relation": lambda v: {"relation_std": relation.parse_relation(v)},
}
PASS_THROUGH = {"household_id", "ethnicity", "status"}

# Columns derived across fields (blocking rules may use any of them) and the fields they carry.
DERIVED = {
    "birth_year": {"birth_date"},
    "id_region_canon": {"id_number"},
    "id_prefix17": {"id_number"},
    "id_birth_part": {"id_number"},
    "id_birth_agrees": {"id_number", "birth_date"},
}


def column_fields(fields: set[str]) -> dict[str, set[str]]:
    """Which raw fields each standardised column carries information from.

    Training needs it: an EM session over pairs blocked on a birthdate must not estimate the
    birthdate comparison, since every pair there agrees on it by construction.
    """
    out: dict[str, set[str]] = {}
    for field in fields:
        if field in STANDARDISERS:
            for col in STANDARDISERS[field](pd.Series([], dtype=object)).columns:
                out.setdefault(col, set()).add(field)
        else:
            out.setdefault(f"{field}_std" if field not in PASS_THROUGH else field, set()).add(field)
    for col, sources in DERIVED.items():
        if sources & fields:
            out.setdefault(col, set()).update(sources & fields)
    return out


def standardise_records(records: pd.DataFrame, fields: set[str]) -> pd.DataFrame:
    """Add every derived column for the fields any source maps; keeps the records' index."""
    out = records.copy(deep=False)  # new columns only; the raw ones are shared, never written
    for field in sorted(fields):
        if field in STANDARDISERS:
            derived = STANDARDISERS[field](out[field])
            for col in derived.columns:
                out[col] = derived[col].to_numpy()
        elif field in PASS_THROUGH:
            out[field] = _blank_to_none(out[field])
        else:
            out[f"{field}_std"] = generic.standardise_text(out[field]).to_numpy()
    _cross_field(out)
    return out


def _blank_to_none(values: pd.Series) -> pd.Series:
    """Text stripped, blank text and NA as None; other values (numbers) as they are."""
    return per_distinct(values, lambda v: (v.strip() or None) if isinstance(v, str) else v)


# The standardised columns the cross-field rules read.
CROSS_FIELD_INPUTS = ("gender", "id_gender", "id_birth", "birth_date", "id_status",
                      "birth_quality", "id_norm", "id_region")


def _cross_field(out: pd.DataFrame) -> None:
    """:func:`cross_field` on a frame's columns, in place."""
    derived = cross_field({c: out[c].to_numpy() for c in CROSS_FIELD_INPUTS if c in out})
    for col, values in derived.items():
        out[col] = values


def cross_field(cols: dict) -> dict:
    """Fill what one field can tell about another (gender and birthdate from the ID).

    ``cols`` maps the standardised columns there are (of ``CROSS_FIELD_INPUTS``) to numpy
    arrays (a frame's columns) or to plain values (one record, as the online check holds it);
    returns the columns added or changed, in the same form. One set of rules for both: the
    helpers below run them vectorised over arrays and as plain Python on one record, where
    numpy's cost per call on arrays of one would be several times the check's budget for them.
    """
    cols = dict(cols)  # later rules read what earlier ones wrote
    changed: dict = {}

    def put(name: str, values) -> None:
        cols[name] = changed[name] = values

    if "id_gender" in cols:
        gender = cols["gender"] if "gender" in cols else _nones_like(cols["id_gender"])
        put("gender", _where(pd.isna(gender), cols["id_gender"], gender))
    if "id_birth" in cols and "birth_date" in cols:
        idb, bd = _ints(cols["id_birth"]), _ints(cols["birth_date"])
        put("id_birth_agrees", _where((idb > 0) & (bd > 0), _birth_compatible(idb, bd), True))
        # Where the record has no usable birthdate, the ID's birthdate is the best we know.
        status = cols["id_status"]
        fill = (bd == 0) & ((status == "valid") | (status == "upgraded"))
        put("birth_date", _int32(_where(fill, idb, bd)))
        put("birth_quality", _where(fill & (idb > 0), "from_id", cols["birth_quality"]))
    elif "id_birth" in cols:
        put("id_birth_agrees", _full_like(cols["id_birth"], True))
    if "birth_date" in cols:
        year = _ints(cols["birth_date"]) // 10000
        put("birth_year", _int32(_where(year > 0, year, 0)))
    if "id_norm" in cols:
        put("id_prefix17", _each_distinct(_first17, cols["id_norm"]))
        region = _each_distinct(_canonical_region, cols["id_region"])
        put("id_region_canon", region)
        put("id_birth_part", _each(_birth_part, region, _ints(cols["id_birth"])))
    return changed


def _first17(norm) -> str | None:
    return norm[:17] if isinstance(norm, str) else None


def _canonical_region(region) -> str | None:
    return resident_id.canonical_region(region) if isinstance(region, str) else None


def _birth_part(region, birth: int) -> str | None:
    return region + str(birth) if birth > 0 and isinstance(region, str) else None


# Each helper takes columns (arrays) or one record's values, as cross_field's input does.

def _where(condition, yes, no):
    if isinstance(condition, np.ndarray):
        return np.where(condition, yes, no)
    return yes if condition else no


def _ints(values):
    return np.asarray(values, dtype=np.int64) if isinstance(values, np.ndarray) else int(values)


def _int32(values):
    return values.astype(np.int32) if isinstance(values, np.ndarray) else int(values)


def _nones_like(values):
    return np.full(len(values), None, dtype=object) if isinstance(values, np.ndarray) else None


def _full_like(values, value):
    return np.full(len(values), value) if isinstance(values, np.ndarray) else value


def _each(func, *columns):
    """``func`` of each row's values, equal texts as one object (the ID's birth part repeats
    across the records of a birthdate and region: a new string per record cost ~100 MB per
    column at a million records)."""
    if not isinstance(columns[0], np.ndarray):
        return func(*columns)
    same: dict = {}
    out = np.empty(len(columns[0]), dtype=object)
    out[:] = [v if v is None else same.setdefault(v, v)
              for v in (func(*values) for values in zip(*(c.tolist() for c in columns)))]
    return out


def _each_distinct(func, values):
    """``func`` of each value, computed once per distinct value (regions repeat)."""
    if not isinstance(values, np.ndarray):
        return func(values)
    return per_distinct(pd.Series(values, dtype=object), func).to_numpy()


def _birth_compatible(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal on the parts both know (yyyymm00 and yyyy0000 carry partial dates)."""
    same_year = a // 10000 == b // 10000
    month_a, month_b = a // 100 % 100, b // 100 % 100
    day_a, day_b = a % 100, b % 100
    month_ok = (month_a == 0) | (month_b == 0) | (month_a == month_b)
    day_ok = (day_a == 0) | (day_b == 0) | (day_a == day_b)
    return same_year & month_ok & day_ok


# --------------------------------------------------------------------------- compact columns
# A text column of few distinct values (source names, genders, relations, townships and
# villages in every form, ID statuses, birthdate qualities, tiers, clerks, x_ extras) holds
# an 8-byte pointer per record: ~15 MB per column at 1.85M records, some 40 such columns. As
# a pandas category it holds a 1- or 2-byte code per record. Categories are sorted, so that
# sorting and grouping on the codes order the values as Python sorts the texts.
# The comparison and blocking keys made from a name or an ID number whose texts are their own
# (ARROW_TEXT: the given name, pinyin, fold and initials; the ID's first 17 characters and its
# birth part) hold a str object per distinct value and record besides the pointer; only the
# matchers and blocking read them. As Arrow strings (UTF-8 bytes and a 4-byte offset per
# record) they free ~30 MB at 184k records (100k persons). The name and ID columns themselves
# (name, name_raw, name_norm, name_key, id_number, id_norm: many values too) stay objects:
# they share one set of str objects (a standardiser keeps the input's own text where it does
# not change it), so one alone as Arrow frees only its pointers, and golden records, outputs
# and the store read them back as objects, made anew: measured at 1M persons with all of
# them as Arrow the run peak rose from 4.64 to 4.84 GB. Readers take an Arrow column through
# matchers.base.column() / column_at() / as_objects(): str objects, None where missing.
COMPACT_SAMPLE = 20_000  # rows looked at first: a column of names or IDs is left at once
COMPACT_SHARE = 20  # a column is compacted when it has at most 1/20 as many values as records
# Columns every stage reads as text (keys, joins), left as they are.
KEEP_TEXT = frozenset({"source", "record_id", "household_id"})
ARROW_TEXT = frozenset({"name_given", "name_pinyin", "name_fold", "given_pinyin",
                        "name_initials", "id_prefix17", "id_birth_part"})


def compact_records(records: pd.DataFrame) -> pd.DataFrame:
    """The records with their text columns of few distinct values as pandas categories and
    the ARROW_TEXT columns of many as Arrow strings (see above), as a new frame: the old one's
    columns (one block of pointers for all the text columns after a concat) are freed once the
    caller lets it go."""
    out = {}
    for col in records.columns:
        values = records[col]
        out[col] = _compact(values) if col not in KEEP_TEXT else None
        if out[col] is None and col in ARROW_TEXT:
            out[col] = _arrow_text(values)
        if out[col] is None:
            out[col] = values.to_numpy(copy=True)  # a copy: a view would keep the old block
    frame = pd.DataFrame(out, index=records.index, copy=False)
    frame.attrs = dict(records.attrs)
    return frame


def _compact(values: pd.Series) -> pd.Categorical | None:
    """The column as a category with sorted categories, or None when it is not a text column
    of few distinct values."""
    if values.dtype != object or len(values) < COMPACT_SHARE:
        return None
    head = values.iloc[:COMPACT_SAMPLE].to_numpy()
    if len(pd.unique(head)) * COMPACT_SHARE > len(head):
        return None
    codes, uniques = pd.factorize(values.to_numpy(), sort=True)
    if (len(uniques) * COMPACT_SHARE > len(values)
            or pd.api.types.infer_dtype(uniques, skipna=False) != "string"):
        return None
    return pd.Categorical.from_codes(codes, pd.Index(uniques, dtype=object))


def _arrow_text(values: pd.Series) -> pd.api.extensions.ExtensionArray | None:
    """The column as Arrow strings, or None when it holds anything but str and None (NaN,
    numbers, bytes: they would not come back as they were)."""
    cells = values.to_numpy()
    if values.dtype != object or pd.api.types.infer_dtype(cells, skipna=True) != "string":
        return None
    try:  # not from_pandas: a NaN or pd.NA is refused rather than made missing
        return pd.arrays.ArrowExtensionArray(pa.array(cells, type=pa.string()))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def arrow_text(values: pd.Series) -> pa.Array:
    """An Arrow text column of the records (see compact_records) as one Arrow array, for
    reading it in Arrow (codes, distinct values) without making a str object per record."""
    text = pa.array(values.array)
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


# --------------------------------------------------------------------------- usable rows
# What a row must hold to be linked at all: what the linkage can match on. Measured on a
# synthetic world of 2,000 persons, blanking the name and putting 'abc' in the ID cell of 80
# insurance rows and keeping them (linked to their true person / left alone / linked wrong):
#   whole birthdate, household number (家庭编号) and village       78 /  2 / 0
#   whole birthdate and village, household number blanked          77 /  3 / 0
#   whole birthdate and village, urban roster (no household)       72 /  8 / 0
#   year and month only, with the household number                73 /  6 / 1
#   birth year only, with the household number                    73 /  7 / 0
#   year and month only, village but no household number           0 / 80 / 0
#   birth year only, village but no household number (NCMS)        0 / 80 / 0
#   birth year only, urban roster                                   0 / 80 / 0
# The household step places a member of a matched household by birth year, gender and
# relation; the village_birthdate blocking rule pairs a whole birthdate within the village;
# nothing else pairs a row without a name or ID, so a bare year (or a date with no place)
# only ever makes an entity of its own that holds nothing the office can use. So a row is
# usable when it has (linkable()):
#   - a name: its standardised key (name_key) holds a letter (Han or any script) and is not a
#     placeholder such as 不详 or 无名 (NAME_PLACEHOLDERS); or
#   - an ID number the resident_id comparison can use: an 18-character id_norm (valid,
#     upgraded from 15 digits, or flawed in its check character, date or region: two records
#     with the same flawed number are still evidence, and the check character is repaired),
#     or an Excel-damaged value whose surviving prefix keeps ID_PARTIAL_DIGITS digits; or
#   - a birthdate (year at least) and a household number, or a whole birthdate (to the day)
#     and a village.
# ingest applies the rule to every row read (linkage.jobs.ingest), so `linkage run`, `linkage
# add` and every other reader of the job's records reject the same rows.
ID_PARTIAL_DIGITS = 6  # resident_id_comparison's default min_partial
NAME_PLACEHOLDERS = frozenset({
    "不详", "无", "无名", "无名氏", "未知", "待补", "待定", "不明", "空", "暂无", "缺", "没有",
    "null", "none", "nan", "na", "x", "xx", "xxx",
})
# The fields the rule reads, and the birthdate qualities known to the day.
LINK_FIELDS = ("name", "id_number", "birth_date", "household_id", "village")
WHOLE_DATES = ("exact", "jan1")
_CLEAN_ID = re.compile(r"[0-9]{17}[0-9Xx]|[0-9]{15}")


def linkable(values: dict[str, object]) -> bool:
    """Whether a row holds something to link on (the rule above). ``values``: the row's raw
    cells of the LINK_FIELDS its source maps (a field the source does not map is absent)."""
    if "id_number" in values and usable_id(values["id_number"]):
        return True
    if "name" in values and usable_name(values["name"]):
        return True
    if "birth_date" not in values:
        return False
    birth = VALUE_PARSERS["birth_date"](values["birth_date"])
    if not birth["birth_date"]:
        return False
    return (_filled(values.get("household_id"))
            or (birth["birth_quality"] in WHOLE_DATES and _filled(values.get("village"))))


def _filled(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def usable_name(value: object) -> bool:
    """Whether a name cell gives a name to link on (see the rule above)."""
    key = VALUE_PARSERS["name"](value)["name_key"]
    return (bool(key) and key.lower() not in NAME_PLACEHOLDERS
            and any(c.isalpha() for c in key))


def usable_id(value: object) -> bool:
    """Whether an ID cell gives a number the resident_id comparison can use (see above).

    A cell of 18 (or 15) plain digits always does unless all its digits are one repeated
    placeholder digit; that case is decided without parsing (the common one, a million times
    per run), anything else by the ID parser.
    """
    if type(value) is str:
        text = value.strip()
        if _CLEAN_ID.fullmatch(text) and text != text[0] * len(text):
            return True
    parsed = VALUE_PARSERS["id_number"](value)
    partial = parsed["id_partial"]
    return parsed["id_norm"] is not None or (
        isinstance(partial, str) and len(partial) >= ID_PARTIAL_DIGITS)
