"""Check new enrolment records against the master: candidates, weights, and a verdict.

A check runs the batch pipeline's own steps on the new records against the in-memory master
(linkage/master.py): the same standardisers, the same blocking rules (and block-size limits),
the same Comparison objects and the run's Fellegi-Sunter model with the run's name
frequencies. So a pair's field weights are the ones a batch run would give it.

Household evidence: a record that names its household (``household_id``, the insurance
roster's household code) of a household the master knows from the run is placed in that
household, as a batch run would list it there. The household's records in the master lead, by
the run's links, to the registry household(s) its members were linked into, and the batch
run's household step (:func:`linkage.core.household.household_step`, with the run's household
prior) runs over those households: correspondence, the member pairs (so a registry member no
blocking rule pairs with the record is a candidate too), assignment within each household pair,
contradictions (only where that can change the answer: see below). The record's pairs with the
registry members get the household term the step gives them (``explanation["household"]``,
bits; the step's note, e.g. "assigned within ncms:…↔police:…, 3 of 3 members agree, +9.10
bits", is ``Candidate.household_note`` and ends the reason of a verdict about that candidate).
The household's record of the same enrolment (same record id) and any listing of the same
person (one member keyed twice, by the step's own rule) are left out of the household, so a
renewal does not compete with itself; its pairs with its own household's insurance records keep
their field weights (a re-collected member whose record changed must still find its enrolment).
A record without a household id, with one the master does not know, from the registry itself,
or checked against a run without household linkage gets no household term (0), as before; so
does a settled check (below).

The step is consulted only where it can change the record-level answer (verdict and entity):
it costs tens of milliseconds of fixed pandas work however small the households, and most
checks that name a household are a clear match already. What the step does to a record's
pairs (linkage/core/household.py): it lifts the pair it assigns within a household pair; it
lowers a member pair left unassigned while one side is assigned strongly to another member
(a housemate holding that registry person, a father and a son of one name), a pair to a
registry person outside the corresponding households while the record is assigned strongly
inside them (namesakes in two households), and, as a cannot-link, two members of one source
household and a parent's ID on a child (birth years a generation apart). So a check is
*settled* by its field weights alone, keeps that answer and pays nothing (household term 0, no
note) when

* exactly one entity reaches the match threshold on field weights;
* that entity holds a registry record in a registry household the run linked the record's own
  household's members into (so the record's place in that household pair is that person's);
* the entity holds no other insurance record of the record's own household, i.e. none that
  could be a housemate: only the household's record of the same enrolment (same record id) or
  the record itself plainly keyed again (by the step's own keyed-twice rule: the same valid ID
  and a close name, or the same relation, birthdate and a close name; never a parent and a
  child) is allowed;
* and no birthdate contradicts as the step reads contradictions: the record's own birth year
  is not a generation (``household.GENERATION_YEARS``) away from its ID's, nor from the birth
  year any record of the entity gives. A smaller disagreement (a day or a year mistyped, a
  lunar birthday) is field evidence only, already in the pair's field weight.

Every other check that names a known household goes through the step as described above:
``new_person`` and ``needs_review`` (a milk-name child, a child without ID), a match that may
be a housemate's, a match outside the household's registry households, a record a generation
away from its ID or its match. In a batch the step runs once over the unsettled records; a
settled record's listing stays in its household as the run had it. On the generated
20,000-person world (benchmarks/check_latency.py's NCMS records, which name their household)
about 99% of such checks are settled, with the same verdict and entity as through the step.

What a household code alone can reveal: the masked API scope hides household ids, but a verdict
lifted by household evidence still tells its caller that the registry household corresponding
to the household code sent holds a person of the gender and birth month sent (a milk name is
neutral evidence). The API's record rules and rate limits bound such probes as they bound
every other; a caller that wants none passes ``household_evidence=False``.

Verdict, from the best candidate entity (highest match probability):

* ``new_person``: no entity reaches the review threshold;
* ``needs_review``: the best entity lies between the review and match thresholds, or two or
  more entities reach the match threshold;
* ``duplicate_enrolment``: one entity reaches the match threshold, the record comes from an
  insurance source, and the entity already holds an insurance enrolment this record does not
  renew: one in another scheme (NCMS vs urban), or in the same scheme under another household;
* ``known_person``: one entity reaches the match threshold and the record would be its first
  enrolment (it has only registry records) or renews one it has (same source and record id,
  or same scheme and household). A record from a non-insurance source is never a duplicate
  enrolment.

Warnings, beside the verdict, each with a stable code and a short Chinese message for the
desk (``WARNINGS``): ``DECEASED`` (the entity the verdict names is deceased in the registry),
``ID_INVALID`` and ``ID_DAMAGED`` (the submitted number fails its check character, date or
region, or is not a number at all; Excel turned it into 1.50502E+17 or zeroed its last digits),
``ID_OTHER_PERSON`` (a registry record carries exactly this number under another name or
birthdate) and ``ALREADY_ENROLLED`` (a ``duplicate_enrolment``: where the person is enrolled).
The first two read the submitted value only; the others read the master, and the API gives
those to a masked caller only for a record with a name and a full ID, DECEASED and
ALREADY_ENROLLED only when a record of the named person carries that number
(``CheckResult.own_id``; linkage/web/api_guard.py). A record whose ID is invalid or damaged
and that has no full birthdate is ``needs_review`` rather than ``new_person``: an unreadable
number and a name alone cannot show that the registry does not know the person.

The records of one batch are also paired with each other (same blocking rules, comparisons and
model): each result lists the batch's other records that reach the review threshold with it.
A record the master does not know that matches an earlier record of its batch is
``needs_review`` instead of ``new_person``: the same new person sent twice is one enrolment
repeated, or two.

Single records take a per-record standardisation path (each field's standardiser once per
distinct value, cached, and the cross-field rules on one row) because the frame path spends
~20 ms in pandas overhead on a one-row frame; batches take ``standardise_records`` itself.
tests/web/test_check_api.py checks that both paths give the same columns.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from linkage.core import household, model, name_evidence
from linkage.core.blocking import link_type_keeps
from linkage.core.config import BlockingRule
from linkage.core.standardise import (
    CROSS_FIELD_INPUTS,
    PASS_THROUGH,
    STANDARDISERS,
    VALUE_PARSERS,
    cross_field,
    standardise_records,
)
from linkage.engines import local as scoring
from linkage.online.master import BlockIndex, Master, key_hashes, plain_value
from matchers import generic
from matchers.base import Columns

VERDICTS = ("new_person", "known_person", "duplicate_enrolment", "needs_review")
MAX_CANDIDATES = 5  # entities returned per record, best first
ROW_PATH_MAX = 16  # batches up to this size take the per-record standardisation path

# The verdict as the desk reads it, in Chinese (``message`` beside the machine-facing ``reason``).
# It depends on the verdict alone, so the masked scope may carry it as it is.
VERDICT_MESSAGES = {
    "new_person": "未找到此人，可按新参保人员办理",
    "known_person": "已核实为登记在册的人员",
    "duplicate_enrolment": "此人已参保，请勿重复参保（见参保记录）",
    "needs_review": "可能是已登记的人员，需人工审核后再办理",
}
# Warning codes (stable: desks and office systems key on them) and the desk's message, in the
# order an answer lists them.
WARNINGS = {
    "DECEASED": "户籍登记此人已死亡，请核实身份后再办理",
    "ID_INVALID": "身份证号无效，请对照身份证重新录入",
    "ID_DAMAGED": "身份证号已被 Excel 损坏（变成科学计数法或末几位变成 0），请对照身份证重新录入",
    "ID_OTHER_PERSON": "此身份证号在户籍中登记的是另一人（姓名或出生日期不同），请核对证件",
    "ALREADY_ENROLLED": "此人已参保，请勿重复参保",
}
# Warnings read off the submitted record alone (as quality.id_status is); the others read
# the master.
INPUT_WARNINGS = frozenset({"ID_INVALID", "ID_DAMAGED"})
INVALID_ID = {  # id_status -> what is wrong with the number, for the desk
    "bad_check": "身份证号校验位不符（可能录错一位），请对照身份证重新录入",
    "bad_date": "身份证号中的出生日期不存在，请对照身份证重新录入",
    "bad_region": "身份证号的地区码不存在，请对照身份证重新录入",
    "malformed": "身份证号格式不对（应为 18 位或 15 位），请对照身份证重新录入",
}
DAMAGED_ID = frozenset({"excel_damaged"})
# Birthdate qualities that, beside a name, settle new_person when the ID cannot.
SETTLING_BIRTH = frozenset({"exact"})
# Query columns the household evidence reads besides the master's (linkage/core/household.py).
QUERY_HOUSEHOLD = ("household_id", "relation_std")
# Columns the household step reads, where the master has them.
HOUSEHOLD_COLUMNS = ("birth_year", "birth_quality", "birth_date", "id_norm")
# Trailing birthdate digits a quality leaves unknown (jan1: 1 January is a placeholder).
_BIRTH_UNKNOWN_DIGITS = {"exact": 0, "jan1": 4, "year_month": 2, "year": 4}


@dataclass
class Candidate:
    entity_id: str
    probability: float
    weight: float
    band: str  # match / review / non_match by the job's thresholds
    record: tuple[str, str]  # the entity's member record that matched best (source, record id)
    explanation: dict  # per comparison {level, weight}, plus household and prior
    golden: dict  # the entity's golden record (unmasked: the API masks by scope)
    enrolments: list[dict] = field(default_factory=list)  # its insurance records
    household_note: str = ""  # why the household term is what it is ("" where it is 0)


@dataclass
class CheckResult:
    verdict: str
    reason: str
    entity_id: str | None  # the entity the record belongs to, when the verdict names one
    candidates: list[Candidate]
    quality: dict  # what standardising found: id_status, birth_quality
    # Other records of the same batch that may be this person: {index, probability, band}.
    batch_matches: list[dict] = field(default_factory=list)
    # {code, message, detail} by WARNINGS' order; unmasked (the API masks by scope).
    warnings: list[dict] = field(default_factory=list)
    # Whether a record of the entity the verdict names carries exactly the submitted ID number
    # (the API's masked scope gives that entity's warnings only then).
    own_id: bool = False


# --- standardising ------------------------------------------------------------------------

@lru_cache(maxsize=262_144)
def _field_columns(name: str, value: str | None) -> tuple[tuple[str, object], ...]:
    """The standardised columns one raw value of one field gives, by that field's value parser
    (the one its vectorised standardiser agrees with). Cached: names, dates and villages repeat
    across enrolments."""
    if name in VALUE_PARSERS:
        return tuple((c, plain_value(v)) for c, v in VALUE_PARSERS[name](value).items())
    if name in PASS_THROUGH:
        return ((name, (value.strip() or None) if isinstance(value, str) else value),)
    return ((f"{name}_std", generic.standardise_text(pd.Series([value], dtype=object)).iloc[0]),)


def standardise_row(record: dict, fields: set[str], needed: set[str]) -> dict:
    """One record's standardised columns, as ``standardise_records`` gives them for one row."""
    row = dict(record)
    for name in sorted(fields):
        if name in STANDARDISERS or name in PASS_THROUGH or f"{name}_std" in needed:
            row.update(_field_columns(name, record.get(name)))
    row.update(cross_field({c: row[c] for c in CROSS_FIELD_INPUTS if c in row}))
    return row


def standardise_queries(master: Master, records: list[dict]) -> dict[str, np.ndarray]:
    """The records' standardised columns the master's checks read, plus id_status and
    birth_quality, as arrays of the master's own dtypes."""
    columns = list(master.table) + [c for c in ("id_status", "birth_quality", *QUERY_HOUSEHOLD)
                                    if c not in master.table]
    if len(records) <= ROW_PATH_MAX:
        rows = [standardise_row(r, master.fields, set(master.table)) for r in records]
        values = {c: [row.get(c) for row in rows] for c in columns}
    else:
        frame = pd.DataFrame({f: [r.get(f) for r in records] for f in sorted(master.fields)})
        frame.insert(0, "source", [r.get("source") for r in records])
        frame.insert(1, "record_id", [r.get("record_id") for r in records])
        std = standardise_records(frame, master.fields)
        values = {c: std[c].to_numpy() for c in columns if c in std}
    return {c: np.asarray(v, dtype=master.table[c].dtype if c in master.table else object)
            for c, v in values.items()}


# --- candidates and weights ---------------------------------------------------------------

def candidate_pairs(master: Master, queries: dict[str, np.ndarray], sources: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(query index, master position) pairs from every blocking rule, unioned and sorted."""
    n = max(len(master.record_id), 1)
    found, memo = [], {}
    for block in master.blocks:
        hashes, valid = key_hashes(queries, block.rule.keys, memo)
        q, pos = block.lookup(hashes, valid)
        found.append(q.astype(np.int64) * n + pos)
    packed = np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
    q, pos = packed // n, (packed % n).astype(np.int32)
    keep = _keep_link_type(master, master.source_code[pos], sources[q])
    return q[keep], pos[keep]


def score_pairs(master: Master, queries: dict[str, np.ndarray], q: np.ndarray, pos: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gamma, per-field weights, total weight) of each (query, master record) pair."""
    # Plain arrays, not DataFrames: building and indexing frames for a check's few pairs
    # cost more than comparing them.
    cols = _compared_columns(master)
    lhs = Columns({c: queries[c][q] for c in cols})
    names = None
    if master.names is not None:
        mine = query_name_evidence(master, queries)
        theirs = master.name_evidence
        names = (mine.milk[q] | theirs.milk[pos],
                 np.minimum(mine.cohort_bits[q], theirs.cohort_bits[pos]))
    # In a batch run the new record would come last, so the pair's left side (whose value the
    # term frequency is read from) is the master record.
    return _score(master, lhs, master.take(cols, pos), master.take(sorted(master.tf_tables), pos),
                  names)


def query_name_evidence(master: Master, queries: dict[str, np.ndarray]
                        ) -> name_evidence.NameEvidence:
    """The queries' milk flags and cohort bits, read with the run's name model."""
    n = len(next(iter(queries.values()))) if queries else 0
    k, _ = name_evidence.name_levels(master.model)
    return master.names.evidence(queries, n, master.model.comparisons[k].tf_column)


def _compared_columns(master: Master) -> list[str]:
    return sorted({c for comparison in master.comparisons for c in comparison.columns})


def _score(master: Master, lhs: Columns, rhs: Columns, tf_side: Columns, names=None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gamma, per-field weights, total weight) of aligned pairs; term frequencies are read
    from ``tf_side``; ``names`` is (milk, cohort bits) per pair, the batch run's name
    evidence (:mod:`linkage.core.name_evidence`)."""
    gamma = np.empty((len(lhs), len(master.comparisons)), dtype=np.int8)
    if not len(lhs):
        return gamma, np.empty((0, len(master.comparisons)), dtype=np.float32), np.empty(0)
    for k, comparison in enumerate(master.comparisons):
        gamma[:, k] = comparison.compare(lhs, rhs)
    weight, parts = model.score(gamma, master.model, tf_side, np.arange(len(lhs)),
                                master.tf_tables, master.config.training.tf_min_frequency)
    if names is not None:
        k, tf_levels = name_evidence.name_levels(master.model)
        weight = weight + name_evidence.adjust_name_parts(parts, gamma, *names, k, tf_levels)
    return gamma, parts, weight


def _keep_link_type(master: Master, source_a: np.ndarray, source_b: np.ndarray) -> np.ndarray:
    """Which pairs the job's link type allows, by the batch run's rule."""
    keep = link_type_keeps(source_a, source_b, master.config.link_type)
    return np.ones(len(source_a), dtype=bool) if keep is None else keep


def batch_pairs(master: Master, queries: dict[str, np.ndarray], sources: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j: records of one batch that the job's blocking rules pair with each other
    (the same person sent twice in one file: the master cannot know either yet)."""
    n = len(sources)
    found = []
    for rule in master.config.blocking:
        block = BlockIndex.build(rule, queries)  # the master's own grouping, over the batch
        shared = (block.counts > 1) & (block.counts <= rule.max_block_size)
        for start, size in zip(block.starts[shared].tolist(), block.counts[shared].tolist()):
            # few: most keys are one record's
            members = np.sort(block.positions[start:start + size]).astype(np.int64)
            a, b = np.triu_indices(size, 1)
            found.append(members[a] * n + members[b])
    packed = np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
    i, j = packed // n, packed % n
    keep = _keep_link_type(master, sources[i], sources[j])
    return i[keep], j[keep]


def batch_matches(master: Master, queries: dict[str, np.ndarray], sources: np.ndarray
                  ) -> list[list[dict]]:
    """Per record, the other records of its batch that reach the review threshold with it:
    ``{"index", "probability", "band"}``, best first."""
    out: list[list[dict]] = [[] for _ in range(len(sources))]
    if len(sources) < 2:
        return out
    i, j = batch_pairs(master, queries, sources)
    cols = _compared_columns(master)
    tf = sorted(master.tf_tables)
    names = (query_name_evidence(master, queries).pairs(i, j) if master.names is not None
             else None)
    _, _, weight = _score(master, Columns({c: queries[c][i] for c in cols}),
                          Columns({c: queries[c][j] for c in cols}),
                          Columns({c: queries[c][i] for c in tf}), names)
    prob = model.probability(weight)
    for a, b, p, code in zip(i.tolist(), j.tolist(), prob.tolist(),
                             _bands(master, prob).tolist()):
        if code <= 1:  # review band or better
            band = model.BANDS[code]
            out[a].append({"index": b, "probability": round(p, 6), "band": band})
            out[b].append({"index": a, "probability": round(p, 6), "band": band})
    for matches in out:
        matches.sort(key=lambda m: (-m["probability"], m["index"]))
    return out


def _bands(master: Master, prob: np.ndarray) -> np.ndarray:
    """Band codes by the job's thresholds, as the batch run bands its pairs."""
    return model.bands(prob, master.config.match_threshold, master.config.review_threshold)


# --- household evidence -------------------------------------------------------------------

@dataclass
class HouseholdPairs:
    """The queries' pairs with the members of the registry households their households
    correspond to, scored, with the household step's term and note."""

    q: np.ndarray  # query index
    pos: np.ndarray  # master position (a registry record)
    gamma: np.ndarray
    parts: np.ndarray
    weight: np.ndarray  # field weight, before the household term
    bits: np.ndarray  # household term
    note: np.ndarray  # object: the step's note ("" where the term is 0)

    @classmethod
    def none(cls, k: int) -> HouseholdPairs:
        return cls(np.empty(0, np.int64), np.empty(0, np.int32), np.empty((0, k), np.int8),
                   np.empty((0, k), np.float32), np.empty(0), np.empty(0),
                   np.empty(0, dtype=object))


def household_pairs(master: Master, queries: dict[str, np.ndarray], sources: np.ndarray,
                    records: list[dict], only: np.ndarray | None = None) -> HouseholdPairs:
    """The household evidence of the queries that name a household the master knows (module
    docstring), of those ``only`` marks (a mask over the queries; all when None): the batch run's
    household step over those households and the registry households the run linked their
    members into, each query listed in its household. One step for the whole batch, as a
    batch run weighs all households at once."""
    none = HouseholdPairs.none(len(master.comparisons))
    if not _households_known(master, queries):
        return none
    prior = master.model.household_prior
    named = _naming(master, queries, sources)
    if only is not None:
        named = named[np.asarray(only, dtype=bool)[named]]
    if not len(named):
        return none
    hid = queries["household_id"]
    authority = _authority(master)
    most = master.config.household.max_members  # larger households are not assigned
    k, mpos = master.household_members(sources[named], hid[named])
    small = np.bincount(k, minlength=len(named))[k] <= most
    k, mpos = k[small], mpos[small]
    if not len(k):
        return none
    qi = named[k]
    lowest = np.full(len(sources), np.iinfo(np.int64).max)
    np.minimum.at(lowest, qi, mpos.astype(np.int64))
    group = lowest[qi]  # a household by its first record
    # The registry households the run linked the household's members into, and their records.
    hit, at = np.unique(mpos, return_index=True)
    hit_group = group[at]
    of, linked = _members_of(master, master.entity[hit])
    keep = authority[master.source_code[linked]]
    of, linked = of[keep], linked[keep]
    k2, rpos = master.household_members(master.source_code[linked], master.household[linked])
    small = np.bincount(k2, minlength=len(linked))[k2] <= most
    n = max(len(master.record_id), 1)
    registry = np.unique(hit_group[of[k2[small]]] * n + rpos[small])  # (group, record) packed
    reg_group, reg_pos = registry // n, registry % n
    if not len(registry):
        return none
    # Drop the query's own listing: the same enrolment sent again (same record id), or the
    # same person by the step's rule (not two members of one household).
    same_id = np.array([master.record_id[p] == str(records[i].get("record_id"))
                        for i, p in zip(qi.tolist(), mpos.tolist())], dtype=bool)
    listing = _HouseholdWorld(master, queries, sources, hit, np.unique(qi))
    listed = ~listing.hard_negatives(listing.row(mpos), listing.row(qi, query=True))
    others = ~np.isin(hit, mpos[same_id | listed]) & np.isin(hit_group, reg_group)
    placed = np.isin(group, reg_group)
    asked = np.unique(qi[placed])
    # Every insurance member (the others and the queries) against every registry member of
    # the registry households its household leads to.
    side = pd.DataFrame({"g": np.r_[hit_group[others], group[placed]],
                         "p": np.r_[hit[others], qi[placed]],
                         "query": np.r_[np.zeros(others.sum(), bool), np.ones(placed.sum(), bool)]})
    pairs = side.drop_duplicates().merge(pd.DataFrame({"g": reg_group, "p_r": reg_pos}), on="g")
    if pairs.empty:
        return none
    insurance = hit[others]
    rows = np.unique(np.r_[insurance, reg_pos])
    world = _HouseholdWorld(master, queries, sources, rows, asked)
    mine, p = pairs["query"].to_numpy(), pairs["p"].to_numpy()
    a = world.row(pairs["p_r"].to_numpy())
    b = np.empty(len(p), dtype=np.int64)
    b[mine], b[~mine] = world.row(p[mine], query=True), world.row(p[~mine])
    result = world.step(np.minimum(a, b), np.maximum(a, b), prior)
    # The queries' pairs with registry records (queries come last, so on the right).
    left, right = result.left.astype(np.int64), result.right.astype(np.int64)
    take = (right >= len(rows)) & (left < len(rows))
    take &= authority[master.source_code[rows[np.minimum(left, len(rows) - 1)]]]
    return HouseholdPairs(asked[right[take] - len(rows)], rows[left[take]].astype(np.int32),
                          result.gamma[take], result.parts[take], result.field_weight[take],
                          result.bits[take], result.note[take])


def _households_known(master: Master, queries: dict[str, np.ndarray]) -> bool:
    """Whether the check can read households at all (a run with household linkage, its prior
    and the master's household index, and queries with a household id column)."""
    return (master.config.household.enabled and master.model.household_prior is not None
            and master.households is not None and "household_id" in queries)


def _authority(master: Master) -> np.ndarray:
    """Per source code, whether the source is the registry (authority)."""
    return np.array([master.roles[s] == "authority" for s in master.sources], dtype=bool)


def _naming(master: Master, queries: dict[str, np.ndarray], sources: np.ndarray) -> np.ndarray:
    """The queries (indexes) from an insurance source that name a household id."""
    hid = queries["household_id"]
    return np.flatnonzero(~(pd.isna(hid) | (hid == "")) & ~_authority(master)[sources])


def household_settled(master: Master, queries: dict[str, np.ndarray], sources: np.ndarray,
                      records: list[dict], q: np.ndarray, pos: np.ndarray, gamma: np.ndarray,
                      weight: np.ndarray) -> np.ndarray:
    """Per query, whether the household step cannot change its record-level answer, by the
    rule in the module docstring, from the candidate pairs' field weights: True for a query
    that names no household the master knows (the step has nothing to do) and for a settled
    match; False where the step must run. A few array lookups per query: no frame."""
    settled = np.ones(len(sources), dtype=bool)
    if not _households_known(master, queries):
        return settled
    named = _naming(master, queries, sources)
    k, mpos = master.household_members(sources[named], queries["household_id"][named])
    if not len(k):
        return settled
    authority = _authority(master)
    band = _bands(master, model.probability(weight))
    fields = household.Fields.of(master.model.comparisons)
    order = np.argsort(k, kind="stable")
    k, mpos = k[order], mpos[order]
    bounds = np.searchsorted(k, np.arange(len(named) + 1))
    for j in np.unique(k).tolist():
        i = int(named[j])
        settled[i] = False
        own = mpos[bounds[j]:bounds[j + 1]]  # the master's records of the query's household
        rows = np.arange(*np.searchsorted(q, [i, i + 1]))
        matched = np.unique(master.entity[pos[rows[band[rows] == 0]]])
        if len(matched) != 1:
            continue
        code = int(matched[0])
        rid = records[i].get("record_id")
        rid = str(rid) if rid is not None and str(rid) != "" else None
        listed = own[master.entity[own] == code]
        listed = listed[master.record_id[listed] != rid]  # not the same enrolment
        if len(listed):
            # A housemate, unless plainly the record itself keyed again.
            row_of = dict(zip(pos[rows].tolist(), rows.tolist()))
            if not all(_keyed_again(master, queries, i, at,
                                    gamma[row_of[at]] if at in row_of else None, fields)
                       for at in listed.tolist()):
                continue
        members = master.members(code)
        registry = members[authority[master.source_code[members]]]
        if not len(registry):
            continue
        # The registry households the run linked the household's members into.
        _, linked = _members_of(master, np.unique(master.entity[own]))
        linked = linked[authority[master.source_code[linked]]]
        keys = set(zip(master.source_code[linked].tolist(), master.household[linked].tolist()))
        if not any(key in keys for key in zip(master.source_code[registry].tolist(),
                                              master.household[registry].tolist())):
            continue
        if _a_generation_apart(master, queries, i, members):
            continue
        settled[i] = True
    return settled


def _a_generation_apart(master: Master, queries: dict[str, np.ndarray], i: int,
                        members: np.ndarray) -> bool:
    """Whether query ``i``'s own birth year is a generation (``household.GENERATION_YEARS``)
    away from its ID's or from the birth year a record of the entity (``members``) gives: the
    contradiction the household step acts on (a parent's ID on a child never merges). Birth
    years only where a record gives its own birthdate, as the step reads them; a smaller
    contradiction (a day or a year mistyped, a lunar birthday) is field evidence only, which
    the pair's field weight already holds."""
    table = master.table
    if "birth_date" not in queries or "birth_quality" not in queries \
            or queries["birth_quality"][i] not in household.RECORD_DATES:
        return False
    year = int(queries["birth_date"][i]) // 10000
    far = household.GENERATION_YEARS
    id_birth = plain_value(queries["id_birth"][i]) if "id_birth" in queries else None
    if isinstance(id_birth, int) and id_birth > 0 and abs(year - id_birth // 10000) >= far:
        return True
    if "birth_date" not in table or "birth_quality" not in table:
        return False
    dated = members[np.isin(table["birth_quality"][members], household.RECORD_DATES)]
    return bool((np.abs(table["birth_date"][dated].astype(np.int64) // 10000 - year) >= far)
                .any())


def _relations(master: Master, rows: np.ndarray) -> np.ndarray:
    """relation_std of master records (object; None where unknown)."""
    if "relation_std" in master.table:
        return master.table["relation_std"][rows]
    if master.relation is not None and len(master.relations):
        codes = master.relation[rows]
        return np.where(codes >= 0, master.relations[np.maximum(codes, 0)], None)
    return np.full(len(rows), None, dtype=object)


def _keyed_again(master: Master, queries: dict[str, np.ndarray], i: int, at: int,
                 gamma_row: np.ndarray | None, fields: household.Fields) -> bool:
    """Whether query ``i`` is plainly the master record ``at`` of its own household keyed
    again, by the household step's own rule for one member keyed twice
    (linkage/core/household.py, ``_hard_negatives``), less its clauses on a mistyped ID year
    and on overwhelming weight: never a parent and a child by their relations (unless their
    birth years are within one), and either the same valid ID beside a close name (or the
    same relation and birth years within one), or the same relation, the same birthdate as
    far as both know it and a close name. Where this says no, the step decides (it may still
    find them one listing). ``gamma_row``: the pair's comparison levels (None: no pair)."""
    if gamma_row is None:
        return False
    table = master.table
    mine = plain_value(queries["relation_std"][i]) if "relation_std" in queries else None
    theirs = _relations(master, np.array([at]))[0]
    theirs = None if pd.isna(theirs) else theirs
    dated = ("birth_year" in table and "birth_quality" in table and "birth_year" in queries)
    ya = (int(queries["birth_year"][i])
          if dated and queries["birth_quality"][i] in household.RECORD_DATES else 0)
    yb = int(table["birth_year"][at]) if dated and table["birth_quality"][at] in \
        household.RECORD_DATES else 0
    known_years = ya > 0 and yb > 0
    near_year = known_years and abs(ya - yb) <= 1
    generations = ((mine in household.SENIOR and theirs in household.JUNIOR)
                   or (mine in household.JUNIOR and theirs in household.SENIOR))
    if generations and not near_year:
        return False
    close_name = fields.name is not None and gamma_row[fields.name] in fields.name_close
    same_id = fields.id_number is not None and gamma_row[fields.id_number] in fields.id_same
    same_role = mine is None or theirs is None or mine == theirs
    same_birth = False
    if fields.birth is not None and (ya == yb or ya == 0 or yb == 0):
        level = gamma_row[fields.birth]
        jan1 = "jan1" in (queries["birth_quality"][i], table["birth_quality"][at]) \
            if dated else False
        same_birth = bool((level >= 0 and level != fields.birth_different)
                          or (known_years and jan1))
    return bool((same_id and (close_name or (same_role and near_year)))
                or (same_role and same_birth and close_name))


def _members_of(master: Master, entity_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into ``entity_codes``, record position) of every member of those entities."""
    starts = master.member_starts[entity_codes]
    counts = master.member_starts[entity_codes + 1] - starts
    offsets = np.repeat(starts - np.r_[0, np.cumsum(counts)[:-1]], counts)
    at = np.repeat(np.arange(len(entity_codes)), counts)
    return at, master.member_order[offsets + np.arange(int(counts.sum()))]


class _HouseholdWorld:
    """Some master records (positions ``rows``, in run order) and some queries after them, as
    the frame the household step reads, with the check's own scoring of any pair of them."""

    def __init__(self, master: Master, queries: dict[str, np.ndarray], sources: np.ndarray,
                 rows: np.ndarray, asked: np.ndarray):
        self.master, self.queries, self.rows, self.asked = master, queries, rows, asked
        names = np.asarray(master.sources, dtype=object)
        frame = {"source": np.r_[names[master.source_code[rows]], names[sources[asked]]],
                 "household_id": np.r_[master.household[rows], queries["household_id"][asked]]}
        mine = _relations(master, rows)
        theirs = queries.get("relation_std", np.full(len(asked), None, dtype=object))
        frame["relation_std"] = np.r_[mine.astype(object), np.asarray(theirs)[asked]]
        for c in HOUSEHOLD_COLUMNS:
            if c in master.table and c in queries:
                frame[c] = np.r_[master.table[c][rows], queries[c][asked]]
        self.frame = pd.DataFrame(frame)
        authority = np.array([master.roles[s] == "authority" for s in master.sources])
        self.authority = np.r_[authority[master.source_code[rows]],
                               np.zeros(len(asked), dtype=bool)]

    def row(self, which: np.ndarray, query: bool = False) -> np.ndarray:
        """The frame rows of master positions (or of query indexes)."""
        if query:
            return len(self.rows) + np.searchsorted(self.asked, which)
        return np.searchsorted(self.rows, which)

    def score(self, left: np.ndarray, right: np.ndarray):
        """(gamma, parts, field weight) of frame pairs, left < right, as the check scores a
        query's pairs and as the run scored its own (term frequencies from the left record,
        the earlier one; a query comes last)."""
        master, n = self.master, len(self.rows)
        k = len(master.comparisons)
        gamma = np.empty((len(left), k), dtype=np.int8)
        parts = np.empty((len(left), k), dtype=np.float32)
        weight = np.empty(len(left))
        if np.any(left >= n):
            raise ValueError("the household step paired two queries")
        both = right < n
        for where, scored in ((both, self._score_master), (~both, self._score_query)):
            if where.any():
                g, p, w = scored(left[where], right[where])
                gamma[where], parts[where], weight[where] = g, p, w
        return gamma, parts, weight

    def _score_master(self, left, right):
        master = self.master
        a, b = self.rows[left], self.rows[right]
        cols = _compared_columns(master)
        names = (master.name_evidence.pairs(a, b) if master.names is not None else None)
        return _score(master, master.take(cols, a), master.take(cols, b),
                      master.take(sorted(master.tf_tables), a), names)

    def _score_query(self, left, right):
        return score_pairs(self.master, self.queries, self.asked[right - len(self.rows)],
                           self.rows[left])

    def hard_negatives(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Which of the given pairs are two people by the step's hard-negative rule."""
        gamma, parts, weight = self.score(left, right)
        cannot, _ = household.hard_negatives(self.frame, left, right, gamma, parts, weight,
                                             self.master.model,
                                             scoring.household_params(self.master.config))
        return cannot

    def step(self, left: np.ndarray, right: np.ndarray, prior: float
             ) -> household.HouseholdResult:
        """The batch run's household step over the given pairs of this world."""
        left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
        gamma, parts, weight = self.score(left, right)
        return household.household_step(self.frame, self.authority, left, right, gamma, parts,
                                        weight, self.master.model,
                                        scoring.household_params(self.master.config),
                                        self.score, prior)


# --- the check ----------------------------------------------------------------------------

def check_records(master: Master, records: list[dict], max_candidates: int = MAX_CANDIDATES,
                  household_evidence: bool = True) -> list[CheckResult]:
    """Check enrolment records (dicts of raw fields plus ``source`` and optional ``record_id``)
    against the master; one result per record, in order. Vectorised over the whole batch.
    ``household_evidence=False`` leaves households out (every household term 0), for a caller
    that must not let a household code alone lift a verdict (see the module docstring)."""
    if not records:
        return []
    names = list(master.sources)
    sources = np.array([names.index(r["source"]) for r in records], dtype=np.int16)
    queries = standardise_queries(master, records)
    q, pos = candidate_pairs(master, queries, sources)
    gamma, parts, weight = score_pairs(master, queries, q, pos)
    if household_evidence:
        settled = household_settled(master, queries, sources, records, q, pos, gamma, weight)
        found = household_pairs(master, queries, sources, records, ~settled)
    else:
        found = HouseholdPairs.none(len(master.comparisons))
    q, pos, gamma, parts, weight, bits, notes = with_household(
        master, sources, q, pos, gamma, parts, weight, found)
    weight = weight + bits
    prob = model.probability(weight)
    band = _bands(master, prob)
    entity = master.entity[pos]
    # Best pair per (query, entity), best entities first.
    order = np.lexsort((-weight, entity, q))
    q, pos, entity, gamma, parts, weight, prob, band, bits, notes = (
        a[order] for a in (q, pos, entity, gamma, parts, weight, prob, band, bits, notes))
    first = (np.r_[True, (q[1:] != q[:-1]) | (entity[1:] != entity[:-1])] if len(q)
             else np.empty(0, bool))
    best = np.flatnonzero(first)
    best = best[np.lexsort((-weight[best], q[best]))]
    per_query = np.split(best, np.searchsorted(q[best], np.arange(1, len(records))))

    in_batch = batch_matches(master, queries, sources)
    holders = id_holders(master, queries)

    results = []
    for i, picks in enumerate(per_query):
        record = records[i]
        probs = prob[picks]
        candidates = [_candidate(master, record, int(j), gamma, parts, weight, prob, band, pos,
                                 entity, bits, notes)
                      for j in picks[:max_candidates]]
        verdict, reason, entity_id = decide(master, record, candidates, probs)
        if candidates and candidates[0].household_note and verdict != "new_person":
            reason = f"{reason}; household: {candidates[0].household_note}"
        earlier = [m for m in in_batch[i] if m["index"] < i and m["band"] == "match"]
        if verdict == "new_person" and earlier:
            verdict = "needs_review"
            reason = (f"not in the master, but the same person as record {earlier[0]['index']} "
                      "of this batch (probability "
                      f"{earlier[0]['probability']:.4f}): one enrolment or two?")
        quality = {c: plain_value(queries[c][i]) for c in ("id_status", "birth_quality")
                   if c in queries}
        id_status, birth = quality.get("id_status"), quality.get("birth_quality")
        if verdict == "new_person" and (id_status in INVALID_ID or id_status in DAMAGED_ID) \
                and birth not in SETTLING_BIRTH:
            verdict = "needs_review"
            reason = (f"no known person reaches the review threshold, but the ID number is "
                      f"{id_status} and no full birthdate settles it: a reviewer must look for "
                      "the person")
        named = candidates[0] if entity_id is not None else None
        warnings = record_warnings(master, verdict, named, id_status,
                                   other_holders(master, queries, i, holders.get(i, ())))
        own_id = named is not None and carries_id(master, int(entity[picks[0]]),
                                                  queries["id_norm"][i] if "id_norm" in queries
                                                  else None)
        results.append(CheckResult(verdict, reason, entity_id, candidates, quality, in_batch[i],
                                   warnings, own_id))
    return results


# --- warnings -----------------------------------------------------------------------------

def record_warnings(master: Master, verdict: str, named: Candidate | None, id_status,
                    holders: list[dict]) -> list[dict]:
    """The warnings of one result: ``named`` is the candidate the verdict names (None when
    it names none), ``holders`` the registry records of another name or birthdate that hold
    the submitted number (other_holders)."""
    out = []
    if named is not None and named.golden.get("deceased"):
        out.append(_warning("DECEASED", {"entity_id": named.entity_id}))
    if id_status in INVALID_ID:
        out.append(_warning("ID_INVALID", {"id_status": id_status}, INVALID_ID[id_status]))
    elif id_status in DAMAGED_ID:
        out.append(_warning("ID_DAMAGED", {"id_status": id_status}))
    if holders:
        out.append(_warning("ID_OTHER_PERSON", {"holders": holders}))
    if verdict == "duplicate_enrolment" and named is not None:
        out.append(_already_enrolled(master, named))
    return out


def _warning(code: str, detail: dict | None, message: str | None = None) -> dict:
    return {"code": code, "message": message or WARNINGS[code], "detail": detail}


def _already_enrolled(master: Master, named: Candidate) -> dict:
    """ALREADY_ENROLLED: the enrolments the record would duplicate, and where the person
    lives by the golden record."""
    label = getattr(master.config, "scheme_names", None) or {}  # code -> 新农合, 城镇居民
    enrolments = [{"scheme": e["scheme"], "scheme_name": label.get(e["scheme"], e["scheme"]),
                   "source": e["source"], "record_id": e["record_id"],
                   "household_id": e["household_id"]}
                  for e in named.enrolments if not e["renewed"]]
    where = "；".join(f"{e['scheme_name']}（{e['source']} 记录 {e['record_id']}）"
                     for e in enrolments)
    township, village = named.golden.get("township"), named.golden.get("village")
    place = "".join(p for p in (township, village) if isinstance(p, str))
    return _warning("ALREADY_ENROLLED",
                    {"entity_id": named.entity_id, "enrolments": enrolments,
                     "township": township, "village": village},
                    f"此人已参保：{where}" + (f"，住{place}" if place else "") + "；请勿重复参保")


def id_holders(master: Master, queries: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    """Per query index, the master positions of the registry (authority) records that carry
    exactly its ID number. Exact equality only: a number one character off, or the digits an
    Excel-damaged value keeps, say nothing here (each record tests one number)."""
    if "id_norm" not in master.table or "id_norm" not in queries:
        return {}
    index = _id_index(master)
    q, pos = index.lookup(*key_hashes(queries, index.rule.keys))
    if not len(q):
        return {}
    mine = queries["id_norm"][q]
    authority = np.array([master.roles[s] == "authority" for s in master.sources], dtype=bool)
    keep = (authority[master.source_code[pos]] & pd.notna(mine)
            & (master.table["id_norm"][pos] == mine))
    q, pos = q[keep], pos[keep]
    return {int(i): pos[q == i] for i in np.unique(q).tolist()}


def _id_index(master: Master) -> BlockIndex:
    """A blocking rule's index that holds every record of an ID number together (the job's
    own ID rule if it has one); else one built on first use and kept with the master."""
    for block in master.blocks:
        if block.rule.keys in (("id_norm",), ("id_prefix17",)):
            return block
    index = getattr(master, "_id_index", None)
    if index is None:
        index = BlockIndex.build(BlockingRule("id_number", ("id_norm",), 10**9), master.table)
        master._id_index = index
    return index


def carries_id(master: Master, entity_code: int, id_norm) -> bool:
    """Whether a record of the entity carries exactly this (standardised) ID number."""
    if not isinstance(id_norm, str) or "id_norm" not in master.table:
        return False
    return bool((master.table["id_norm"][master.members(entity_code)] == id_norm).any())


def other_holders(master: Master, queries: dict[str, np.ndarray], i: int,
                  positions) -> list[dict]:
    """The registry records holding query ``i``'s ID number under another name or birthdate:
    ``{entity_id, source, record_id, differs}``, ``differs`` naming name and/or birth_date.

    Names are compared by name_key (simplified, spacing and variants folded); birthdates at
    the precision both sides have (a birthdate read off the ID itself is not compared)."""
    out = []
    table = master.table
    name = queries["name_key"][i] if "name_key" in queries else None
    for at in np.asarray(positions, dtype=np.int64).tolist():
        differs = []
        theirs = table["name_key"][at] if "name_key" in table else None
        if isinstance(name, str) and isinstance(theirs, str) and name != theirs:
            differs.append("name")
        if "birth_date" in table and "birth_quality" in table and _births_differ(
                queries["birth_date"][i], queries["birth_quality"][i],
                table["birth_date"][at], table["birth_quality"][at]):
            differs.append("birth_date")
        if differs:
            out.append({"entity_id": str(master.entity_ids[master.entity[at]]),
                        "source": master.sources[master.source_code[at]],
                        "record_id": str(master.record_id[at]), "differs": differs})
    return out


def _births_differ(date_a, quality_a, date_b, quality_b) -> bool:
    """Whether two birthdates (yyyymmdd ints) differ at the precision both qualities have."""
    if quality_a not in _BIRTH_UNKNOWN_DIGITS or quality_b not in _BIRTH_UNKNOWN_DIGITS:
        return False
    scale = 10 ** max(_BIRTH_UNKNOWN_DIGITS[quality_a], _BIRTH_UNKNOWN_DIGITS[quality_b])
    return int(date_a) // scale != int(date_b) // scale


def with_household(master: Master, sources: np.ndarray, q, pos, gamma, parts, weight,
                   found: HouseholdPairs):
    """The candidate pairs with the household pairs merged in: (q, pos, gamma, parts, field
    weight, household bits, note). A pair found both ways keeps its row and gains the term; a
    member pair no blocking rule found is added, as the batch run's household rule adds it."""
    bits = np.zeros(len(q))
    notes = np.full(len(q), "", dtype=object)
    keep = _keep_link_type(master, master.source_code[found.pos], sources[found.q])
    if not keep.any():
        return q, pos, gamma, parts, weight, bits, notes
    n = max(len(master.record_id), 1)
    packed = q.astype(np.int64) * n + pos  # sorted (candidate_pairs)
    theirs = found.q.astype(np.int64) * n + found.pos
    at = np.minimum(np.searchsorted(packed, theirs), max(len(packed) - 1, 0))
    known = keep & (packed[at] == theirs) if len(packed) else np.zeros(len(theirs), bool)
    bits[at[known]] = found.bits[known]
    notes[at[known]] = found.note[known]
    new = keep & ~known
    return (np.r_[q, found.q[new]], np.r_[pos, found.pos[new]].astype(pos.dtype),
            np.concatenate([gamma, found.gamma[new]]), np.concatenate([parts, found.parts[new]]),
            np.r_[weight, found.weight[new]], np.r_[bits, found.bits[new]],
            np.r_[notes, found.note[new]])


def _candidate(master, record, j, gamma, parts, weight, prob, band, pos, entity, bits,
               notes) -> Candidate:
    fs = master.model
    explanation = {c.name: {"level": c.labels[gamma[j, k]] if gamma[j, k] >= 0 else "missing",
                            "weight": round(float(parts[j, k]), 2)}
                   for k, c in enumerate(fs.comparisons)}
    term = float(bits[j])
    explanation["household"] = round(term, 2) if term else 0.0
    explanation["prior"] = round(fs.prior_weight, 2)
    p = float(prob[j])
    code = int(entity[j])
    golden_row = master.golden_row(code)
    at = int(pos[j])
    return Candidate(str(master.entity_ids[code]), round(p, 6), round(float(weight[j]), 3),
                     model.BANDS[band[j]],
                     (master.sources[master.source_code[at]], str(master.record_id[at])),
                     explanation, golden_row, _enrolments(master, record, code),
                     str(notes[j]) if term else "")


def _enrolments(master: Master, record: dict, code: int) -> list[dict]:
    """The entity's insurance records, each marked when the record would renew it."""
    roles, schemes = master.roles, master.schemes
    out = []
    for at in master.members(code).tolist():
        source = master.sources[master.source_code[at]]
        if roles[source] != "insurance":
            continue
        household = master.household[at]
        out.append({"source": source, "scheme": schemes[source],
                    "record_id": str(master.record_id[at]), "household_id": household,
                    "renewed": renews(record, source, str(master.record_id[at]), household,
                                      schemes)})
    return out


def renews(record: dict, source: str, record_id: str, household, schemes: dict[str, str]) -> bool:
    """Whether the new record is the same enrolment as an existing one (renewal, correction).

    Same source and record id; or the same scheme and, where both name one, the same household.
    """
    same_id = record.get("record_id") and str(record["record_id"]) == record_id
    if record["source"] == source and same_id:
        return True
    if schemes[record["source"]] != schemes[source]:
        return False
    mine, theirs = _text(record.get("household_id")), _text(household)
    return mine is None or theirs is None or mine == theirs


def _text(value) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def decide(master: Master, record: dict, candidates: list[Candidate], probs: np.ndarray
           ) -> tuple[str, str, str | None]:
    """(verdict, reason, entity id) by the rule in the module docstring."""
    match, review = master.config.match_threshold, master.config.review_threshold
    if not len(probs) or probs.max() < review:
        return "new_person", "no known person reaches the review threshold", None
    above = int((probs >= match).sum())
    best = candidates[0]
    if above >= 2:
        return ("needs_review", f"{above} different persons reach the match threshold", None)
    if probs.max() < match:
        return ("needs_review", f"best candidate {best.entity_id} has probability "
                f"{best.probability:.4f}, between the review and match thresholds", None)
    if master.roles[record["source"]] != "insurance":
        return "known_person", f"matches {best.entity_id}", best.entity_id
    others = [e for e in best.enrolments if not e["renewed"]]
    if others:
        where = ", ".join(f"{e['scheme']} {e['source']}:{e['record_id']}" for e in others)
        return ("duplicate_enrolment", f"{best.entity_id} is already enrolled: {where}",
                best.entity_id)
    if best.enrolments:
        return "known_person", f"renews the enrolment of {best.entity_id}", best.entity_id
    return "known_person", f"first enrolment of {best.entity_id}", best.entity_id
