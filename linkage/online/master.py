"""The master roster in memory, for checking new enrolments one at a time (linkage/check.py).

A check must answer in milliseconds, so the latest complete run of the job is loaded once: its
entities (entity_members), golden records and trained model from the store, and the job's
records read and standardised exactly as a run reads them (``additions.job_files``: the
configured sources and the batches `linkage add` kept). Only what a check needs stays in memory:

* the standardised columns the comparisons, blocking rules and term frequencies read, one row
  per linked record (about 3 records per person: registry, NCMS, urban);
* per blocking rule, a sorted array of 64-bit key hashes with each key's record positions
  (12 bytes per record and rule instead of a dict of Python tuples);
* each record's entity as an integer code, and each entity's members in CSR form;
* the golden records without their lineage;
* for the household evidence (linkage/online/check.py): the records of each household as one
  more key index (hash of source and household id; 4 bytes a record and 24 a household), and
  each record's relation to the head as a one- or two-byte code beside its few categories
  (not an 8-byte reference to a string per record). Only when the job links households.

Hash collisions only add candidates, which are then scored like any other: they cannot change
a weight. A record added to an input after the run has no entity yet and is left out.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from linkage.core import model, name_evidence, standardise
from linkage.core.compare import build_comparisons
from linkage.core.config import BlockingRule, JobConfig
from linkage.store import Store
from matchers import birthdate, hanzi
from matchers.base import Columns, Comparison

# Golden columns a check answers with (lineage is long and the members give it anyway).
GOLDEN_FIELDS = (
    "status", "status_reason", "name", "id_number", "gender", "birth_date", "ethnicity",
    "township", "village", "household_id", "n_records", "n_enrolments", "schemes",
    "duplicate_enrolment", "id_repaired", "deceased", "needs_review",
)
_HASH_MIX = np.uint64(0x9E3779B97F4A7C15)


class NoMaster(RuntimeError):
    """The job has no complete run in the store: there is nothing to check against yet."""


@dataclass
class BlockIndex:
    """One blocking rule: key hash -> the master records holding that key."""

    rule: BlockingRule
    hashes: np.ndarray  # sorted distinct key hashes (uint64)
    starts: np.ndarray  # int64 offset of each key's records in ``positions``
    counts: np.ndarray  # int64 records per key
    positions: np.ndarray  # int32 record positions, grouped by key

    @classmethod
    def build(cls, rule: BlockingRule, table: dict[str, np.ndarray]) -> BlockIndex:
        hashes, valid = key_hashes(table, rule.keys)
        rows = np.flatnonzero(valid)
        order = rows[np.argsort(hashes[rows], kind="stable")]
        sorted_hashes = hashes[order]
        first = np.flatnonzero(np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]]) \
            if order.size else np.empty(0, dtype=np.int64)
        counts = np.diff(np.r_[first, order.size]).astype(np.int64)
        return cls(rule, sorted_hashes[first], first.astype(np.int64), counts,
                   order.astype(np.int32))

    def lookup(self, hashes: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query index, record position) for every master record sharing a query's key.

        A block the query would grow beyond the rule's ``max_block_size`` is skipped, as the
        batch run skips it: its pairs are left to the other rules.
        """
        if self.hashes.size == 0 or hashes.size == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32)
        slot = np.searchsorted(self.hashes, hashes)
        slot = np.minimum(slot, self.hashes.size - 1)
        hit = valid & (self.hashes[slot] == hashes)
        hit &= self.counts[slot] + 1 <= self.rule.max_block_size
        queries = np.flatnonzero(hit)
        if queries.size == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32)
        counts = self.counts[slot[queries]]
        starts = self.starts[slot[queries]]
        total = int(counts.sum())
        # Concatenated ranges starts[i] .. starts[i] + counts[i], without a Python loop.
        offsets = np.repeat(starts - np.r_[0, np.cumsum(counts)[:-1]], counts)
        return np.repeat(queries, counts), self.positions[offsets + np.arange(total)]

    @property
    def nbytes(self) -> int:
        return self.hashes.nbytes + self.starts.nbytes + self.counts.nbytes + self.positions.nbytes


def key_hashes(frame, keys: tuple[str, ...], memo: dict | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hash of each row's blocking key and whether the key is usable.

    Blank follows ``blocking.block_keys``: 0 in an integer column, None or '' in any other.
    Integers are hashed as int64 whatever their width, so a query built from Python ints
    meets the master's int32 columns. ``frame`` maps column names to numpy arrays (a dict, or
    a DataFrame). ``memo`` keeps each column's hashes across calls, for rules sharing a key.
    """
    n = len(frame[keys[0]])
    combined = np.zeros(n, dtype=np.uint64)
    valid = np.ones(n, dtype=bool)
    for key in keys:
        if memo is not None and key in memo:
            h, usable = memo[key]
        else:
            h, usable = _column_hash(np.asarray(frame[key]))
            if memo is not None:
                memo[key] = h, usable
        valid &= usable
        combined = (combined ^ h) * _HASH_MIX + np.uint64(len(keys))
    return combined, valid


def _column_hash(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hash, usable) of one key column's values."""
    if np.issubdtype(col.dtype, np.integer):
        values = col.astype(np.int64)
        return pd.util.hash_array(values), values != 0
    values = col.astype(object)
    blank = pd.isna(values) | (values == "")
    text = values.copy()
    text[blank] = ""
    return pd.util.hash_array(text.astype(str).astype(object), categorize=len(col) > 64), ~blank


@dataclass
class Master:
    """Everything a check reads, built once from the store and the job's sources."""

    config: JobConfig
    run_id: str
    comparisons: list[Comparison]
    model: model.FSModel
    tf_tables: dict[str, pd.Series]
    table: dict[str, np.ndarray]  # the standardised columns checks read, positions 0..n-1
    sources: tuple[str, ...]  # source names, indexed by source_code
    source_code: np.ndarray  # int16 per record
    record_id: np.ndarray  # object per record
    household: np.ndarray  # object per record: raw household id or None
    entity: np.ndarray  # int32 entity code per record
    entity_ids: np.ndarray  # object: entity id per code
    member_starts: np.ndarray  # int64: members of entity e are member_order[starts[e]:starts[e+1]]
    member_order: np.ndarray  # int32 record positions grouped by entity
    golden: pd.DataFrame  # GOLDEN_FIELDS, one row per entity code
    blocks: list[BlockIndex]
    fields: set[str]  # raw fields the job maps (what a query may carry)
    stats: dict = field(default_factory=dict)
    names: name_evidence.NameModel | None = None  # milk names and cohorts, as the run's
    name_evidence: name_evidence.NameEvidence | None = None  # per master record
    households: BlockIndex | None = None  # (source, household id) -> its records
    relation: np.ndarray | None = None  # int8/int16 code of relation_std per record, -1 none
    relations: np.ndarray | None = None  # object: relation_std per code

    def __post_init__(self) -> None:
        # The golden columns as arrays (categories as codes + categories), for golden_row.
        self._golden_columns = {
            name: ((values.cat.codes.to_numpy(), values.cat.categories.to_numpy(dtype=object))
                   if isinstance(values.dtype, pd.CategoricalDtype) else (values.to_numpy(), None))
            for name, values in self.golden.items()}

    @property
    def roles(self) -> dict[str, str]:
        return {s.name: s.role for s in self.config.sources}

    @property
    def schemes(self) -> dict[str, str]:
        return {s.name: s.scheme or s.name for s in self.config.sources}

    def take(self, columns: list[str], positions: np.ndarray) -> Columns:
        """Some columns at some record positions (what a comparison reads).

        Columns live as separate arrays: taking a few of them for a few dozen candidates is
        a fraction of what a take on a wide DataFrame costs, and that is most of a check.
        """
        return Columns({c: self.table[c][positions] for c in columns})

    def golden_row(self, entity_code: int) -> dict:
        """One entity's golden record, read column by column (a row of a wide frame with
        categorical columns costs a check more than the rest of its candidate)."""
        row = {}
        for name, (values, categories) in self._golden_columns.items():
            value = values[entity_code]
            if categories is not None:
                value = categories[value] if value >= 0 else None
            row[name] = plain_value(value)
        return row

    def members(self, entity_code: int) -> np.ndarray:
        starts = self.member_starts
        return self.member_order[starts[entity_code]:starts[entity_code + 1]]

    def household_members(self, source_code: np.ndarray, household: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
        """(key index, record position) of the records of each (source code, household id)
        key; a household id blank or unknown to the master has none."""
        if self.households is None or not len(source_code):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32)
        k, pos = self.households.lookup(*key_hashes(_household_keys(source_code, household),
                                                    HOUSEHOLD_KEYS))
        # A hash collision only adds records: those of another household are dropped here.
        same = ((self.source_code[pos] == np.asarray(source_code)[k])
                & (self.household[pos] == np.asarray(household, dtype=object)[k]))
        return k[same], pos[same]

    def memory_bytes(self) -> int:
        """Deep size of what the master holds (strings counted once per reference)."""
        frames = (sum(pd.Series(a).memory_usage(deep=True) for a in self.table.values())
                  + self.golden.memory_usage(deep=True).sum())
        arrays = (pd.Series(self.record_id).memory_usage(deep=True)
                  + pd.Series(self.household).memory_usage(deep=True)
                  + pd.Series(self.entity_ids).memory_usage(deep=True)
                  + self.entity.nbytes + self.source_code.nbytes + self.member_order.nbytes
                  + self.member_starts.nbytes + sum(b.nbytes for b in self.blocks)
                  + (self.households.nbytes if self.households is not None else 0)
                  + (self.relation.nbytes if self.relation is not None else 0))
        tf = sum(t.memory_usage(deep=True) for t in self.tf_tables.values())
        return int(frames + arrays + tf)


HOUSEHOLD_KEYS = ("source_key", "household")


def _household_keys(source_code: np.ndarray, household: np.ndarray) -> dict[str, np.ndarray]:
    """The household index's key columns: source code + 1 (an integer key of 0 is blank) and
    the household id (None or '' blank)."""
    return {"source_key": np.asarray(source_code, dtype=np.int64) + 1,
            "household": np.asarray(household, dtype=object)}


def household_index(source_code: np.ndarray, household: np.ndarray) -> BlockIndex:
    """Each household's records, as a blocking rule's index over (source, household id): a
    sorted hash per household and a position per record, no Python object per household."""
    return BlockIndex.build(BlockingRule("household", HOUSEHOLD_KEYS, 10**9),
                            _household_keys(source_code, household))


def plain_value(value):
    """numpy scalars to Python ones, NaN to None (what JSON can carry)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def needed_columns(config: JobConfig, comparisons: list[Comparison]) -> list[str]:
    """Standardised columns a check reads: compared, blocked on, or term-frequency weighted."""
    cols = {c for comp in comparisons for c in comp.columns}
    cols |= {k for rule in config.blocking for k in rule.keys}
    cols |= {comp.tf_column for comp in comparisons if comp.tf_column}
    if any(comp.name == "name" for comp in comparisons):
        cols |= {"name_key", "name_given", "name_surname", "birth_year"}  # name evidence
    return sorted(cols)


def latest_run(store: Store, job: str) -> str:
    run_id = store.last_complete_run(job)
    if run_id is None:
        raise NoMaster(f"job {job!r} has no complete run in the store; run `linkage run` first")
    return run_id


def load_master(config: JobConfig, store: Store | None = None, run_id: str | None = None,
                progress: bool = False) -> Master:
    """Build the in-memory master from the job's latest complete run (or ``run_id``)."""
    from linkage.jobs.inputs import job_files

    started = time.perf_counter()
    timings: dict[str, float] = {}
    store = store or Store(config.store)
    run_id = run_id or latest_run(store, config.job)
    stored_model = store.run_model(run_id)
    if not stored_model:
        raise NoMaster(f"run {run_id} has no stored model")
    fs = model.FSModel.from_dict(stored_model)
    comparisons = build_comparisons(config.comparisons)
    fs.check_matches(comparisons)
    fields = {f for s in config.sources for f in s.fields}
    columns = needed_columns(config, comparisons)

    # The job's records as every run reads them (kept `add` batches too), file by file, so only
    # one file's full standardised frame exists at a time.
    t = time.perf_counter()
    parts = []
    for part in job_files(config, store, progress):
        raw = part.records
        for f in fields - set(raw.columns):
            raw[f] = None
        std = standardise.standardise_records(raw[["source", "record_id", *sorted(fields)]], fields)
        keep = std[["source", "record_id", *columns]].copy()
        keep["household_raw"] = std["household_id"] if "household_id" in std else None
        keep["relation_std"] = std["relation_std"] if "relation_std" in std else None
        parts.append(keep)
        del raw, std
    records = pd.concat(parts, ignore_index=True)
    del parts
    timings["read_standardise"] = time.perf_counter() - t

    t = time.perf_counter()
    members = store.members(run_id)
    records["record_id"] = records["record_id"].astype(str)
    joined = records.merge(members, on=["source", "record_id"], how="inner", sort=False)
    stats = {"records_read": len(records), "members": len(members),
             "records_without_entity": len(records) - len(joined),
             "members_without_record": len(members) - len(joined)}
    del records, members
    entity_code, entity_ids = pd.factorize(joined["entity_id"])
    entity_code = entity_code.astype(np.int32)
    order = np.argsort(entity_code, kind="stable").astype(np.int32)
    starts = np.searchsorted(entity_code[order], np.arange(len(entity_ids) + 1)).astype(np.int64)
    source_code = pd.Categorical(joined["source"],
                                 categories=list(names_of_sources(config))).codes.astype(np.int16)
    household = joined["household_raw"].to_numpy(dtype=object)
    record_id = joined["record_id"].to_numpy(dtype=object)
    table = {c: joined[c].to_numpy() for c in columns}
    relation = pd.Categorical(joined["relation_std"])
    del joined
    timings["entities"] = time.perf_counter() - t

    t = time.perf_counter()
    tf_tables = {c.tf_column: model.term_frequencies(
                     pd.DataFrame({c.tf_column: table[c.tf_column]}), c.tf_column)
                 for c in comparisons if c.tf_column and c.tf_column in table}
    blocks = [BlockIndex.build(rule, table) for rule in config.blocking]
    households = (household_index(source_code, household) if config.household.enabled
                  else None)

    _warm_up(tf_tables)
    names, evidence = _name_evidence(config, fs, table, names_of_sources(config), source_code,
                                     household, record_id)
    timings["index"] = time.perf_counter() - t

    t = time.perf_counter()
    gold = _golden_rows(store, run_id, pd.Index(entity_ids))
    timings["golden"] = time.perf_counter() - t

    stats.update({"records": len(record_id), "entities": len(entity_ids),
                  "timings": {k: round(v, 2) for k, v in timings.items()},
                  "build_seconds": round(time.perf_counter() - started, 2)})
    return Master(config, run_id, comparisons, fs, tf_tables, table, names_of_sources(config),
                  source_code, record_id, household, entity_code,
                  np.asarray(entity_ids, dtype=object), starts, order, gold, blocks, fields,
                  stats, names, evidence, households, relation.codes,
                  relation.categories.to_numpy(dtype=object))


def names_of_sources(config: JobConfig) -> tuple[str, ...]:
    return tuple(s.name for s in config.sources)


def _name_evidence(config, fs, table, sources, source_code, household, record_id):
    """The name model the batch run learns (:class:`linkage.core.name_evidence.NameModel`),
    learned from the same records, and each master record's evidence."""
    k, _ = name_evidence.name_levels(fs)
    if k is None:
        return None, None
    roles = {s.name: s.role for s in config.sources}
    source = np.asarray(sources, dtype=object)[source_code]
    frame = pd.DataFrame({c: table[c] for c in ("name_key", "name_given", "name_surname",
                                                "birth_year") if c in table})
    frame["source"], frame["record_id"], frame["household_id"] = source, record_id, household
    authority = np.array([roles[s] == "authority" for s in sources], dtype=bool)[source_code]
    hh = config.household
    tf_column = fs.comparisons[k].tf_column
    names = name_evidence.NameModel.learn(frame, hh.milk_name_min_households, hh.milk_name_ratio,
                                          tuple(hh.milk_names), authority, tf_column)
    return names, names.evidence(table, len(record_id), tf_column)


def _warm_up(tf_tables: dict[str, pd.Series]) -> None:
    """Build now what the matchers otherwise build on first use, mid-check: each term-frequency
    table's hash index (~0.1 s at 1M names), the lunar calendar table and the four-corner codes."""
    for table in tf_tables.values():
        table.index.get_indexer(table.index[:1])
    birthdate.prepare_lunar_table()
    hanzi.four_corner("己")


def _golden_rows(store: Store, run_id: str, entity_ids: pd.Index) -> pd.DataFrame:
    """The run's golden records (GOLDEN_FIELDS) in entity-code order."""
    rows = list(store.golden_records(run_id))
    if not rows:
        empty = pd.DataFrame(columns=["entity_id", *GOLDEN_FIELDS]).set_index("entity_id")
        return empty.reindex(entity_ids)
    frame = pd.read_json(io.StringIO("\n".join(rows)), lines=True, dtype=False,
                         convert_dates=False)
    del rows
    frame = frame[["entity_id", *[c for c in GOLDEN_FIELDS if c in frame]]]
    frame["entity_id"] = frame["entity_id"].astype(str)
    frame = frame.set_index("entity_id").reindex(entity_ids)
    for col in frame.columns:  # few distinct values: categories cost a byte or two a row
        if frame[col].dtype == object and frame[col].nunique() < len(frame) // 20:
            frame[col] = frame[col].astype("category")
    return frame.reset_index(drop=True)
