"""An entity id's life across a job's complete runs: created, gained or lost records, split,
merged into another, retired; and the reviewers' decisions that took effect at each run.

The card office issues a card to an entity; when that entity later merges into another, the card
must be traceable to the person it now belongs to. Entity ids never change meaning (a merged-away
id is retired and points to the entity that took its records), so the history is read off the
memberships each run stored: nothing extra is written per run, and a store made before this
command existed has its whole history already.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from linkage.store import Store
from linkage.store.history import entity_trail


@dataclass
class Event:
    run_id: str
    finished_at: datetime | None
    mode: str  # "run" or "add"
    kind: str  # created, gained, lost, split, merged_into, absorbed, retired
    records: int  # how many records the event concerns
    other: list[str] = field(default_factory=list)  # the other entities involved
    decisions: list[str] = field(default_factory=list)  # reviewers' decisions behind it

    def line(self) -> str:
        when = self.finished_at.strftime("%Y-%m-%d %H:%M") if self.finished_at else "?"
        others = ", ".join(self.other)
        if self.kind == "created":
            text = f"created with {self.records} record(s)"
        elif self.kind == "gained":
            text = f"gained {self.records} record(s)" + (f" from {others}" if others
                                                        else " (new records)")
        elif self.kind == "lost":
            text = f"lost {self.records} record(s) (no longer in the inputs)"
        elif self.kind == "split":
            text = f"split: {self.records} record(s) now in {others}"
        elif self.kind == "absorbed":
            text = f"took the records of {others} (merged into this one)"
        elif self.kind == "merged_into":
            text = (f"merged into {others}: this id is retired, its successor is "
                    f"{self.other[0]}")
        else:
            text = "retired: none of its records is in the inputs any more"
        out = f"{when}  {self.run_id} ({self.mode})  {text}"
        for d in self.decisions:
            out += f"\n      reviewer decision: {d}"
        return out


@dataclass
class History:
    entity_id: str
    events: list[Event]

    @property
    def successor(self) -> str | None:
        """The entity that took this one's records, when it was merged away."""
        merged = [e for e in self.events if e.kind == "merged_into"]
        return merged[-1].other[0] if merged else None


class UnknownEntity(LookupError):
    """No complete run of the job ever held the id."""


def entity_history(store: Store, job: str, entity_id: str) -> History:
    """The id's events, oldest first, over the job's complete runs."""
    done, own, where, decided = entity_trail(store.engine, job, entity_id)
    if own.empty:
        raise UnknownEntity(f"no complete run of job '{job}' holds entity {entity_id}")
    events: list[Event] = []
    previous = None
    for i, r in enumerate(done):
        mode = _mode(r.summary)
        now = set(map(tuple, own.loc[own["run_id"] == r.run_id, ["source", "record_id"]]
                      .to_numpy()))
        if previous is None:
            if now:
                events.append(Event(r.run_id, r.finished_at, mode, "created", len(now)))
            previous = now or None
            continue
        here = where[where["run_id"] == r.run_id].set_index(["source", "record_id"])["entity_id"]
        before = where[where["run_id"] == done[i - 1].run_id].set_index(
            ["source", "record_id"])["entity_id"]
        step: list[Event] = []
        if previous and not now:
            went = here.reindex(list(previous)).dropna()
            if went.empty:
                step.append(Event(r.run_id, r.finished_at, mode, "retired", len(previous)))
            else:
                succ = went.value_counts().index.tolist()
                step.append(Event(r.run_id, r.finished_at, mode, "merged_into", len(went), succ))
        elif now:
            if not previous:
                step.append(Event(r.run_id, r.finished_at, mode, "created", len(now)))
            else:
                gained, lost = now - previous, previous - now
                if gained:
                    came = before.reindex(list(gained)).dropna()
                    from_others = sorted(set(came) - {entity_id})
                    kind = "absorbed" if from_others else "gained"
                    step.append(Event(r.run_id, r.finished_at, mode, kind, len(gained),
                                      from_others))
                if lost:
                    went = here.reindex(list(lost)).dropna()
                    if len(went):
                        step.append(Event(r.run_id, r.finished_at, mode, "split", len(went),
                                          sorted(set(went))))
                    if len(went) < len(lost):
                        step.append(Event(r.run_id, r.finished_at, mode, "lost",
                                          len(lost) - len(went)))
        moved = (now ^ previous) if previous else set()
        if step and moved:
            step[-1].decisions = _decisions_between(decided, moved | (previous or set()) | now,
                                                    done[i - 1].finished_at, r.started_at)
        events += step
        previous = now or None
    return History(entity_id, events)


def _decisions_between(decided: pd.DataFrame, records: set, after, before) -> list[str]:
    """Decisions on pairs touching these records, made between two runs (they took effect at
    the second)."""
    if decided.empty or after is None:
        return []
    at = pd.to_datetime(decided["decided_at"], utc=True)
    lo, hi = pd.Timestamp(after), pd.Timestamp(before)
    lo = lo.tz_localize("UTC") if lo.tzinfo is None else lo
    hi = hi.tz_localize("UTC") if hi.tzinfo is None else hi
    touch = [((a, b) in records) or ((c, d) in records)
             for a, b, c, d in decided[["sl", "rl", "sr", "rr"]].itertuples(index=False)]
    hit = decided[(at > lo) & (at <= hi) & pd.Series(touch, index=decided.index)]
    return [f"{d.decision} on {d.sl}:{d.rl} / {d.sr}:{d.rr} by {d.reviewer} "
            f"({pd.Timestamp(d.decided_at):%Y-%m-%d %H:%M})" for d in hit.itertuples()]


def _mode(summary: str | None) -> str:
    import json

    return (json.loads(summary) if summary else {}).get("mode", "run")

