"""Check new enrolment records against the master: candidates, weights, and a verdict.

A check runs the batch pipeline's own steps on the new records against the in-memory master
(linkage/master.py): the same standardisers, the same blocking rules (and block-size limits),
the same Comparison objects and the run's Fellegi-Sunter model with the run's name
frequencies. So a pair's field weights are the ones a batch run would give it. The one
difference: a lone enrolment has no household around it, so the household context term of the
batch run is 0 here (the explanation says so).

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

from linkage.core import model, name_evidence
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
from linkage.online.master import BlockIndex, Master, key_hashes, plain_value
from matchers import generic
from matchers.base import Columns

VERDICTS = ("new_person", "known_person", "duplicate_enrolment", "needs_review")
MAX_CANDIDATES = 5  # entities returned per record, best first
ROW_PATH_MAX = 16  # batches up to this size take the per-record standardisation path

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
    columns = list(master.table) + [c for c in ("id_status", "birth_quality")
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


# --- the check ----------------------------------------------------------------------------

def check_records(master: Master, records: list[dict], max_candidates: int = MAX_CANDIDATES
                  ) -> list[CheckResult]:
    """Check enrolment records (dicts of raw fields plus ``source`` and optional ``record_id``)
    against the master; one result per record, in order. Vectorised over the whole batch."""
    if not records:
        return []
    names = list(master.sources)
    sources = np.array([names.index(r["source"]) for r in records], dtype=np.int16)
    queries = standardise_queries(master, records)
    q, pos = candidate_pairs(master, queries, sources)
    gamma, parts, weight = score_pairs(master, queries, q, pos)
    prob = model.probability(weight)
    band = _bands(master, prob)
    entity = master.entity[pos]
    # Best pair per (query, entity), best entities first.
    order = np.lexsort((-weight, entity, q))
    q, pos, entity, gamma, parts, weight, prob, band = (
        a[order] for a in (q, pos, entity, gamma, parts, weight, prob, band))
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
                                 entity)
                      for j in picks[:max_candidates]]
        verdict, reason, entity_id = decide(master, record, candidates, probs)
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


def _candidate(master, record, j, gamma, parts, weight, prob, band, pos, entity) -> Candidate:
    fs = master.model
    explanation = {c.name: {"level": c.labels[gamma[j, k]] if gamma[j, k] >= 0 else "missing",
                            "weight": round(float(parts[j, k]), 2)}
                   for k, c in enumerate(fs.comparisons)}
    explanation["household"] = 0.0
    explanation["prior"] = round(fs.prior_weight, 2)
    p = float(prob[j])
    code = int(entity[j])
    golden_row = master.golden_row(code)
    at = int(pos[j])
    return Candidate(str(master.entity_ids[code]), round(p, 6), round(float(weight[j]), 3),
                     model.BANDS[band[j]],
                     (master.sources[master.source_code[at]], str(master.record_id[at])),
                     explanation, golden_row, _enrolments(master, record, code))


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
