"""The one writer of demo-job configs for tests: the repo's configs/demo.yaml with an output
folder and store of the test's own, and optionally other data or cheaper training."""
from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_demo_config(path: Path, output: Path, store: str, data: Path | None = None,
                      fast_training: bool = False) -> Path:
    """Write the demo config to ``path`` and return it.

    The sources stay relative (``../data/demo/``: the world beside ``path``'s folder) unless
    ``data`` names a folder. ``fast_training`` estimates u from 50,000 random pairs instead
    of 500,000: a tenth of the training time, the same results on the small world.
    """
    text = (REPO / "configs" / "demo.yaml").read_text(encoding="utf-8")
    if data is not None:
        text = text.replace("../data/demo/", f"{data}/")
    text = text.replace("output: ../out/demo", f"output: {output}")
    text = text.replace("store: sqlite:///../out/demo/linkage.sqlite",
                        f"store: {json.dumps(store)}")
    if fast_training and not re.search(r"^training:", text, re.MULTILINE):
        text += "\ntraining:\n  u_sample_pairs: 50000\n"
    path.write_text(text, encoding="utf-8")
    return path
