"""`linkage add` of a batch against a linked prefecture, versus re-running the whole job.

Why: new enrolments arrive in batches (a township's late enrollees, a school's pupils) and the
data team wants them linked without re-running the prefecture. For a world of N persons
(default 100,000) NCMS households are held out until the largest batch is filled; the job runs
once on the rest (the base state), then for each batch size the base state is restored, the
batch is linked with `linkage add` (measured), and the whole job is re-run over the same records
with `linkage run` on the same config and store (measured): the alternative `add` replaces.
Each measured command is a child process (see harness.py); both score against the truth file.

    .venv/bin/python benchmarks/incremental.py --persons 100000 --batches 1000,10000

Prints one table and writes incremental.json to the workdir; the files each `add` wrote are
kept in `incremental/add-SIZE/` (``--no-rerun`` measures `add` alone). The world is shared with the
other benchmarks (`<workdir>/persons-N/data/demo`, only read); everything else lives in
`<workdir>/persons-N/incremental/`.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from harness import (
    DEMO_CONFIG,
    LINKAGE,
    REPO,
    code_fingerprint,
    ensure_world,
    fmt,
    print_table,
    report_failure,
    run_measured,
)

NCMS_ENCODING = "gbk"


def split_world(world: Path, folder: Path, largest: int, seed: int) -> list[list[str]]:
    """Base files without the held-out NCMS rows (whole households); the held-out rows."""
    with open(world / "ncms.csv", encoding=NCMS_ENCODING, newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    households: dict[str, list[int]] = {}
    for i, row in enumerate(body):
        households.setdefault(row[1], []).append(i)
    order = np.random.default_rng(seed).permutation(sorted(households))
    held: list[int] = []
    for hh in order:
        if len(held) >= largest:
            break
        held.extend(households[hh])
    held = held[:largest]
    out = set(held)
    base = folder / "base"
    base.mkdir(parents=True, exist_ok=True)
    for name in ("police.csv", "urban.csv"):
        shutil.copy(world / name, base / name)
    _write(base / "ncms.csv", [header, *(r for i, r in enumerate(body) if i not in out)])
    return [header, *(body[i] for i in held)]


def _write(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", encoding=NCMS_ENCODING, newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def write_config(folder: Path) -> Path:
    """configs/demo.yaml over the base files, output and store in folder/out."""
    text = DEMO_CONFIG.read_text(encoding="utf-8").replace("../data/demo/", f"{folder / 'base'}/")
    text = text.replace("output: ../out/demo", f"output: {folder / 'out'}")
    text = text.replace("store: sqlite:///../out/demo/linkage.sqlite",
                        f"store: sqlite:///{folder / 'out' / 'linkage.sqlite'}")
    path = folder / "job.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def reseal(path: Path) -> None:
    """Open and close the restored store, untimed: the base run sealed the store it left
    (linkage.store.integrity), but a copy is another file, which the next open would read page
    by page. The day's `add` finds the store as the last process left it."""
    sys.path.insert(0, str(REPO))
    from linkage.store import Store

    Store(f"sqlite:///{path}").close()


def measure(argv: list[str], what: str, out: Path) -> dict:
    print(f"{what} ...", file=sys.stderr, flush=True)
    child = run_measured(argv, cwd=REPO)
    row = {"what": what, "run": child.as_dict(), "ok": child.returncode == 0}
    if not row["ok"]:
        report_failure(what, child)
        return row
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    row.update({"wall_s": child.wall_s, "cpu_s": child.cpu_s, "peak_rss_gb": child.peak_rss_gb,
                "records_in": summary["records"]["read"],
                "state_records": (summary.get("state") or {}).get("records",
                                                                  summary["records"]["linked"]),
                "candidate_pairs": summary["blocking"]["candidate_pairs"],
                "timings": summary["timings"], "state": summary.get("state"),
                "store_rows": sum(t["written"] + t["closed"]
                                  for t in (summary.get("store_rows") or {}).values()),
                "f1": summary["accuracy"]["pairwise"]["f1"]})
    return row


def keep_files(out: Path, to: Path) -> None:
    """The files `add` wrote (not the store or the kept state), before the re-run replaces
    them: what a change to `add` is compared by."""
    to.mkdir(parents=True, exist_ok=True)
    for path in out.iterdir():
        if path.is_file() and path.suffix != ".sqlite":
            shutil.copy2(path, to / path.name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--persons", type=int, default=100_000)
    p.add_argument("--batches", default="1000,10000",
                   help="NCMS rows per batch (default: %(default)s)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/linkage-bench"))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-rerun", action="store_true",
                   help="measure only the base run and each add, not the full re-run")
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",") if b.strip()]

    root = ensure_world(args.workdir, args.persons, args.seed)
    world = root / "data" / "demo"
    folder = root / "incremental"
    if folder.exists():
        shutil.rmtree(folder)
    held = split_world(world, folder, max(batches), args.seed)
    config = write_config(folder)
    out, snapshot, truth = folder / "out", folder / "base-state", str(world / "truth.csv")
    code = code_fingerprint()

    rows = [measure([str(LINKAGE), "run", str(config), "--truth", truth, "--quiet"],
                    f"base run ({args.persons:,} persons less {max(batches):,} NCMS rows)", out)]
    if not rows[0]["ok"]:
        return 1
    shutil.copytree(out, snapshot)
    for size in batches:
        batch = _write(folder / f"batch-{size}.csv", [held[0], *held[1:size + 1]])
        shutil.rmtree(out)
        shutil.copytree(snapshot, out)
        reseal(out / "linkage.sqlite")
        added = measure([str(LINKAGE), "add", str(config), "--input", str(batch), "--source",
                         "ncms", "--truth", truth, "--quiet"], f"add {size:,}", out)
        keep_files(out, folder / f"add-{size}")
        rows.append(added)
        if not args.no_rerun:
            # The alternative: run the whole job again over the same records (it reads the
            # batch `add` kept), on the same store.
            rerun = measure([str(LINKAGE), "run", str(config), "--truth", truth, "--quiet"],
                            f"full re-run with the {size:,}", out)
            if added.get("ok") and rerun.get("ok"):
                added["speedup_wall"] = rerun["wall_s"] / added["wall_s"]
                added["speedup_cpu"] = rerun["cpu_s"] / added["cpu_s"]
            rows.append(rerun)
        result = {"benchmark": "incremental", "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "persons": args.persons, "seed": args.seed, "code": code,
                  "code_changed": code_fingerprint() != code, "rows": rows}
        (args.workdir / "incremental.json").write_text(json.dumps(result, indent=2),
                                                       encoding="utf-8")

    print_table(["what", "records in", "state records", "cand. pairs", "wall s", "CPU s",
                 "peak RSS GB", "store rows", "F1", "re-run / add (wall, CPU)"],
                [[r["what"], f"{r.get('records_in', 0):,}", f"{r.get('state_records', 0):,}",
                  f"{r.get('candidate_pairs', 0):,}", fmt(r.get("wall_s"), ".1f"),
                  fmt(r.get("cpu_s"), ".1f"), fmt(r.get("peak_rss_gb"), ".2f"),
                  f"{r.get('store_rows', 0):,}", fmt(r.get("f1"), ".4f"),
                  f"{r['speedup_wall']:.1f}x, {r['speedup_cpu']:.1f}x"
                  if "speedup_wall" in r else ""]
                 for r in rows])
    print("\nstage timings of each add (s):")
    adds = [r for r in rows if r.get("ok") and r.get("state")]
    stages = list(dict.fromkeys(s for r in adds for s in r["timings"]))
    print_table(["what", *stages], [[r["what"], *(fmt(r["timings"].get(s), ".1f") for s in stages)]
                                    for r in adds])
    print(f"\ncode fingerprint {code}; results: {args.workdir / 'incremental.json'}")
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
