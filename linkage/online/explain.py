"""`linkage explain`: why one pair gets its match weight, and exactly the weight the run gives it.

The run is the store's latest complete run of the job, with the model it stored. A pair the run
stored (the match and review bands, and merges clustering refused) is shown as stored: the
weight the review page shows, and its parts, each comparison's level and weight (term
frequencies included), the household term and the prior. Any other pair is scored the way the
run scores its pairs: term frequencies over the run's records, and household context from every
candidate pair touching the two records' households (``incremental.score_around``, the step
`linkage add` scores with), so its weight is the one the run gave it before dropping it, or
would give it if a reviewer's decision brought it in.
"""
from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from linkage.core import blocking, standardise
from linkage.core.compare import build_comparisons
from linkage.core.config import JobConfig
from linkage.core.model import BANDS, FSModel
from linkage.engines import local as scoring
from linkage.jobs.add import focused_pairs, score_around
from linkage.jobs.bookkeeping import decisions_for
from linkage.jobs.inputs import ingest_job
from linkage.jobs.run import classify
from linkage.store import Store

Key = tuple[str, str]


class ExplainError(LookupError):
    """Nothing to explain: no complete run, or a record the run does not have."""


@dataclass
class FieldPart:
    comparison: str
    level: str
    weight: float
    values: str  # the standardised values compared, left ~ right


@dataclass
class PairExplanation:
    left: Key
    right: Key
    run_id: str
    stored: bool  # the weight is the one the run stored for the pair
    candidate: bool  # a blocking rule (or a reviewer's decision) makes it a pair of the run
    fields: list[FieldPart]
    household: float
    prior: float
    weight: float
    probability: float
    band: str
    decision: str = ""  # the reviewer's active decision, "" where none
    model_path: Path | None = None  # scored with this model instead of the run's
    records: int = 0  # records of the run (term frequencies are over these)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:  # what `linkage explain` prints; print() in a notebook shows it
        return "\n".join(self.lines())

    def lines(self) -> list[str]:
        out = [f"{self.left[0]}:{self.left[1]}  vs  {self.right[0]}:{self.right[1]}"]
        for f in self.fields:
            out.append(f"  {f.comparison:<12} {f.level:<22} {f.weight:+7.2f}   {f.values}")
        out.append(f"  {'household':<12} {'':<22} {self.household:+7.2f}")
        out.append(f"  {'prior':<12} {'':<22} {self.prior:+7.2f}")
        out.append(f"  match weight {self.weight:+.2f} bits, probability {self.probability:.4f}, "
                   f"band {self.band}")
        if self.decision:
            out.append(f"  a reviewer decided {self.decision}: that sets the band, not the weight")
        if self.model_path is not None:
            how = (f"scored with {self.model_path} instead of run {self.run_id}'s model, as the "
                   f"run scores a pair: term frequencies over its {self.records:,} records, "
                   "household context")
        elif self.stored:
            how = (f"the weight run {self.run_id} stored for this pair (the one the review page "
                   "shows): term frequencies and household context included")
        elif self.candidate:
            how = (f"the weight run {self.run_id} gives this pair (not stored: below the review "
                   f"band), with its model, term frequencies over its {self.records:,} records "
                   "and household context")
        else:
            how = (f"no blocking rule pairs these records, so run {self.run_id} never scored "
                   "them; this is the weight it would give them if a reviewer's decision "
                   "brought the pair in (its model, term frequencies, household context)")
        out.append(textwrap.fill(how, 100, initial_indent="  ", subsequent_indent="    "))
        return out + [f"  note: {n}" for n in self.notes]


def explain_pair(config: JobConfig, left: Key, right: Key, store: Store | None = None,
                 model_path: Path | None = None, progress: bool = False) -> PairExplanation:
    """The pair's weight and its parts, as the job's latest complete run gives it."""
    return explain_pairs(config, [(left, right)], store, model_path, progress)[0]


def explain_pairs(config: JobConfig, pairs: list[tuple[Key, Key]], store: Store | None = None,
                  model_path: Path | None = None,
                  progress: bool = False) -> list[PairExplanation]:
    """``explain_pair`` for several pairs, reading the job's records once.

    With ``model_path`` every pair is scored with that model (none is taken from the store).
    """
    own = store is None
    store = store or Store(config.store)
    try:
        run_id = store.last_complete_run(config.job)
        if run_id is None:
            raise ExplainError(f"the store {config.store} holds no complete run of job "
                               f"'{config.job}': run `linkage run` first")
        comparisons = build_comparisons(config.comparisons)
        fs = (FSModel.load(model_path) if model_path is not None
              else FSModel.from_dict(store.run_model(run_id)))
        fs.check_matches(comparisons)
        keys = tuple(key for pair in pairs for key in pair)
        records, positions = _run_records(config, store, run_id, keys, progress)
        fields = {f for s in config.sources for f in s.fields}
        stored = [store.stored_pair(run_id, a, b) if model_path is None else None
                  for a, b in pairs]
        std = None
        if any(row is None for row in stored):
            std = standardise.standardise_records(records, fields).reset_index(drop=True)
        out = []
        for k, ((left, right), row) in enumerate(zip(pairs, stored)):
            a, b = positions[2 * k], positions[2 * k + 1]
            if row is not None:
                two = standardise.standardise_records(records.iloc[[a, b]], fields)
                out.append(_as_stored(left, right, run_id, row, fs, comparisons,
                                      two.reset_index(drop=True), len(records)))
            else:
                out.append(_as_scored(config, store, left, right, run_id, fs, comparisons, std,
                                      a, b, model_path, progress))
        return out
    finally:
        if own:
            store.close()


def _keys(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([frame["source"].astype(str), frame["record_id"].astype(str)])


def _run_records(config, store, run_id, wanted: tuple[Key, ...],
                 progress) -> tuple[pd.DataFrame, list[int]]:
    """The run's records as the run read them (the job's inputs with the kept `add` batches, in
    reading order, less those that came in after the run) and the positions of ``wanted``."""
    raw = ingest_job(config, store, progress).records
    keys = _keys(raw)
    linked = keys.isin(_keys(store.members(run_id)))
    read = pd.Series(np.arange(len(raw)), index=keys)
    for key in wanted:
        if key not in read.index:
            raise ExplainError(f"no record {key[0]}:{key[1]} in the job's inputs")
        if not linked[read[key]]:
            raise ExplainError(f"record {key[0]}:{key[1]} came into the inputs after run "
                               f"{run_id}, which has not linked it: run `linkage run` first")
    position = np.cumsum(linked) - 1  # reading position -> position among the run's records
    return raw[linked].reset_index(drop=True), [int(position[read[key]]) for key in wanted]


def _values(comparison, std: pd.DataFrame, a: int, b: int) -> str:
    cols = [col for col in comparison.columns if col in std][:2]
    return " | ".join(f"{std.at[a, col]!s} ~ {std.at[b, col]!s}" for col in cols)


def _as_stored(left, right, run_id, stored, fs, comparisons, pair, n) -> PairExplanation:
    parts = json.loads(stored["explanation"])
    fields = [FieldPart(c.name, parts[c.name]["level"], parts[c.name]["weight"],
                          _values(comp, pair, 0, 1))
              for c, comp in zip(fs.comparisons, comparisons) if c.name in parts]
    return PairExplanation(left, right, run_id, True, True, fields, parts["household"],
                           parts["prior"], stored["weight"], stored["probability"],
                           stored["band"], records=n,
                           notes=[t for t in (stored["reason"], parts.get("household_note"))
                                  if t])


def _as_scored(config, store, left, right, run_id, fs, comparisons, std, a, b, model_path,
               progress) -> PairExplanation:
    n = len(std)
    decided = decisions_for(store, pd.Series(np.arange(n), index=_keys(std)))
    pair = blocking.pack(np.array([a]), np.array([b]), n)
    focus = np.zeros(n, dtype=bool)
    focus[[a, b]] = True
    # Whether the run's blocking pairs them (a reviewer's decision would force the pair in).
    codes = [blocking.rule_blocks(std, rule).codes for rule in config.blocking]
    blocked_l, blocked_r, _ = focused_pairs(codes, config.blocking, pd.factorize(std["source"])[0],
                                            config.link_type, focus)
    decided_pairs = blocking.pack(decided["l"].to_numpy(), decided["r"].to_numpy(), n)
    candidate = bool(np.isin(pair, np.concatenate([blocking.pack(blocked_l, blocked_r, n),
                                                   decided_pairs])).all())
    # Every reviewer-decided pair, as the run's candidates hold them, for the household context.
    forced = np.concatenate([decided_pairs, pair])
    weighed, _, _ = score_around(std, config, comparisons, fs, focus, forced, progress=progress,
                                 household_decisions=store.correspondence_decisions())
    lefts, rights, gamma, weight, parts, hh = (weighed.left, weighed.right, weighed.gamma,
                                               weighed.weight, weighed.parts, weighed.household)
    k = int(np.flatnonzero(blocking.pack(lefts, rights, n) == pair[0])[0])
    decision = scoring.pair_decisions(lefts[k:k + 1], rights[k:k + 1], n, decided)
    prob, band = classify(weight[k:k + 1], decision, config)
    fields = [FieldPart(c.name, c.labels[gamma[k, j]] if gamma[k, j] >= 0 else "missing",
                          float(parts[k, j]), _values(comparisons[j], std, a, b))
              for j, c in enumerate(fs.comparisons)]
    return PairExplanation(left, right, run_id, False, candidate, fields, float(hh[k]),
                           fs.prior_weight, float(weight[k]), float(prob[0]),
                           BANDS[int(band[0])], str(decision[0]), model_path, n)
