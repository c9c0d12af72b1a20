"""Ours against Splink 5 (DuckDB) and the Record Linkage Toolkit on the same synthetic world.

Why: a data team choosing a tool asks what a general-purpose library, set up competently,
gets on these rosters, how long it takes and how much memory it needs. Every tool runs in its
own child process (so peak RSS is that tool's alone), from the raw CSV files to clusters, and
every tool's clusters are scored by the same linkage.jobs.evaluate.evaluate against the same
truth.csv with the same insurance sources. The peers share one cleaning step
(peer_data.py); their setups are in peer_splink.py and peer_recordlinkage.py.

    .venv/bin/python benchmarks/peers.py --persons 100000

Prints a table and the ratios ours/theirs, and writes peers.json to the workdir. With
--only TOOL it is the child that runs one peer and writes its result to --result.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from harness import (
    PYTHON,
    ensure_world,
    fastest,
    fmt,
    print_table,
    report_failure,
    run_measured,
    run_ours,
)

OURS = "ours (linkage run)"
PEERS = {
    # row label: extra arguments of the child
    "splink (DuckDB)": ["--only", "splink"],
    "recordlinkage (ECM)": ["--only", "recordlinkage", "--rl-classifier", "ecm"],
    "recordlinkage (sum>=4)": ["--only", "recordlinkage", "--rl-classifier", "sum"],
}


def run_child(args: argparse.Namespace) -> int:
    """Inside the measured child: clean, link, write clusters.csv, evaluate, write the result."""
    import peer_data

    from linkage.jobs.evaluate import evaluate

    data = ensure_world(args.workdir, args.persons, args.seed) / "data" / "demo"
    started = time.perf_counter()
    records = peer_data.prepared(data)
    prepare_s = round(time.perf_counter() - started, 2)
    if args.only == "splink":
        from peer_splink import run_splink

        clusters, details = run_splink(records, args.u_max_pairs, args.seed)
    else:
        from peer_recordlinkage import run_recordlinkage

        clusters, details = run_recordlinkage(records, args.rl_classifier)
    details["stages_s"] = {"load_standardise": prepare_s, **details["stages_s"]}
    out = args.result.parent / f"clusters-{args.only}-{args.rl_classifier}.csv"
    clusters.to_csv(out, index=False, encoding="utf-8")
    accuracy = evaluate(clusters, peer_data.load_truth(data), peer_data.INSURANCE_SOURCES)
    args.result.write_text(json.dumps({"details": details, "accuracy": accuracy,
                                       "clusters": str(out)}, indent=2), encoding="utf-8")
    return 0


def measure_peer(label: str, extra: list[str], args: argparse.Namespace, out_dir: Path) -> dict:
    result = out_dir / f"result-{'-'.join(extra[1::2])}.json"
    argv = [str(PYTHON), str(Path(__file__).resolve()), *extra, "--persons", str(args.persons),
            "--workdir", str(args.workdir), "--seed", str(args.seed),
            "--u-max-pairs", str(args.u_max_pairs), "--result", str(result)]
    attempts = []
    for i in range(args.repeat):
        print(f"running {label} ({i + 1}/{args.repeat}) ...", file=sys.stderr, flush=True)
        result.unlink(missing_ok=True)
        child = run_measured(argv)
        ok = child.returncode == 0 and result.is_file()
        attempts.append((child, json.loads(result.read_text(encoding="utf-8")) if ok else None))
    child, found, walls = fastest(attempts)
    row = {"tool": label, "run": child.as_dict(), "wall_s": child.wall_s, "walls_s": walls,
           "peak_rss_gb": child.peak_rss_gb, "ok": found is not None}
    if found is None:
        # Out of memory shows as a kill (exit -9) with no result: a finding, not a crash of ours.
        report_failure(label, child)
        return row
    row["details"] = found["details"]
    row["accuracy"] = found["accuracy"]
    return row


def measure_ours(args: argparse.Namespace) -> dict:
    root = ensure_world(args.workdir, args.persons, args.seed)
    attempts = []
    for i in range(args.repeat):
        print(f"running ours (linkage run) ({i + 1}/{args.repeat}) ...", file=sys.stderr,
              flush=True)
        attempts.append(run_ours(root, args.pin_encodings))
    child, summary, walls = fastest(attempts)
    row = {"tool": OURS, "run": child.as_dict(), "wall_s": child.wall_s, "walls_s": walls,
           "peak_rss_gb": child.peak_rss_gb, "ok": summary is not None}
    if summary is None:
        report_failure("linkage run", child)
        return row
    row["accuracy"] = summary["accuracy"]
    row["details"] = {"stages_s": summary["timings"],
                      "candidate_pairs": summary["blocking"]["candidate_pairs"],
                      "encoding_fallback": child.encoding_fallback}
    return row


def print_results(rows: list[dict]) -> None:
    headers = ["tool", "wall s", "CPU s", "peak RSS GB", "pairwise P", "pairwise R", "pairwise F1",
               "dup P", "dup R"]
    table = []
    for r in rows:
        if not r["ok"]:
            table.append([r["tool"], fmt(r["wall_s"], ".1f"), fmt(r["run"]["cpu_s"], ".1f"),
                          fmt(r["peak_rss_gb"], ".2f"), "failed", "-", "-", "-", "-"])
            continue
        pw, dup = r["accuracy"]["pairwise"], r["accuracy"]["duplicate_enrolment"]
        table.append([r["tool"], fmt(r["wall_s"], ".1f"), fmt(r["run"]["cpu_s"], ".1f"),
                      fmt(r["peak_rss_gb"], ".2f"), f"{pw['precision']:.4f}",
                      f"{pw['recall']:.4f}", f"{pw['f1']:.4f}",
                      f"{dup['precision']:.4f}", f"{dup['recall']:.4f}"])
    print_table(headers, table)
    ours = next((r for r in rows if r["tool"] == OURS and r["ok"]), None)
    peers = [r for r in rows if r["tool"] != OURS and r["ok"]]
    if ours and peers:
        print()
        print_table(["vs", "wall ours/theirs", "CPU ours/theirs", "memory ours/theirs"],
                    [[r["tool"], fmt(ours["wall_s"] / r["wall_s"], ".2f"),
                      fmt(ours["run"]["cpu_s"] / r["run"]["cpu_s"], ".2f"),
                      fmt(ours["peak_rss_gb"] / r["peak_rss_gb"], ".2f")] for r in peers])
    if ours:
        print(f"\nours: code fingerprint {ours['run']['code']}"
              + (" (changed during the run)" if ours["run"]["code_changed"] else ""))
    print()
    print("stage timings inside each tool (s):")
    for r in rows:
        if r["ok"]:
            print(f"  {r['tool']}: {r['details']['stages_s']}")


def _selected(extra: list[str], args: argparse.Namespace) -> bool:
    """With --only in the driver: that tool's row (for recordlinkage, the chosen classifier)."""
    if extra[1] != args.only:
        return False
    if "--rl-classifier" not in extra:
        return True
    return extra[extra.index("--rl-classifier") + 1] == args.rl_classifier


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--persons", type=int, default=100_000)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/linkage-bench"))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--only", choices=["ours", "splink", "recordlinkage"],
                   help="run one tool; for the peers this is the measured child process")
    p.add_argument("--rl-classifier", choices=["ecm", "sum"], default="ecm",
                   help="recordlinkage: ECM (unsupervised) or the tutorial's sum of agreements")
    p.add_argument("--u-max-pairs", type=float, default=1e7,
                   help="Splink: pairs sampled for u (its docs: 1e7 adequate, 1e8-1e9 best)")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs per tool; the fastest is reported, all wall times are kept")
    p.add_argument("--pin-encodings", action="store_true",
                   help="ours: write each source's encoding into the copied config")
    p.add_argument("--result", type=Path, help="child: where to write its result JSON")
    args = p.parse_args(argv)
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)

    if args.only in ("splink", "recordlinkage") and args.result:
        return run_child(args)

    ensure_world(args.workdir, args.persons, args.seed)  # generated once, before any timing
    out_dir = args.workdir / f"persons-{args.persons}" / "out" / "peers"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    if args.only in (None, "ours"):
        rows.append(measure_ours(args))
    for label, extra in PEERS.items():
        if args.only is None or _selected(extra, args):
            rows.append(measure_peer(label, extra, args, out_dir))
    result = {"benchmark": "peers", "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "persons": args.persons, "seed": args.seed, "u_max_pairs": args.u_max_pairs,
              "repeat": args.repeat,
              "rows": rows}
    name = "peers.json" if args.only is None else f"peers-{args.only}.json"
    (args.workdir / name).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print_results(rows)
    print(f"\nresults: {args.workdir / name}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
