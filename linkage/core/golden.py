"""Golden records: one row per entity, each field from the best source that has a valid value.

Survivorship is by source precedence (the police registry first) and validity (a valid ID
beats a damaged one whatever its source). Lineage lists every source record behind the entity,
so the card office and auditors can trace each field back to a clerk's entry.

Computed on integer codes: the records are sorted once (entity, precedence, record key) and
every per-entity value is read off the runs of equal entities (first valid value, counts, any),
so no string column is hashed or sorted more than once and no Python code runs per record.
Grouping by the entity id string in pandas sorted the million ids again at every groupby, which
was most of the stage at prefecture scale.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matchers.base import as_objects

GOLDEN_COLUMNS = [
    "entity_id", "status", "status_reason", "name", "id_number", "gender", "birth_date",
    "ethnicity", "township", "village", "household_id", "n_records", "n_enrolments", "schemes",
    "duplicate_enrolment", "id_repaired", "deceased", "needs_review", "lineage",
]
DECEASED_WORDS = ("死亡", "已故", "deceased", "dead")


def golden_records(
    records: pd.DataFrame,
    entity_ids: np.ndarray,
    precedence: tuple[str, ...],
    roles: dict[str, str],
    schemes: dict[str, str],
    contested: np.ndarray | None = None,
) -> pd.DataFrame:
    """Survivorship per entity; ``contested`` marks records in pairs clustering refused.

    Rows are ordered by entity id; within an entity the records are ranked by source
    precedence, then by ``source:record_id``, and each field takes its first valid value.
    """
    n = len(records)
    entity_ids = np.asarray(entity_ids, dtype=object)
    keep = np.flatnonzero(pd.notna(entity_ids))  # a record in no entity makes no golden row
    src_code, sources = pd.factorize(as_objects(records["source"]))
    sources = np.asarray(sources, dtype=object)
    rank_of = np.array([_rank(s, precedence) for s in sources] + [len(precedence)], np.int64)
    role_of = np.array([roles.get(s) for s in sources] + [None], dtype=object)
    is_authority = (role_of == "authority")[src_code]
    is_insurance = (role_of == "insurance")[src_code]
    key = _record_keys(records)
    contested = np.zeros(n, dtype=bool) if contested is None else np.asarray(contested, bool)

    # One sort of the records: by entity id, precedence rank, then record key (stable).
    entity_rank = _dense_rank(entity_ids[keep])
    perm = _sort_order(entity_rank, rank_of[src_code][keep], key.take(pa.array(keep)))
    order, e_sorted = keep[perm], entity_rank[perm]
    sorted_entity = entity_ids[order]
    starts = np.flatnonzero(np.r_[True, e_sorted[1:] != e_sorted[:-1]]) if len(order) else \
        np.zeros(0, dtype=np.int64)
    n_groups = len(starts)
    group = np.repeat(np.arange(n_groups), np.diff(np.r_[starts, len(order)]))

    def first(values: np.ndarray) -> np.ndarray:
        """Per entity the first non-missing value in the sorted order (None if none): the
        entity's first record's, looked further only for the entities where that is missing."""
        values = values[order]
        out = values[starts]
        missing = pd.isna(out)
        if missing.any():
            rows = missing[group]
            later = _first_valid(values[rows], group[rows], n_groups)
            out[missing] = later[missing]
        return out

    status = _col(records, "id_status")
    valid_id = pd.Series(status, dtype=object).isin(["valid", "upgraded"]).to_numpy()
    id_valid = np.where(valid_id, _col(records, "id_norm"), None)
    birth = _col(records, "birth_date", 0).astype(np.int64)
    quality = _col(records, "birth_quality")
    exact = pd.Series(quality, dtype=object).isin(["exact", "from_id"]).to_numpy() & (birth > 0)
    birth_text = _format_date(birth)
    household = _col(records, "household_id")

    gold_id = first(id_valid)
    out = {"entity_id": sorted_entity[starts]}
    out["name"] = first(_col(records, "name_norm"))
    out["id_number"] = gold_id
    out["gender"] = first(_col(records, "gender"))
    out["birth_date"] = _fill(first(np.where(exact, birth_text, None)),
                              first(np.where(birth > 0, birth_text, None)))
    for col in ("ethnicity", "township", "village"):
        out[col] = first(_col(records, col))
    out["household_id"] = _fill(first(np.where(is_authority, household, None)),
                                first(household))
    counts = np.diff(np.r_[starts, len(order)]).astype(np.int64)
    out["n_records"] = counts
    insurance = is_insurance[order]
    out["n_enrolments"] = np.bincount(group, weights=insurance, minlength=n_groups).astype(
        np.int64)
    scheme_of = np.array([schemes.get(s) or s for s in sources] + [None], dtype=object)
    out["schemes"] = _scheme_sets(group[insurance], src_code[order][insurance], scheme_of,
                                  n_groups)
    has_authority = _any(group, is_authority[order], n_groups)
    contested_any = _any(group, contested[order], n_groups)

    out["duplicate_enrolment"] = out["n_enrolments"] >= 2
    # an insurance record whose valid ID is not the entity's (or that has none) was repaired
    golden_id = gold_id[group]
    differs = insurance & (id_valid[order] != golden_id) & pd.notna(golden_id)
    out["id_repaired"] = _any(group, differs, n_groups) & has_authority
    registry_status = _col(records, "status")[order]
    dead = is_authority[order] & _mentions_death(registry_status)
    out["deceased"] = _any(group, dead, n_groups)
    out["needs_review"] = contested_any

    status_col = np.where(has_authority, "VERIFIED", "UNVERIFIED").astype(object)
    reason = np.where(has_authority, "", "no police registry record").astype(object)
    two_ids = _distinct_count(group, id_valid[order], is_authority[order], n_groups) >= 2
    status_col[two_ids] = "CONFLICT"
    reason[two_ids] = "registry records with different ID numbers merged by a reviewer"
    claimed = contested_any & ~has_authority
    status_col[claimed] = "CONFLICT"
    reason[claimed] = "could belong to more than one registry person: needs review"
    out["status"] = status_col
    out["status_reason"] = reason
    out["lineage"] = _join_runs(key.take(pa.array(order)), starts, ";")
    return pd.DataFrame({c: out[c] for c in GOLDEN_COLUMNS}, copy=False)


def _rank(source, precedence: tuple[str, ...]) -> int:
    """The source's place in the precedence; sources it does not name come last."""
    return precedence.index(source) if source in precedence else len(precedence)


def _record_keys(records: pd.DataFrame) -> pa.Array:
    """'police:GA100000001' per record, as Arrow text: sorted and joined in Arrow, never made
    into a million Python strings."""
    parts = []
    for col in ("source", "record_id"):
        values = records[col]
        text = pd.api.types.infer_dtype(values, skipna=False) == "string"
        parts.append(pa.array(values.to_numpy(dtype=object) if text
                              else values.astype(str).to_numpy(dtype=object), pa.large_string()))
    return pc.binary_join_element_wise(parts[0], parts[1], pa.scalar(":", pa.large_string()))


def _dense_rank(values: np.ndarray) -> np.ndarray:
    """0, 1, 2 ... in the sort order of the values (equal values, equal codes).

    Text is ranked by Arrow (UTF-8 byte order is code-point order, Python's), which sorts a
    million ids in C++ rather than by Python comparisons as pandas and numpy do for objects.
    """
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        try:
            text = pa.array(values, pa.large_string())
        except (pa.ArrowException, UnicodeError):  # e.g. a lone surrogate: pandas' sort
            text = None
        if text is not None:
            return pc.rank(text, tiebreaker="dense").to_numpy().astype(np.int64) - 1
    codes, _ = pd.factorize(values, sort=True)
    return codes.astype(np.int64)


def _sort_order(entity_rank: np.ndarray, rank: np.ndarray, key: pa.Array) -> np.ndarray:
    """Positions in the stable order of (entity, precedence rank, record key)."""
    table = pa.table({"e": entity_rank, "r": rank, "k": key})
    return pc.sort_indices(table, sort_keys=[("e", "ascending"), ("r", "ascending"),
                                             ("k", "ascending")]).to_numpy()


def _first_valid(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group the first value that is not missing (groupby().first()), None where none is."""
    out = np.full(n_groups, None, dtype=object)
    at = np.flatnonzero(pd.notna(values))
    if len(at):
        g = group[at]
        head = np.r_[True, g[1:] != g[:-1]]
        out[g[head]] = values[at[head]]
    return out


def _fill(values: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``values`` with its missing cells taken from ``other``."""
    return np.where(pd.notna(values), values, other)


def _any(group: np.ndarray, flag: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(group[flag], minlength=n_groups) > 0


def _scheme_sets(group: np.ndarray, source: np.ndarray, scheme_of: np.ndarray,
                 n_groups: int) -> np.ndarray:
    """Per entity its distinct schemes in sorted order, '+'-joined ('' when not insured):
    each entity's schemes as a bit set, each set that occurs joined once."""
    names = sorted(set(scheme_of[:-1].tolist()) - {None})
    bit = {name: i for i, name in enumerate(names)}
    source_bit = np.array([1 << bit[s] if s is not None else 0 for s in scheme_of], np.int64)
    sets = np.zeros(n_groups, dtype=np.int64)
    np.bitwise_or.at(sets, group, source_bit[source])
    present, codes = np.unique(sets, return_inverse=True)
    labels = np.array(["+".join(name for i, name in enumerate(names) if s >> i & 1)
                       for s in present.tolist()], dtype=object)
    return labels[codes.reshape(-1)]


def _mentions_death(status: np.ndarray) -> np.ndarray:
    """Whether the registry status says the person died, looked up once per distinct status."""
    codes, uniques = pd.factorize(pd.Series(status, dtype=object).fillna("").astype(str))
    said = pd.Series(np.asarray(uniques, dtype=object), dtype=object).str.contains(
        "|".join(DECEASED_WORDS)).to_numpy(dtype=bool)
    return said[codes]


def _distinct_count(group: np.ndarray, values: np.ndarray, mask: np.ndarray,
                    n_groups: int) -> np.ndarray:
    """Per group the number of distinct non-missing values among the rows under ``mask``."""
    at = mask & pd.notna(values)
    codes, _ = pd.factorize(values[at])
    pairs = pd.unique(group[at].astype(np.int64) * (len(codes) + 1) + codes)
    return np.bincount(pairs // (len(codes) + 1), minlength=n_groups)


def _join_runs(values: pa.Array, starts: np.ndarray, sep: str) -> np.ndarray:
    """The values of each run (``starts``: where each begins) joined by ``sep``, one string per
    run: Arrow writes each value and its separator end to end in C++, and the runs are read
    back as slices of that buffer."""
    n = len(values)
    if not len(starts):
        return np.zeros(0, dtype=object)
    last = np.zeros(n, dtype=bool)
    last[np.r_[starts[1:], n] - 1] = True
    ends = pa.array(np.where(last, "", sep), pa.large_string())
    joined = pc.binary_join_element_wise(values, ends, pa.scalar("", pa.large_string()))
    _, offsets, data = joined.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64)[joined.offset:joined.offset + n + 1]
    run_bounds = np.r_[bounds[starts], bounds[-1]].astype(np.int64)
    runs = pa.LargeStringArray.from_buffers(len(starts), pa.py_buffer(run_bounds), data)
    return runs.to_numpy(zero_copy_only=False).astype(object)


def _col(records: pd.DataFrame, name: str, default=None) -> np.ndarray:
    if name in records:
        return (as_objects(records[name]) if default is None else records[name].to_numpy())
    return np.full(len(records), default, dtype=object if default is None else np.int64)


def _format_date(yyyymmdd: np.ndarray) -> np.ndarray:
    """'1965-03-12', '1965-03' or '1965' according to what the int carries (None for 0);
    formatted once per distinct date: a million people share some 30,000 birthdates."""
    codes, uniques = pd.factorize(yyyymmdd)
    b = pd.Series(np.asarray(uniques, dtype=np.int64))
    y, m, d = b // 10000, b // 100 % 100, b % 100
    full = y.astype(str).str.zfill(4)
    month = m.astype(str).str.zfill(2)
    day = d.astype(str).str.zfill(2)
    text = np.where(d > 0, full + "-" + month + "-" + day,
                    np.where(m > 0, full + "-" + month, full))
    return np.where(b > 0, text, None).astype(object)[codes]
