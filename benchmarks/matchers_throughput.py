"""Throughput of the engine's two hot steps at production scale: standardising and comparing.

Why a script and not a test: it needs minutes and gigabytes, and its output is figures to read
against the targets (standardise >= 100,000 records/s; compare 10M pairs in <= 60 s on 2 cores),
not a pass or a failure.

What it does, with the engine's own functions and the demo job's config (configs/demo.yaml):
  1. a synthetic world (linkage.synth.generate_world) just big enough for --records records,
     its three sources mapped to the standard fields by the config's `fields`, cut to exactly N;
  2. linkage.core.standardise.standardise_records over the eight standard fields of every record
     (FIELDS; --all-fields adds whatever else the config maps, such as carried enrolment text);
  3. candidate pairs from the config's blocking rules (linkage.core.blocking.candidate_pairs),
     subsampled or topped up with random pairs to exactly --pairs, sorted as the engine has them;
  4. linkage.core.compare.comparison_vectors over them with the configured comparisons, in chunks of
     1,000,000; then a second pass over the same chunks timing each comparison on its own.
Peak RSS (ru_maxrss) is printed after each phase. Throughput is on wall-clock time, as the targets
are; CPU seconds and the load average are printed beside it because other jobs on a shared
machine slow the wall clock, not the CPU time (the steps are single-threaded).

    .venv/bin/python benchmarks/matchers_throughput.py [--records N] [--pairs N] [--seed S]
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from linkage.core.blocking import candidate_pairs
from linkage.core.compare import build_comparisons, comparison_vectors
from linkage.core.config import JobConfig, load_config
from linkage.core.standardise import standardise_records
from linkage.synth import World, generate_world

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "demo.yaml"
CHUNK = 1_000_000
FIELDS = ("name", "id_number", "birth_date", "gender", "household_id", "relation", "township",
          "village")
RECORDS_PER_PERSON = 1.845  # police + NCMS + urban records per person in a synthetic world


class Clock:
    """Wall-clock and CPU seconds since start (or the last lap)."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return out


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def peak_rss() -> str:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2:.2f} GiB"


def mapped_records(world: World, config: JobConfig, n_records: int,
                   fields: set[str]) -> pd.DataFrame:
    """The world's sources as the ingest step would hand them over, cut to exactly n_records.

    Each source keeps the same share of the total it has in the world, taken from the top of its
    export (households stay together); blank cells stay text, unmapped fields are None.
    """
    frames = {s.name: getattr(world, s.name) for s in config.sources}
    total = sum(len(f) for f in frames.values())
    if total < n_records:
        raise SystemExit(f"the world holds {total:,} records, fewer than {n_records:,}")
    keep, given = {}, 0
    for k, source in enumerate(config.sources):
        last = k == len(config.sources) - 1
        keep[source.name] = (n_records - given if last
                             else round(n_records * len(frames[source.name]) / total))
        given += keep[source.name]
    parts = []
    for source in config.sources:
        frame = frames[source.name].head(keep[source.name])
        part = pd.DataFrame({"source": source.name,
                             "record_id": frame[source.record_id].to_numpy()})
        for field, column in source.fields.items():
            if field in fields:
                part[field] = frame[column].to_numpy()
        parts.append(part)
    records = pd.concat(parts, ignore_index=True, sort=False)
    for col in records.columns:
        records[col] = records[col].astype(object).where(records[col].notna(), None)
    return records


def exact_pairs(records: pd.DataFrame, config: JobConfig, n_pairs: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Blocked pairs subsampled or topped up with distinct random pairs to exactly n_pairs.

    Returns (left, right, pairs the rules found), sorted by (left, right) as the engine's are.
    """
    n = len(records)
    left, right, _ = candidate_pairs(records, config.blocking, config.link_type)
    blocked = left.astype(np.int64) * n + right
    found = len(blocked)
    if found >= n_pairs:
        packed = np.sort(rng.choice(blocked, n_pairs, replace=False))
    else:
        need, extra = n_pairs - found, np.empty(0, dtype=np.int64)
        while len(extra) < need:
            k = int((need - len(extra)) * 1.05) + 1000
            i, j = rng.integers(0, n, k), rng.integers(0, n, k)
            draw = np.minimum(i, j) * n + np.maximum(i, j)
            draw = draw[(i != j) & ~np.isin(draw, blocked) & ~np.isin(draw, extra)]
            _, first = np.unique(draw, return_index=True)
            extra = np.concatenate([extra, draw[np.sort(first)]])
        packed = np.sort(np.concatenate([blocked, extra[:need]]))
    return (packed // n).astype(np.int32), (packed % n).astype(np.int32), found


def per_comparison(records: pd.DataFrame, comparisons: list, left: np.ndarray,
                   right: np.ndarray, expected: np.ndarray) -> dict[str, np.ndarray]:
    """(wall, CPU) seconds per comparison over comparison_vectors' chunks, and for the takes."""
    columns = sorted({col for c in comparisons for col in c.columns})
    table = records[columns].reset_index(drop=True)
    seconds = {name: np.zeros(2) for name in ["(take both sides)", *(c.name for c in comparisons)]}
    for start in range(0, len(left), CHUNK):
        stop = min(start + CHUNK, len(left))
        clock = Clock()
        lhs, rhs = table.take(left[start:stop]), table.take(right[start:stop])
        seconds["(take both sides)"] += clock.lap()
        for k, comparison in enumerate(comparisons):
            levels = comparison.compare(lhs, rhs)
            seconds[comparison.name] += clock.lap()
            if not np.array_equal(levels, expected[start:stop, k]):
                raise SystemExit(f"{comparison.name}: second pass differs from the first")
    return seconds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--pairs", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--all-fields", action="store_true",
                    help="standardise every field the config maps, not only the eight standard")
    args = ap.parse_args(argv)
    config = load_config(CONFIG)
    rng = np.random.default_rng(args.seed)
    say = print

    persons = math.ceil(args.records / RECORDS_PER_PERSON * 1.01)
    clock = Clock()
    world = generate_world(persons, seed=args.seed)
    fields = {f for s in config.sources for f in s.fields if args.all_fields or f in FIELDS}
    records = mapped_records(world, config, args.records, fields)
    del world
    by_source = records["source"].value_counts().to_dict()
    wall, cpu = clock.lap()
    say(f"world        {persons:,} persons -> {len(records):,} records {by_source}")
    say(f"world        {wall:.1f} s (CPU {cpu:.1f} s); peak RSS {peak_rss()}; {load()}")

    clock = Clock()
    std = standardise_records(records, fields)
    wall, cpu = clock.lap()
    std = std.reset_index(drop=True)  # a copy of every column: not standardising, not timed
    say(f"standardise  records {len(std):,}; fields {', '.join(sorted(fields))}")
    say(f"standardise  {wall:.2f} s (CPU {cpu:.2f} s)  {len(std) / wall:,.0f} records/s "
        f"(CPU-time rate {len(std) / cpu:,.0f})  target >= 100,000; peak RSS {peak_rss()}; "
        f"{load()}")
    del records

    clock = Clock()
    left, right, found = exact_pairs(std, config, args.pairs, rng)
    wall, cpu = clock.lap()
    say(f"pairs        rules {', '.join(rule.name for rule in config.blocking)}")
    say(f"pairs        {len(left):,}: {min(found, len(left)):,} from the {len(config.blocking)} "
        f"blocking rules (which found {found:,}), {max(len(left) - found, 0):,} random; "
        f"{wall:.1f} s (CPU {cpu:.1f} s); peak RSS {peak_rss()}; {load()}")

    comparisons = build_comparisons(config.comparisons)
    clock = Clock()
    gamma = comparison_vectors(std, comparisons, left, right, chunk_size=CHUNK)
    wall, cpu = clock.lap()
    say(f"compare      pairs {len(left):,}; comparisons "
        f"{', '.join(c.name for c in comparisons)}; chunk {CHUNK:,}")
    say(f"compare      {wall:.2f} s (CPU {cpu:.2f} s)  {len(left) / wall:,.0f} pairs/s "
        f"(CPU-time rate {len(left) / cpu:,.0f})  target <= 60 s; peak RSS {peak_rss()}; "
        f"{load()}")

    seconds = per_comparison(std, comparisons, left, right, gamma)
    total = sum(seconds.values())
    say(f"per comparison, second pass over the same chunks ({total[0]:.2f} s, "
        f"CPU {total[1]:.2f} s in all):")
    for name, (wall, cpu) in sorted(seconds.items(), key=lambda kv: -kv[1][1]):
        say(f"  {name:<18} {wall:7.2f} s (CPU {cpu:7.2f} s) {len(left) / wall:>12,.0f} pairs/s "
            f"{cpu / total[1]:6.1%} of CPU")
    say(f"done; peak RSS {peak_rss()}; {load()}")
    sys.stdout.flush()

if __name__ == "__main__":
    main()
