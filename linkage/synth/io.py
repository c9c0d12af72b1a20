"""Writing a world to disk in the sources' real encodings, and the `linkage synth` entry point.

Why: the files are what the demo job ingests, so NCMS is GBK and urban has a BOM, as in the wild;
world.json records the seed, the counts, the columns and the realised error rates.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from linkage.synth.sources import NCMS_COLUMNS, POLICE_COLUMNS, URBAN_COLUMNS
from linkage.synth.world import World, error_summary, generate_world

ENCODINGS = {"police": "utf-8", "ncms": "gbk", "urban": "utf-8-sig", "truth": "utf-8",
             "errors": "utf-8", "hard_negatives": "utf-8"}


def write_world(world: World, out_dir: Path) -> dict[str, Path]:
    """Write the sources in their real encodings (NCMS in GBK), truth, error log, the
    hard-negative pairs (hard_negatives.csv: kind, source_l, record_l, source_r, record_r) and
    world.json.

    IDs are written as text; read them back with dtype=str (and encoding='gbk' for ncms.csv).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = ("police", "ncms", "urban", "truth", "errors", "hard_negatives")
    paths = {name: out_dir / f"{name}.csv" for name in names}
    for name, frame in (("police", world.police), ("ncms", world.ncms), ("urban", world.urban),
                        ("truth", world.truth), ("errors", world.errors),
                        ("hard_negatives", world.hard_negatives)):
        frame.to_csv(paths[name], index=False, encoding=ENCODINGS[name])
    paths["world"] = out_dir / "world.json"
    meta = {
        "generator": "linkage.synth", "seed": world.seed, "persons": world.persons,
        "households": world.households, "counts": world.counts,
        "files": {k: {"path": v.name, "encoding": ENCODINGS.get(k, "utf-8")}
                  for k, v in paths.items()},
        "columns": {"police": POLICE_COLUMNS, "ncms": NCMS_COLUMNS, "urban": URBAN_COLUMNS},
        "error_rates": error_summary(world),
        "note": "Synthetic data. truth.csv maps every record to its person; errors.csv lists the "
                "errors injected per record and field; hard_negatives.csv pairs records of two "
                "different persons a matcher could be tempted to merge (twins, a father and son "
                "of one name, a child carrying a parent's ID, same-name same-birthdate "
                "strangers, milk-name namesakes).",
    }
    paths["world"].write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return paths


def synth_main(persons: int, seed: int, out: Path | str) -> dict[str, Path]:
    """Entry point of `linkage synth`: generate and write a world, showing progress on stderr."""
    from tqdm import tqdm

    stages = ["geography", "people", "police", "ncms", "urban", "truth", "hard negatives",
              "receipts", "write"]
    t0 = time.perf_counter()
    with tqdm(total=len(stages), desc="synth", unit="stage", file=sys.stderr) as bar:
        seen: list[str] = []

        def step(stage: str) -> None:
            if seen:
                bar.update(1)
            seen.append(stage)
            bar.set_postfix_str(stage)

        world = generate_world(persons, seed, progress=step)
        step("write")
        paths = write_world(world, Path(out))
        bar.update(1)
    c = world.counts
    print(f"wrote {c['police']:,} police, {c['ncms']:,} NCMS and {c['urban']:,} urban records for "
          f"{persons:,} persons to {out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return paths
