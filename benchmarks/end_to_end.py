"""End-to-end cost of `linkage run` as the prefecture grows: time, memory, accuracy per size.

Why: a data team runs the whole prefecture (about 700,000 NCMS enrollees plus the registry and
the urban roster) and re-runs it whenever corrected rosters come in, so what matters is the
wall time and peak memory of the real command on realistic data, and whether they grow with
the records or faster. For each size the synthetic world is generated once (`linkage synth`),
configs/demo.yaml is copied beside it and `linkage run --truth` runs as a child process;
its summary.json supplies the per-stage timings, candidate pairs and accuracy.

    .venv/bin/python benchmarks/end_to_end.py --sizes 100000,300000,1000000

Prints one table and writes end_to_end.json to the workdir.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from harness import (
    ensure_world,
    fastest,
    fmt,
    print_table,
    report_failure,
    run_ours,
)


def measure_size(workdir: Path, persons: int, seed: int, pin_encodings: bool, repeat: int) -> dict:
    """One size: generate (or reuse) the world, run the job (best of repeat), collect figures."""
    root = ensure_world(workdir, persons, seed)
    attempts = []
    for i in range(repeat):
        print(f"running linkage on {persons:,} persons ({i + 1}/{repeat}) ...", file=sys.stderr,
              flush=True)
        attempts.append(run_ours(root, pin_encodings))
    child, summary, walls = fastest(attempts)
    row = {"persons": persons, "seed": seed, "run": child.as_dict(), "walls_s": walls,
           "ok": summary is not None}
    if summary is None:
        report_failure(f"linkage run ({persons:,} persons)", child)
        return row
    timings = summary["timings"]
    pairs = summary["blocking"]["candidate_pairs"]
    accuracy = summary["accuracy"]
    row.update({
        "records": summary["records"]["linked"] + summary["records"]["rejected"],
        "wall_s": child.wall_s,
        "peak_rss_gb": child.peak_rss_gb,
        "candidate_pairs": pairs,
        "compare_pairs_per_s": pairs / timings["compare"] if timings.get("compare") else None,
        "timings": timings,
        "pairwise": accuracy["pairwise"],
        "bcubed": accuracy["bcubed"],
        "duplicate_enrolment": accuracy["duplicate_enrolment"],
        "blocking_recall": summary["blocking_recall"]["recall"],
    })
    return row


def add_growth(rows: list[dict]) -> None:
    """time(size)/time(previous size) beside records(size)/records(previous size).

    A time ratio close to the records ratio means linear growth; well above it means some
    stage (usually blocking on common names) grows faster than the data.
    """
    previous = None
    for row in rows:
        if row.get("ok") and previous is not None:
            row["time_ratio"] = row["wall_s"] / previous["wall_s"]
            row["cpu_ratio"] = row["run"]["cpu_s"] / previous["run"]["cpu_s"]
            row["records_ratio"] = row["records"] / previous["records"]
        if row.get("ok"):
            previous = row


def print_results(rows: list[dict]) -> None:
    headers = ["persons", "records", "wall s", "CPU s", "peak RSS GB", "cand. pairs",
               "pairs/s (compare)", "F1", "dup P", "dup R", "time ratio", "CPU ratio",
               "records ratio"]
    table = []
    for r in rows:
        if not r.get("ok"):
            table.append([f"{r['persons']:,}", "failed"] + ["-"] * (len(headers) - 2))
            continue
        table.append([
            f"{r['persons']:,}", f"{r['records']:,}", fmt(r["wall_s"], ".1f"),
            fmt(r["run"]["cpu_s"], ".1f"), fmt(r["peak_rss_gb"], ".2f"),
            f"{r['candidate_pairs']:,}",
            fmt(r["compare_pairs_per_s"], ",.0f"), fmt(r["pairwise"]["f1"], ".4f"),
            fmt(r["duplicate_enrolment"]["precision"], ".4f"),
            fmt(r["duplicate_enrolment"]["recall"], ".4f"),
            fmt(r.get("time_ratio"), ".2f"), fmt(r.get("cpu_ratio"), ".2f"),
            fmt(r.get("records_ratio"), ".2f"),
        ])
    print_table(headers, table)
    print()
    print("stage timings (s):")
    stages = []
    for r in rows:
        for s in r.get("timings", {}):
            if s not in stages:
                stages.append(s)
    print_table(["persons", *stages],
                [[f"{r['persons']:,}", *(fmt(r["timings"].get(s), ".1f") for s in stages)]
                 for r in rows if r.get("ok")])
    print()
    codes = {f"{r['persons']:,}": r["run"]["code"] + (" (changed during the run)"
                                                       if r["run"]["code_changed"] else "")
             for r in rows}
    print(f"code fingerprint per size: {codes}")
    if len({r["run"]["code"] for r in rows}) > 1:
        print("WARNING: the sizes ran on different code; growth ratios mix versions")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,300000,1000000",
                   help="comma-separated numbers of persons (default: %(default)s)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/linkage-bench"))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeat", type=int, default=1,
                   help="runs per size; the fastest is reported, all wall times are kept")
    p.add_argument("--pin-encodings", action="store_true",
                   help="write each source's encoding into the copied config instead of 'auto'")
    args = p.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    args.workdir.mkdir(parents=True, exist_ok=True)

    rows = []
    for persons in sizes:
        rows.append(measure_size(args.workdir, persons, args.seed, args.pin_encodings,
                                 args.repeat))
        add_growth(rows)
        # Written after every size so a long run that is stopped keeps what it measured.
        result = {"benchmark": "end_to_end", "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "pin_encodings": args.pin_encodings, "sizes": rows}
        (args.workdir / "end_to_end.json").write_text(json.dumps(result, indent=2),
                                                      encoding="utf-8")
    print_results(rows)
    print(f"\nresults: {args.workdir / 'end_to_end.json'}")
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
