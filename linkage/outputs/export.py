"""`linkage export`: write the office outputs again from the store's latest complete run.

Entity membership and golden rows come from the store, so the files describe exactly the run
reviewers and auditors see, even after the output folder was cleaned. The input files are read
and standardised again (from the kept state where unchanged: linkage.jobs.state) for the fields
the store does not keep: what the clerks entered, tiers, receipts. The store keeps pair weights
only for the match and review bands, so the report's histogram shows those and says so.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from linkage.core import changes
from linkage.core.config import JobConfig
from linkage.core.golden import GOLDEN_COLUMNS
from linkage.jobs.state import standardised_job
from linkage.outputs.view import RunView
from linkage.outputs.writer import write_outputs
from linkage.store import StatePruned, Store

BOOL_COLUMNS = ["duplicate_enrolment", "id_repaired", "deceased", "needs_review"]


class ExportError(RuntimeError):
    """Nothing to export: the store holds no complete run of the job."""


def load_latest(config: JobConfig) -> RunView:
    """The store's latest complete run of the job, joined to freshly standardised inputs."""
    store = Store(config.store)
    run_id = store.last_complete_run(config.job)
    if run_id is None:
        raise ExportError(f"the store {config.store} holds no complete run of job "
                          f"'{config.job}': run `linkage run` first")
    members = store.members(run_id)
    model = store.run_model(run_id)
    summary = store.run_summary(run_id)
    gold = pd.DataFrame([json.loads(r) for r in store.golden_records(run_id)],
                        columns=GOLDEN_COLUMNS)
    weights = store.stored_weights(run_id)
    review = review_pairs_of(store, run_id)
    for column in BOOL_COLUMNS:
        gold[column] = gold[column].fillna(False).astype(bool)
    for column in ("n_records", "n_enrolments"):
        gold[column] = gold[column].fillna(0).astype(int)

    records = standardised_job(config, store)[0].records  # unchanged files: the kept state
    key = pd.MultiIndex.from_arrays([records["source"].astype(str),
                                     records["record_id"].astype(str)])
    entity = pd.Series(members["entity_id"].to_numpy(), index=pd.MultiIndex.from_arrays(
        [members["source"].astype(str), members["record_id"].astype(str)]))
    entity = entity[~entity.index.duplicated()]
    entity_id = entity.reindex(key).to_numpy(dtype=object)
    known = pd.notna(entity_id)
    notes = [f"Exported from the store's run {run_id}; input files read again."]
    if not known.all():
        notes.append(f"{int((~known).sum()):,} records in the input files now were not in that "
                     "run and are left out; run `linkage run` to link them.")
    if known.sum() < len(members):
        notes.append(f"{len(members) - int(known.sum()):,} records of that run are no longer in "
                     "the input files; their entities keep them in the golden rows.")
    return RunView(
        run_id=run_id,
        summary=summary,
        records=records[known].reset_index(drop=True),
        entity_id=entity_id[known],
        golden=gold,
        config=config,
        model=model,
        weights=weights,
        weights_note="only the pairs the store keeps (match and review bands)",
        notes=notes,
        review=review,
        successors=_successors(store, config.job, run_id, members),
    )


def _successors(store: Store, job: str, run_id: str,
                members: pd.DataFrame) -> pd.DataFrame | None:
    """entity_changes.csv of the run, as the run wrote it: against the job's complete run
    before it (empty for its first; left out when keep_runs has deleted that run's state)."""
    order = [r for r, _ in store.complete_run_summaries(job)]
    at = order.index(run_id)
    if at == 0:
        return pd.DataFrame(columns=changes.SUCCESSOR_COLUMNS)
    try:
        before = store.members(order[at - 1])
    except StatePruned:
        return None
    return changes.entity_successors(order[at - 1], before, members)


def review_pairs_of(store: Store, run_id: str) -> pd.DataFrame:
    """The run's pairs for review as the store keeps them, closest to the threshold first (the
    order of review_pairs.csv)."""
    from linkage.store.review import pairs_to_review

    columns = ["source_l", "record_l", "source_r", "record_r", "weight", "probability", "band",
               "reason"]
    rows = [[getattr(r, c) for c in columns] for r in pairs_to_review(store.engine, run_id)]
    frame = pd.DataFrame(rows, columns=columns)
    frame = frame.sort_values("probability", key=lambda p: (p - 0.5).abs(), kind="stable")
    return frame.reset_index(drop=True)


def export_latest(config: JobConfig, out_dir: Path | None = None) -> tuple[RunView, dict]:
    """Write the outputs of the latest complete run into ``out_dir`` (default: the config's)."""
    from linkage.jobs.staging import staged

    view = load_latest(config)
    with staged(Path(out_dir or config.output)) as staging:  # whole files even if killed
        manifest = write_outputs(view, staging)
    return view, manifest
