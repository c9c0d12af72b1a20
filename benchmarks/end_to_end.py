"""End-to-end cost and accuracy of `linkage run` as the prefecture grows, household linkage off
and on: time, memory, and the measures of issue 16 per size.

Why: a data team runs the whole prefecture (about 700,000 NCMS enrollees plus the registry and
the urban roster) and re-runs it whenever corrected rosters come in, so what matters is the
wall time and peak memory of the real command on realistic data, whether they grow with the
records or faster, and what the office gets: pairwise F1, NCMS->registry recall, the
duplicate-enrolment list scored per person, insurance records tied to the wrong registry
person, the review load and the hard negatives (twins, father and son of one name, ...) merged.
For each size the synthetic world is generated once (`linkage synth`), configs/demo.yaml is
copied beside it and `linkage run --truth` runs as a child process; its summary.json supplies
the per-stage timings, candidate pairs and accuracy.

    .venv/bin/python benchmarks/end_to_end.py --sizes 100000,1000000 --ablation

With --ablation each size runs twice on the same world, the config's household section set
to `enabled: false`, then `enabled: true`. Prints the tables and writes end_to_end.json to the
workdir.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml
from harness import (
    DEMO_CONFIG,
    ensure_world,
    fastest,
    fmt,
    household_enabled,
    print_table,
    report_failure,
    run_ours,
)

HARD_NEGATIVE_KINDS = ("twins", "father_son_same_name", "child_with_parent_id",
                       "same_name_same_birthdate", "milk_name_namesakes")


def ncms_sources() -> list[str]:
    """The demo config's NCMS sources (scheme NCMS), for NCMS->registry recall."""
    config = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    return [s["name"] for s in config.get("sources", []) if s.get("scheme") == "NCMS"]


def registry_recall(accuracy: dict, sources: list[str]) -> float | None:
    """Share of the NCMS records whose true person has a registry record and whose entity
    holds that person's registry record (from the run's authority_recall)."""
    per_source = accuracy.get("authority_recall") or {}
    got = [per_source[s] for s in sources if s in per_source]
    if not got:
        return None
    registered = sum(g["registered"] for g in got)
    return sum(g["linked"] for g in got) / registered if registered else 1.0


def measure_size(workdir: Path, persons: int, seed: int, pin_encodings: bool, repeat: int,
                 household: bool | None) -> dict:
    """One size and household setting: generate (or reuse) the world, run the job (best of
    repeat), collect figures. household None runs the config as it is."""
    root = ensure_world(workdir, persons, seed)
    label = ("on" if household_enabled(DEMO_CONFIG.read_text(encoding="utf-8")) else "off"
             ) if household is None else ("on" if household else "off")
    attempts = []
    for i in range(repeat):
        print(f"running linkage on {persons:,} persons, household {label} ({i + 1}/{repeat}) ...",
              file=sys.stderr, flush=True)
        attempts.append(run_ours(root, pin_encodings, household))
    child, summary, walls = fastest(attempts)
    row = {"persons": persons, "household": label, "seed": seed, "run": child.as_dict(),
           "walls_s": walls, "ok": summary is not None}
    if summary is None:
        report_failure(f"linkage run ({persons:,} persons, household {label})", child)
        return row
    timings = summary["timings"]
    pairs = summary["blocking"]["candidate_pairs"]
    accuracy = summary["accuracy"]
    records = summary["records"]["linked"] + summary["records"]["rejected"]
    row.update({
        "records": records,
        "wall_s": child.wall_s,
        # The targets exclude scoring against the truth, which a real run does not do.
        "wall_excl_evaluate_s": child.wall_s - float(timings.get("evaluate") or 0.0),
        "peak_rss_gb": child.peak_rss_gb,
        "stage_peak_mb": (summary.get("memory") or {}).get("stage_peak_mb") or {},
        "candidate_pairs": pairs,
        "pairs_per_record": pairs / records if records else None,
        "compare_pairs_per_s": pairs / timings["compare"] if timings.get("compare") else None,
        "timings": timings,
        "pairwise": accuracy["pairwise"],
        "bcubed": accuracy["bcubed"],
        "duplicate_enrolment": accuracy["duplicate_enrolment"],
        "strict_duplicate_enrolment": accuracy.get("strict_duplicate_enrolment"),
        "wrong_person_links": accuracy.get("wrong_person_links"),
        "authority_recall": accuracy.get("authority_recall"),
        "ncms_registry_recall": registry_recall(accuracy, ncms_sources()),
        "hard_negatives": accuracy.get("hard_negatives"),
        "review_load": accuracy.get("review_load"),
        "review_pairs": summary.get("review_pairs"),
        "blocking_recall": (summary.get("blocking_recall") or {}).get("recall"),
    })
    return row


def add_growth(rows: list[dict]) -> None:
    """time(size)/time(previous size) beside records(size)/records(previous size), within one
    household setting.

    A time ratio close to the records ratio means linear growth; well above it means some
    stage (usually blocking on common names) grows faster than the data.
    """
    previous: dict[str, dict] = {}
    for row in rows:
        before = previous.get(row["household"])
        if row.get("ok") and before is not None:
            row["time_ratio"] = row["wall_s"] / before["wall_s"]
            row["cpu_ratio"] = row["run"]["cpu_s"] / before["run"]["cpu_s"]
            row["records_ratio"] = row["records"] / before["records"]
        if row.get("ok"):
            previous[row["household"]] = row


def _get(row: dict, *path: str):
    value = row
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return value


def print_results(rows: list[dict]) -> None:
    headers = ["persons", "household", "wall s", "excl. eval s", "peak RSS GB", "pairs/record",
               "F1",
               "NCMS->reg R", "strict dup P", "strict dup R", "wrong /10k ins.",
               "review /1k", "registry doubles /1k", "hard neg. merged"]
    table = []
    for r in rows:
        if not r.get("ok"):
            table.append([f"{r['persons']:,}", r["household"], "failed"]
                         + ["-"] * (len(headers) - 3))
            continue
        hard = _get(r, "hard_negatives")
        table.append([
            f"{r['persons']:,}", r["household"], fmt(r["wall_s"], ".1f"),
            fmt(r.get("wall_excl_evaluate_s"), ".1f"), fmt(r["peak_rss_gb"], ".2f"),
            fmt(r["pairs_per_record"], ".2f"),
            fmt(r["pairwise"]["f1"], ".4f"), fmt(r["ncms_registry_recall"], ".4f"),
            fmt(_get(r, "strict_duplicate_enrolment", "precision"), ".4f"),
            fmt(_get(r, "strict_duplicate_enrolment", "recall"), ".4f"),
            fmt(_get(r, "wrong_person_links", "per_10k"), ".2f"),
            fmt(_get(r, "review_load", "per_1000"), ".2f"),
            fmt(_get(r, "review_load", "registry_per_1000"), ".2f"),
            "no file" if hard is None else f"{hard['merged']:,} of {hard['pairs']:,}",
        ])
    print_table(headers, table)
    print()
    print("counts and growth:")
    headers = ["persons", "household", "records", "CPU s", "cand. pairs", "pairs/s (compare)",
               "dup P (entity)", "dup R (entity)", "flagged persons", "wrong links",
               "review pairs", "registry pairs", "time ratio", "CPU ratio", "records ratio"]
    table = []
    for r in rows:
        if not r.get("ok"):
            continue
        table.append([
            f"{r['persons']:,}", r["household"], f"{r['records']:,}",
            fmt(r["run"]["cpu_s"], ".1f"), f"{r['candidate_pairs']:,}",
            fmt(r["compare_pairs_per_s"], ",.0f"),
            fmt(r["duplicate_enrolment"]["precision"], ".4f"),
            fmt(r["duplicate_enrolment"]["recall"], ".4f"),
            fmt(_get(r, "strict_duplicate_enrolment", "flagged"), ","),
            fmt(_get(r, "wrong_person_links", "records"), ","),
            fmt(_get(r, "review_load", "pairs"), ","),
            fmt(_get(r, "review_load", "registry_pairs"), ","),
            fmt(r.get("time_ratio"), ".2f"), fmt(r.get("cpu_ratio"), ".2f"),
            fmt(r.get("records_ratio"), ".2f"),
        ])
    print_table(headers, table)
    hard_rows = [r for r in rows if r.get("ok") and r.get("hard_negatives")]
    if hard_rows:
        print()
        print("hard negatives merged (merged / pairs in the world):")
        kinds = list(HARD_NEGATIVE_KINDS)
        for r in hard_rows:
            kinds += [k for k in r["hard_negatives"]["by_kind"] if k not in kinds]
        print_table(["persons", "household", *kinds], [
            [f"{r['persons']:,}", r["household"],
             *(f"{k['merged']:,} / {k['pairs']:,}" if (k := r["hard_negatives"]["by_kind"]
                                                       .get(kind)) else "-" for kind in kinds)]
            for r in hard_rows])
    elif any(r.get("ok") for r in rows):
        print("\nno hard_negatives.csv beside truth.csv: hard negatives not measured")
    print()
    print("stage timings (s):")
    stages = []
    for r in rows:
        for s in r.get("timings", {}):
            if s not in stages:
                stages.append(s)
    print_table(["persons", "household", *stages],
                [[f"{r['persons']:,}", r["household"],
                  *(fmt(r["timings"].get(s), ".1f") for s in stages)]
                 for r in rows if r.get("ok")])
    print()
    print("peak resident memory per stage (GB):")
    print_table(["persons", "household", *stages],
                [[f"{r['persons']:,}", r["household"],
                  *(fmt(r["stage_peak_mb"].get(s) / 1024 if r["stage_peak_mb"].get(s) else None,
                        ".2f") for s in stages)]
                 for r in rows if r.get("ok")])
    print()
    print_targets(rows)
    print()
    codes = {f"{r['persons']:,}/{r['household']}": r["run"]["code"] + (
        " (changed during the run)" if r["run"]["code_changed"] else "") for r in rows}
    print(f"code fingerprint per run: {codes}")
    if len({r["run"]["code"] for r in rows}) > 1:
        print("WARNING: the runs ran on different code; ratios and the ablation mix versions")


# Issue 17's targets on a 2-core machine: (persons, wall s excluding evaluation, peak GB).
SCALE_TARGETS = ((1_000_000, 240.0, 4.0), (3_000_000, 900.0, 12.0))


def print_targets(rows: list[dict]) -> None:
    """Each size's wall and memory against its target, and pairs per record, F1 and strict
    duplicate-enrolment P/R against the smallest size measured in the same run."""
    ok = [r for r in rows if r.get("ok")]
    if not ok:
        return
    print("against the scale targets:")
    base = min(ok, key=lambda r: r["persons"])
    for r in ok:
        parts = [f"{r['persons']:,} ({r['household']})"]
        for persons, wall, peak in SCALE_TARGETS:
            if r["persons"] == persons:
                parts.append(f"wall {r['wall_excl_evaluate_s']:.0f} s vs <= {wall:.0f} "
                             f"({'met' if r['wall_excl_evaluate_s'] <= wall else 'NOT met'})")
                parts.append(f"peak {r['peak_rss_gb']:.2f} GB vs <= {peak:.0f} "
                             f"({'met' if r['peak_rss_gb'] <= peak else 'NOT met'})")
        if r is not base:
            ratio = r["pairs_per_record"] / base["pairs_per_record"]
            parts.append(f"pairs/record {ratio:.2f}x the {base['persons']:,} figure "
                         f"({'met' if ratio <= 1.5 else 'NOT met'} <= 1.5x)")
            for name, path in (("F1", ("pairwise", "f1")),
                               ("strict dup P", ("strict_duplicate_enrolment", "precision")),
                               ("strict dup R", ("strict_duplicate_enrolment", "recall"))):
                a, b = _get(r, *path), _get(base, *path)
                if a is not None and b is not None:
                    parts.append(f"{name} {a - b:+.4f} ({'met' if a >= b - 0.002 else 'NOT met'})")
        print("  " + "; ".join(parts))


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
    p.add_argument("--ablation", action="store_true",
                   help="run each size twice on the same world: household linkage off, then on")
    args = p.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    args.workdir.mkdir(parents=True, exist_ok=True)
    settings = [False, True] if args.ablation else [None]

    rows = []
    for persons in sizes:
        for household in settings:
            rows.append(measure_size(args.workdir, persons, args.seed, args.pin_encodings,
                                     args.repeat, household))
            add_growth(rows)
            # Written after every run so a long benchmark that is stopped keeps what it measured.
            result = {"benchmark": "end_to_end", "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                      "pin_encodings": args.pin_encodings, "ablation": args.ablation,
                      "sizes": rows}
            (args.workdir / "end_to_end.json").write_text(json.dumps(result, indent=2),
                                                          encoding="utf-8")
    print_results(rows)
    print(f"\nresults: {args.workdir / 'end_to_end.json'}")
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
