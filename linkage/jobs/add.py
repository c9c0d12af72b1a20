"""`linkage add`: link a batch of new records against the existing entities, no full re-run.

The batch goes through the stages of a full run: ingest (rejects with file, row, column and
reason, rows with nothing to link on among them by the rule a full run applies),
standardisation, blocking, comparison and scoring with the model of the store's latest
complete run (not retrained), household context and clustering. Blocking keeps only the pairs a
full run would make that involve a new record (new x existing, new x new); the full run's block
sizes are kept, so a block too big to pair is skipped the same way. Household context needs
every pair touching the households involved, so those existing pairs are scored as well, only
as context. The existing records come standardised as a full run reads them, unchanged files
from the kept state (linkage.jobs.state); the batch is standardised here, and kept in the
state by the next full run, which reads it among the job's files.

Those pairs are blocked, compared and weighed over only the records they can touch (the
batch's blocks, the households around them, those households' blocks: :func:`context`), in
the order they have among all records, so the pairs, weights and household terms are the
ones scoring over every record gives. What a weight reads of every record (term frequencies,
milk names, birth-cohort frequencies) comes from counts the base run kept
(linkage.jobs.kept_run) with the batch's added, counted over every record where none fit.

Clustering holds the existing entities fixed: each is one node that no other existing entity
may join (``cluster.cluster``'s ``exclusive``), so a new record joins the entity it matches, new
records that match each other make a new entity (its id from ``cluster.stable_entity_ids``, as
a full run would name it), two registry persons never share an entity without a reviewer, and
a new record that would bridge two existing entities goes to review instead of merging them.
Existing entity ids never change.

The run is recorded like any other: a runs row (summary counting the batch's rows read = linked
+ rejected; its rejects stored, each marked with the run that first rejected the row), the full
entity_members and golden rows of the new state, the earlier run's stored pairs carried over
with the new ones, and the usual files. The batch file is kept in ``<output>/added/`` and read
by every later run (linkage/additions.py), so a later full run over all records sees the same
records.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from linkage.core import blocking, cluster, golden, household, standardise
from linkage.core.compare import comparison_vectors
from linkage.core.config import JobConfig, SourceConfig
from linkage.core.model import FSModel
from linkage.engines import local as scoring
from linkage.jobs import evaluate, kept_run
from linkage.jobs.bookkeeping import RunResult, StageTimer, decisions_for, run_summary
from linkage.jobs.ingest import (
    REJECT_COLUMNS,
    ROW_HASH,
    Ingested,
    InputError,
    detect_encoding,
    read_source,
    record_hashes,
)
from linkage.jobs.inputs import as_file_source, keep_copy
from linkage.jobs.run import RecordKeys, cannot_links, classify, finish, pair_tables, plan
from linkage.jobs.staging import staged
from linkage.jobs.state import standardised_job, state_folder
from linkage.store import Store

REFUSED = "would put two registry persons (or a reviewer's non-match) in one entity"
BRIDGE = ("would merge two existing entities, whose ids never change: a reviewer decides "
          "(a full run applies the decision)")
SUFFIXES = {".csv", ".txt", ".xlsx", ".xlsm"}
# Score the batch's pairs over only the records they can touch (score_around's ``scope``);
# False scores over every record, the reference the scoped path must equal.
SCOPED = True


class AddError(RuntimeError):
    """`linkage add` has nothing to link against: no complete run of the job in the store."""


# ----------------------------------------------------------------------------- which source
def read_header(path: Path, encoding: str = "auto", sheet: str | None = None) -> list[str]:
    """The first row of a CSV or Excel file, as ingest reads it (stripped, BOM removed)."""
    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        try:
            ws = wb[sheet] if sheet in wb.sheetnames else wb.worksheets[0]
            row = next(ws.iter_rows(values_only=True), ())
        finally:
            wb.close()
        header = ["" if v is None else str(v) for v in row]
    else:
        enc = detect_encoding(path) if encoding == "auto" else encoding
        try:
            with open(path, encoding=enc, newline="") as fh:
                header = next(csv.reader(fh), [])
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: header is not valid {enc}: {exc.reason}") from exc
    return [h.strip().lstrip("\ufeff") for h in header]


def resolve_source(config: JobConfig, path: Path, name: str | None = None) -> SourceConfig:
    """The configured source whose column mapping the file follows: named, or found by header."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file {path} does not exist")
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"file {path}: expected a .csv or .xlsx file")
    if name is not None:
        if name not in {s.name for s in config.sources}:
            raise InputError(f"--source {name!r} is not a source of job '{config.job}'; its "
                             f"sources are: {', '.join(s.name for s in config.sources)}")
        source = config.source(name)
        header = read_header(path, source.encoding, source.sheet)
        wanted = {"record_id": source.record_id, **source.fields}
        lacking = [f"{std} -> '{col}'" for std, col in wanted.items() if col not in header]
        if lacking:
            raise InputError(f"file {path}: source '{name}' maps column(s) not in its header: "
                             f"{'; '.join(lacking)}. Header has: {', '.join(header)}")
        return source
    header = set(read_header(path))
    missing = {s.name: [c for c in [s.record_id, *s.fields.values()] if c not in header]
               for s in config.sources}
    fits = [s for s in config.sources if not missing[s.name]]
    if len(fits) == 1:
        return fits[0]
    if fits:
        raise InputError(f"file {path}: the header fits sources {', '.join(s.name for s in fits)}; "
                         "say which with --source")
    lacks = "; ".join(f"{n} lacks column(s) {', '.join(repr(c) for c in cols)}"
                      for n, cols in missing.items())
    raise InputError(f"file {path}: the header fits no source of job '{config.job}': {lacks}. "
                     f"Header has: {', '.join(sorted(header))}")


# ----------------------------------------------------------------------------- the add run
def add(
    config: JobConfig,
    path: Path,
    source: str | None = None,
    out_dir: Path | None = None,
    progress: bool = False,
    truth_path: Path | None = None,
) -> RunResult:
    """Link the records of ``path`` against the store's latest complete run and record the run."""
    comparisons = plan(config)
    src = resolve_source(config, Path(path), source)
    out_dir = Path(out_dir or config.output)
    store = Store(config.store)
    try:
        base = store.last_complete_run(config.job)
        if base is None:
            raise AddError(f"the store {config.store} holds no complete run of job "
                           f"'{config.job}': run `linkage run` first; `add` links new records "
                           "against its entities")
        run_id = store.begin_run(config.job)
        kept = keep_copy(config, src, Path(path), run_id, out_dir)
        try:
            with staged(out_dir) as staging:
                result = _add(config, comparisons, src, Path(kept["file"]), kept, base, staging,
                              store, run_id, progress, truth_path, state_folder(config, out_dir))
            result.out_dir = out_dir
        except BaseException as exc:
            store.fail_run(run_id, f"{type(exc).__name__}: {exc}")
            Path(kept["file"]).unlink(missing_ok=True)
            raise
    finally:
        store.close()
    return result


@dataclass
class _Attached:
    entity_ids: np.ndarray  # per record of the state
    refused: np.ndarray  # indices of the new pairs clustering refused
    reasons: np.ndarray  # why, one per refused pair
    joined: int  # new records that joined an existing entity
    new_entities: int


def _add(config, comparisons, src, path, kept, base, out_dir, store, run_id, progress,
         truth_path, state_dir) -> RunResult:
    timer = StageTimer(progress)
    roles = {s.name: s.role for s in config.sources}
    fields = {f for s in config.sources for f in s.fields}

    with timer.stage("load"):
        members, fs, contested_keys = _base_state(store, base, comparisons, state_dir)
        # The job's records as a full run reads them, unchanged files from the kept state.
        state_data, state = standardised_job(config, store, progress, state_dir=state_dir)
        linked, gone = _membership(state_data.records, members)
        is_linked = pd.notna(linked)
        existing = (state_data.records if is_linked.all() else
                    state_data.records[is_linked].reset_index(drop=True))
        whole_inputs = len(existing) == len(state_data.records) == len(members)
        inputs = _Keys.of(state_data.records)
        del state_data
    with timer.stage("ingest"):
        frame, rejects, encoding = read_source(as_file_source(src, path), progress)
        read = len(frame) + len(rejects)
        frame, rejects = _reject_known(frame, rejects, inputs, _Keys.of(members), src, path,
                                       kept)
    with timer.stage("standardise"):
        for f in fields - set(frame.columns):
            frame[f] = None
        new_std = standardise.standardise_records(frame, fields).reset_index(drop=True)

    records = pd.concat([existing, new_std], ignore_index=True, sort=False)
    n, n_old = len(records), len(existing)
    new = np.arange(n) >= n_old
    authority = records["source"].map(roles).eq("authority").to_numpy()
    keys = _Keys.of(records)
    decided = decisions_for(store, keys.positions(_decision_keys(store)))
    with timer.stage("counts"):
        stats, counted = _field_stats(config, comparisons, fs, state_dir, base, state.inputs(),
                                      records, new_std, whole_inputs)
    scored, scope = _score_new(records, config, comparisons, fs, new, decided, timer,
                               progress, stats, store.correspondence_decisions())
    scope.update(counted)
    prob, band = classify(scored.weight, scored.decision, config)

    with timer.stage("cluster"):
        old_ids = np.full(n, None, dtype=object)
        old_ids[:n_old] = linked[is_linked]
        attached = _attach(records, scored, band, old_ids, authority, decided, new)
        contested = keys.among(*contested_keys)
        contested[scored.left[attached.refused]] = True
        contested[scored.right[attached.refused]] = True

    with timer.stage("golden"):
        settings = kept_run.job_settings(config)
        previous = kept_run.golden_rows(state_dir, base, state.inputs(), settings)
        gold, known = _golden(config, records, attached.entity_ids, contested, new, gone,
                              previous)

    clusters = pd.DataFrame({"source": records["source"], "record_id": records["record_id"],
                             "entity_id": attached.entity_ids})
    pairs, review = pair_tables(records, scored, prob, band, attached.refused, attached.reasons)
    review = _with_waiting(review, store, base)
    data = Ingested(frame, rejects, {src.name: read}, {src.name: encoding})
    summary = run_summary(replace(config, sources=(src,)), data, new_std, scored, band, gold,
                          attached, review, timer, run_id)
    summary["mode"] = "add"
    summary["engine"] = "local"  # a batch is small: always scored on this machine
    summary["base_run"] = base
    summary["golden_rows"] = {"recomputed": int(len(gold) - (0 if known is None else len(known))),
                              "from_base_run": int(0 if known is None else len(known))}
    summary["add_scope"] = scope
    summary["kept_state"] = state.summary()
    summary["added"] = {**kept, "rows": read}
    if new_std.empty:  # nothing linked: later runs need not read the batch again
        Path(kept["file"]).unlink(missing_ok=True)
        summary["added"]["file"] = None
    summary["state"] = {
        "records": n,
        "records_before": int(len(members)),
        "entities_before": int(members["entity_id"].nunique()),
        "joined_existing": attached.joined,
        "new_entities": attached.new_entities,
        "bridges_to_review": int(sum(r == BRIDGE for r in attached.reasons)),
        "gone_from_inputs": int(len(members) - n_old),  # linked before, no longer in the files
        "inputs_not_linked": int((~is_linked).sum()),  # `linkage run` links
    }
    if truth_path is not None:
        insurance = {s.name for s in config.sources if s.role == "insurance"}
        summary["accuracy"] = evaluate.evaluate(
            clusters, pd.read_csv(truth_path, dtype=str), insurance,
            authority_sources=config.authority_sources, review=review,
            hard_negatives=evaluate.read_hard_negatives(truth_path))
    result = RunResult(run_id, out_dir, summary, records, clusters, gold, review, fs, config,
                       rejects, scored.weight.astype(np.float32))
    batch = [[src.name, kept["sha256"]]] if summary["added"]["file"] else []
    keeping = kept_run.Keeping(state_dir, None if state.inputs() is None
                               else state.inputs() + batch, settings, known, stats,
                               kept_run.stats_settings(config))
    return finish(result, store, pairs, timer, carry_pairs_from=base, previous=(base, members),
                  keeping=keeping, correspondences=scored.households)


def _with_waiting(review: pd.DataFrame, store: Store, base: str) -> pd.DataFrame:
    """The batch's pairs for review and those of the base run still waiting, as the store
    keeps both for this run: the office files (the registry's double registrations, the
    deferred roster) must not forget the base run's because a batch was added."""
    from linkage.outputs.export import review_pairs_of

    waiting = review_pairs_of(store, base)
    if waiting.empty:
        return review
    key = ["source_l", "record_l", "source_r", "record_r"]
    fresh = pd.MultiIndex.from_frame(review[key].astype(str))
    waiting = waiting[~pd.MultiIndex.from_frame(waiting[key].astype(str)).isin(fresh)]
    out = pd.concat([review, waiting], ignore_index=True, sort=False)
    out = out.sort_values("probability", key=lambda p: (p.astype(float) - 0.5).abs(),
                          kind="stable")
    return out.reset_index(drop=True)


def _golden(config, records, entity_ids, contested, new, gone, previous):
    """The new state's golden rows, and the digests of those unchanged from the base run.

    With the base run's rows kept (linkage.jobs.kept_run), survivorship runs only for the
    entities the batch touched: those a new record joined or makes, those holding a record the
    batch made contested, those that lost a record no longer in the inputs (``gone``); without
    them, for every entity, as a full run does.
    """
    roles = {s.name: s.role for s in config.sources}
    schemes = {s.name: s.scheme for s in config.sources if s.scheme}
    if previous is None:
        return golden.golden_records(records, entity_ids, config.precedence, roles, schemes,
                                     contested), None
    rows, digests = previous
    at = np.flatnonzero(contested)  # a few records: their entities' rows looked up alone
    was = rows.loc[rows["entity_id"].isin(entity_ids[at]).to_numpy(), ["entity_id",
                                                                        "needs_review"]]
    was_contested = pd.Series(was["needs_review"].to_numpy(dtype=bool),
                              index=was["entity_id"].to_numpy(dtype=object))
    newly = at[~was_contested.reindex(entity_ids[at], fill_value=False).to_numpy(dtype=bool)]
    changed = np.concatenate([entity_ids[new], entity_ids[newly], gone]).astype(object)
    touched = pd.Series(entity_ids).isin(changed).to_numpy()  # hashed, unlike np.isin on objects
    fresh = golden.golden_records(records[touched], entity_ids[touched], config.precedence,
                                  roles, schemes, contested[touched])
    # every base entity keeps a record unless one lost them all: only then are ids looked up
    return kept_run.updated(rows, digests, fresh, entity_ids if len(gone) else None)


def _text(values: pd.Series) -> np.ndarray:
    """``values.astype(str)`` as an object array, without a pass when it is text already."""
    cells = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(cells, skipna=False) == "string":
        return cells
    return values.astype(str).to_numpy(dtype=object)


@dataclass
class _Keys:
    """Records' (source, record_id) as text, looked up without a MultiIndex of them all:
    hashing millions of key pairs took seconds at a million persons, and `add` looks up a
    few (the batch's, the reviewers' decisions, the refused merges)."""

    source: np.ndarray
    record_id: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Keys:
        return cls(_text(frame["source"]), _text(frame["record_id"]))

    def among(self, source, record_id) -> np.ndarray:
        """Per record whether its key is one of the (source, record_id) pairs given: both
        sides narrowed to the record ids they share (hashed) first, then compared as pairs."""
        source = _text(pd.Series(source, dtype=object))
        record_id = _text(pd.Series(record_id, dtype=object))
        out = np.zeros(len(self.record_id), dtype=bool)
        near = np.flatnonzero(pd.Series(self.record_id, dtype=object).isin(
            pd.unique(record_id)).to_numpy())
        if not near.size:
            return out
        theirs = pd.Series(record_id, dtype=object).isin(
            pd.unique(self.record_id[near])).to_numpy()
        wanted = pd.MultiIndex.from_arrays([source[theirs], record_id[theirs]])
        out[near] = pd.MultiIndex.from_arrays(
            [self.source[near], self.record_id[near]]).isin(wanted)
        return out

    def positions(self, keys: tuple[np.ndarray, np.ndarray]) -> pd.Series:
        """The positions of the records holding one of ``keys``, indexed by (source,
        record_id): what ``decisions_for`` looks the decisions' records up in."""
        at = np.flatnonzero(self.among(*keys))
        return pd.Series(at, index=pd.MultiIndex.from_arrays([self.source[at],
                                                              self.record_id[at]]))


def _decision_keys(store: Store) -> tuple[np.ndarray, np.ndarray]:
    """The (source, record_id) of every record a reviewer's decision names."""
    d = store.active_decisions()
    return (pd.concat([d["source_l"], d["source_r"]]).to_numpy(dtype=object),
            pd.concat([d["record_l"], d["record_r"]]).to_numpy(dtype=object))


def _membership(records: pd.DataFrame, members: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per input record its entity in the base run (None: not linked by it), and the entities
    of base members the inputs no longer hold. Over the base run's own files the records come
    in the base run's order: then the two lists are compared, not looked up."""
    mine, theirs = _Keys.of(records), _Keys.of(members)
    ids = members["entity_id"].to_numpy(dtype=object)
    if (len(mine.record_id) == len(theirs.record_id) and (mine.record_id == theirs.record_id).all()
            and (mine.source == theirs.source).all()):
        return ids, ids[:0]
    src, src_names = pd.factorize(np.concatenate([mine.source, theirs.source]))
    rid, _ = pd.factorize(np.concatenate([mine.record_id, theirs.record_id]))
    code = rid.astype(np.int64) * max(len(src_names), 1) + src
    code_mine, code_theirs = code[:len(mine.source)], pd.Index(code[len(mine.source):])
    entity = np.append(ids, None)[code_theirs.get_indexer(code_mine)]
    return entity, ids[~code_theirs.isin(code_mine)]


def _base_state(store: Store, base: str, comparisons,
                state_dir: Path) -> tuple[pd.DataFrame, FSModel, tuple]:
    """Members, model and contested records (those in pairs clustering refused) of a run."""
    members = kept_run.members(state_dir, base, store)
    fs = FSModel.from_dict(store.run_model(base))
    fs.check_matches(comparisons)
    refused = pd.DataFrame(store.refused_merges(base), columns=["sl", "rl", "sr", "rr"])
    contested = (pd.concat([refused["sl"], refused["sr"]]).to_numpy(dtype=object),
                 pd.concat([refused["rl"], refused["rr"]]).to_numpy(dtype=object))
    return members, fs, contested


def _reject_known(frame, rejects, inputs: _Keys, linked: _Keys, src, path, kept):
    """New rows whose record id the job already has are rejects: a changed record needs a run."""
    rejects = rejects.assign(file=kept["original"])  # the user's file, not the kept copy
    keys = _Keys.of(frame)
    in_state = keys.among(linked.source, linked.record_id)
    in_inputs = keys.among(inputs.source, inputs.record_id) & ~in_state
    bad = in_state | in_inputs
    if not bad.any():
        return frame, rejects
    reason = np.where(in_state, "record id already linked: a changed record goes through "
                                "`linkage run`",
                      "record id already in the job's input files (not yet linked): run "
                      "`linkage run`")
    more = pd.DataFrame({"source": src.name, "record_id": frame["record_id"].to_numpy()[bad],
                         "file": kept["original"], "row": frame["row"].to_numpy()[bad],
                         "column": src.record_id, "reason": reason[bad]})[REJECT_COLUMNS]
    more[ROW_HASH] = record_hashes(frame[bad], src)
    return frame[~bad].reset_index(drop=True), pd.concat([rejects, more], ignore_index=True)


# ----------------------------------------------------------------------------- pairs
def focused_pairs(
    codes: list[np.ndarray],
    rules,
    source_codes: np.ndarray,
    link_type: str,
    focus: np.ndarray,
    forced: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[blocking.RuleReport]]:
    """The full run's candidate pairs that involve a record in ``focus``, and per-rule counts.

    ``codes`` holds each rule's sub-block code per record (blocking.rule_blocks over every
    record: blocks over budget split as the full run splits them).
    Only blocks holding a focus record are paired, but whole, so a block over the rule's size
    is skipped as the full run skips it.
    """
    n = len(focus)
    found = np.empty(0, dtype=np.int64)
    reports = []
    for rule, code in zip(rules, codes):
        wanted = np.unique(code[focus & (code >= 0)])
        sub = np.flatnonzero(np.isin(code, wanted))
        packed, blocks, skipped_blocks, skipped_pairs = blocking.pairs_within_blocks(
            code[sub], rule.max_block_size)
        a, b = sub[packed // max(sub.size, 1)], sub[packed % max(sub.size, 1)]
        keep = focus[a] | focus[b]
        packed = blocking.pack(a[keep], b[keep], n)
        packed = blocking.unique_sorted(
            blocking.filter_packed_by_link_type(packed, n, source_codes, link_type))
        before = found.size
        found = blocking.unique_sorted(np.concatenate([found, packed]))
        reports.append(blocking.RuleReport(rule.name, int(packed.size), int(found.size - before),
                                           blocks, skipped_blocks, skipped_pairs))
    if forced is not None and forced.size:
        found = blocking.unique_sorted(np.concatenate([found, forced]))
    return (found // n).astype(np.int32), (found % n).astype(np.int32), reports


def score_around(records, config, comparisons, fs, focus: np.ndarray,
                 forced: np.ndarray | None = None, stage=None, progress: bool = False,
                 household_decisions: pd.DataFrame | None = None, scope: bool = True,
                 stats: scoring.FieldStats | None = None):
    """Every candidate pair a full run makes that involves a record in ``focus`` (and the
    ``forced`` packed pairs), scored as the full run scores it: exactly so when ``forced``
    holds every reviewer-decided pair, as the full run's candidates do.

    Term frequencies and the name model come from all of ``records`` (``stats``: counted
    over them already, :class:`linkage.engines.local.FieldStats`). A pair's household
    context reads every pair touching its two households, so with household context on, the
    pairs of every household a focus record or one of its candidates belongs to are scored as
    well: the result holds those context pairs too; the household step adds the member pairs
    of their correspondences. With ``scope``, blocking, comparison and the household step run
    over only the records those pairs can touch (:func:`context`), in their order, and the
    pairs come back in positions of ``records``: the same pairs and weights at a cost that
    follows the focus, not the job (over every record where the context is most of them).
    Returns the weighed pairs (:class:`linkage.engines.local.Weighed`), the per-rule counts
    of the focus pairs and how many records were scored over. ``household_decisions``:
    reviewers' decisions on correspondences, which the household step honours as in a full
    run.
    """
    from contextlib import nullcontext

    stage = stage or (lambda name: nullcontext())
    n = len(records)
    with stage("block"):
        stats = stats or scoring.FieldStats.learn(records, config, comparisons, fs)
        at = context(records, config, focus, forced) if scope else None
        if at is None or at.size > n // 2:  # a copy of most records saves nothing
            at = np.arange(n)
        if at.size < n:
            records = records.iloc[at].reset_index(drop=True)
            focus = focus[at]
            if forced is not None and forced.size:
                forced = blocking.pack(np.searchsorted(at, forced // n),
                                       np.searchsorted(at, forced % n), at.size)
        codes = [blocking.rule_blocks(records, rule).codes for rule in config.blocking]
        source_codes = pd.factorize(records["source"])[0]
        left, right, reports = focused_pairs(codes, config.blocking, source_codes,
                                             config.link_type, focus, forced)
        if config.household.enabled and "household_id" in records and len(left):
            hh = household.household_codes(records)
            involved = focus.copy()
            involved[left] = True
            involved[right] = True
            touched = np.unique(hh[involved & (hh >= 0)])
            wider = focus | np.isin(hh, touched)
            left, right, _ = focused_pairs(codes, config.blocking, source_codes, config.link_type,
                                           wider, forced)
    with stage("compare"):
        gamma = comparison_vectors(records, comparisons, left, right, config.chunk_size, progress)
    with stage("score"):
        weighed = scoring.weigh(records, config, comparisons, fs, left, right, gamma,
                                household_decisions, stats)
    if at.size < n:  # positions in the subset -> in records (the order is the same)
        weighed.left = at[weighed.left].astype(np.int32)
        weighed.right = at[weighed.right].astype(np.int32)
    return weighed, reports, int(at.size)


def context(records: pd.DataFrame, config: JobConfig, focus: np.ndarray,
            forced: np.ndarray | None = None) -> np.ndarray:
    """Sorted positions of the records :func:`score_around` reads for ``focus``: every block
    (by each rule's keys, before any split) of a focus record, the households of those records,
    the blocks of those households' members, and whole households of everything taken.

    A block comes whole, so it splits and pairs as among all records; a household comes whole,
    so its size, members and codes' order are those of all records. That covers the two hops
    score_around takes (focus -> candidates -> their households -> those households' pairs)
    and every member pair the household step adds; the ``forced`` pairs' records come too.
    """
    n = len(records)
    memo: dict = {}
    keys = [blocking.block_keys(records, rule.keys, memo) for rule in config.blocking]
    hh = (household.household_codes(records)
          if config.household.enabled and "household_id" in records else None)

    def blocks_of(mask: np.ndarray) -> np.ndarray:
        out = mask.copy()
        for key in keys:
            out |= np.isin(key, np.unique(key[mask & (key >= 0)]))
        return out

    def households_of(mask: np.ndarray) -> np.ndarray:
        if hh is None:
            return mask
        return mask | np.isin(hh, np.unique(hh[mask & (hh >= 0)]))

    ends = np.zeros(n, dtype=bool)
    if forced is not None and forced.size:
        ends[forced // n] = True
        ends[forced % n] = True
    focus = np.asarray(focus, dtype=bool)
    around = households_of(blocks_of(focus) | ends)  # focus, candidates, their households
    return np.flatnonzero(households_of(blocks_of(around) | ends))


def _field_stats(config, comparisons, fs, state_dir, base, inputs, records, new_std,
                 whole_inputs: bool) -> tuple[scoring.FieldStats, dict]:
    """What the weights read of every record: the base run's kept counts with the batch's
    added, else counted over every record (and why), for the summary's ``add_scope``."""
    tf_columns, tf_column = scoring.FieldStats.columns(records, comparisons, fs)
    kept = None
    if whole_inputs:  # the kept counts are of every record but the batch
        kept = kept_run.field_stats(state_dir, base, inputs, kept_run.stats_settings(config),
                                    config, tf_columns, tf_column, len(records) - len(new_std))
    stats = kept.plus(new_std, config, comparisons, fs) if kept is not None else None
    if stats is not None:
        return stats, {"counts": "kept"}
    why = ("the base run's records are not all in the inputs" if not whole_inputs else
           "the base run kept no counts for these inputs and settings" if kept is None else
           "the batch brings a later birth year")
    return (scoring.FieldStats.learn(records, config, comparisons, fs),
            {"counts": "counted", "counts_why": why})


def _score_new(records, config, comparisons, fs, new, decided, timer,
               progress, stats=None,
               household_decisions=None) -> tuple[scoring.ScoredPairs, dict]:
    """Score the pairs involving a new record; pairs of the households they touch as context.
    Also the summary's ``add_scope``: over how many records the pairs were scored."""
    n = len(records)
    involves_new = new[decided["l"].to_numpy()] | new[decided["r"].to_numpy()]
    mine = decided[involves_new]
    forced = blocking.pack(mine["l"].to_numpy(), mine["r"].to_numpy(), n) if len(mine) else None
    weighed, reports, scored_over = score_around(records, config, comparisons, fs, new, forced,
                                                 timer.stage, progress,
                                                 household_decisions, SCOPED, stats)
    scope = ({"mode": "touched", "records_scored": scored_over, "records": n}
             if scored_over < n else
             {"mode": "whole", "records_scored": n, "records": n,
              "why": "scoped scoring is off" if not SCOPED
              else "the batch's blocks and households hold more than half the records"})
    keep = new[weighed.left] | new[weighed.right]
    mine = scoring.Weighed(**{name: getattr(weighed, name)[keep] for name in (
        "left", "right", "gamma", "parts", "household", "weight", "cannot", "note")},
        households=weighed.households, rule=None, prior=weighed.prior, added=None)
    return scoring.ScoredPairs.of(mine, decided, n, fs, reports, comparisons), scope


# ----------------------------------------------------------------------------- clustering
def _attach(records, scored, band, old_ids, authority, decided, new) -> _Attached:
    """Entity ids of the new state: existing entities fixed, new records joined or grouped.

    Each existing entity is one node (``exclusive``: no two may meet); each new record is a
    node of its own. A reviewer's "match" links unconditionally, except where reviewers'
    matches would join two existing entities: those become ordinary edges, refused into review.
    """
    n_old = int((~new).sum())
    entity_codes, entity_names = pd.factorize(old_ids[:n_old])
    k = len(entity_names)
    node = np.concatenate([entity_codes, k + np.arange(len(new) - n_old)]).astype(np.int64)
    nodes = k + len(new) - n_old
    exclusive = np.arange(nodes) < k
    auth = np.zeros(nodes, dtype=bool)
    auth[node[authority]] = True

    left, right, weight, decision = scored.left, scored.right, scored.weight, scored.decision
    match = np.flatnonzero(band == 0)
    must = match[decision[match] == "match"]
    must = must[node[left[must]] != node[right[must]]]
    loose = _must_joining_existing(node[left[must]], node[right[must]], exclusive, nodes)
    # Above every model edge, strongest first among themselves.
    top = float(weight.max() - weight.min()) + 1.0 if len(weight) else 1.0
    edges = np.concatenate([match[decision[match] != "match"], must[loose]])
    edge_weight = np.concatenate([weight[match[decision[match] != "match"]],
                                  weight[must[loose]] + top])
    must = must[~loose]
    cannot = decided[(decided["decision"] == "non_match").to_numpy()
                     & (new[decided["l"].to_numpy()] | new[decided["r"].to_numpy()])]
    cannot_l, cannot_r = cannot_links(cannot, scored)
    result = cluster.cluster(
        nodes, node[left[edges]], node[right[edges]], edge_weight, auth,
        must_link=(node[left[must]], node[right[must]]),
        cannot_link=(node[cannot_l], node[cannot_r]), exclusive=exclusive)
    labels = result.labels

    # A component holds at most one existing entity: its id, or a new one for new records only.
    owner = np.full(labels.max() + 1 if nodes else 0, None, dtype=object)
    owner[labels[:k]] = np.asarray(entity_names, dtype=object)
    ids = old_ids.copy()
    new_labels = labels[node[new]]
    joined = pd.notna(owner[new_labels])
    ids[np.flatnonzero(new)[joined]] = owner[new_labels[joined]]
    fresh = np.flatnonzero(new)[~joined]
    if fresh.size:
        made = cluster.stable_entity_ids(records.iloc[fresh], new_labels[~joined],
                                         authority[fresh])
        clash = pd.Series(made).isin(set(entity_names)).to_numpy()
        made[clash] = made[clash] + "-n"
        ids[fresh] = made

    refused = edges[result.refused]
    owner_l, owner_r = owner[labels[node[left[refused]]]], owner[labels[node[right[refused]]]]
    bridge = pd.notna(owner_l) & pd.notna(owner_r) & (owner_l != owner_r)
    # The others in the full run's words, naming the registry records (or the reviewer's
    # non-match) that collide: each node stands for its first registry record, else its first.
    # (the text made for the few records a reason names, not for every record)
    first = np.lexsort((~authority, node))
    node_record = np.full(nodes, -1, dtype=np.int64)
    nodes_in_order, at = np.unique(node[first], return_index=True)
    node_record[nodes_in_order] = first[at]
    named = cluster.refusal_reasons(labels, node[left[refused]], node[right[refused]], auth,
                                    _NodeKeys(RecordKeys(records), node_record),
                                    (node[cannot_l], node[cannot_r]))
    reasons = np.where(bridge, BRIDGE, np.where(named == "", REFUSED, named)).astype(object)
    order = np.argsort(refused)
    return _Attached(ids, refused[order], reasons[order], int(joined.sum()),
                     int(len(np.unique(new_labels[~joined]))))


@dataclass
class _NodeKeys:
    """``source:record_id`` of the record each clustering node stands for, made when asked."""

    keys: RecordKeys
    record: np.ndarray  # per node, the position of its record

    def __getitem__(self, node: int) -> str:
        return self.keys[int(self.record[node])]


def _must_joining_existing(ml_l, ml_r, exclusive, nodes) -> np.ndarray:
    """Per reviewer match: whether reviewers' matches chain two existing entities together."""
    if ml_l.size == 0:
        return np.zeros(0, dtype=bool)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(ml_l.size, dtype=np.int8), (ml_l, ml_r)), shape=(nodes, nodes))
    _, comp = connected_components(graph, directed=False)
    existing = np.bincount(comp, weights=exclusive.astype(float), minlength=comp.max() + 1)
    return existing[comp[ml_l]] > 1
