"""The demo job's outputs on the small world are pinned: a refactor must leave every byte as it
was. The fingerprint (tests/jobs/demo_outputs.fingerprint) was taken from the code before the
engine, config and layout were consolidated; a change that is meant to change outputs re-pins
it deliberately, saying why in its commit:
``LINKAGE_REPIN=1 pytest tests/jobs/test_outputs_pinned.py`` writes the new fingerprint instead
of comparing (never set in CI).
"""
from __future__ import annotations

import os
from pathlib import Path

from demo_config import write_demo_config

from linkage.outputs.fingerprint import fingerprint

PINNED = Path(__file__).with_name("demo_outputs.fingerprint")


def _pinned() -> dict[str, str]:
    lines = PINNED.read_text(encoding="utf-8").splitlines()
    return {name: value for value, name in (line.split("  ", 1) for line in lines if line)}


def test_demo_outputs_are_byte_identical_to_the_pinned_fingerprint(small_world, tmp_path):
    from linkage.core.config import load_config
    from linkage.jobs.run import run

    config = write_demo_config(small_world / "configs" / f"demo-pin-{tmp_path.name}.yaml",
                               tmp_path / "out", f"sqlite:///{tmp_path / 'store.sqlite'}",
                               fast_training=True)
    first = run(load_config(config, {"state_dir": str(tmp_path / "state")}))
    got = fingerprint(tmp_path / "out")
    # The same job into another store and folder, every file read from the kept state
    # (linkage.jobs.state) the first run built: the same bytes.
    again = run(load_config(config, {"state_dir": str(tmp_path / "state"),
                                     "output": str(tmp_path / "again"),
                                     "store": f"sqlite:///{tmp_path / 'again.sqlite'}"}))
    assert first.summary["kept_state"]["files_kept"] == 0
    assert again.summary["kept_state"]["files_standardised"] == 0
    assert fingerprint(tmp_path / "again") == got
    if os.environ.get("LINKAGE_REPIN") == "1":
        PINNED.write_text("".join(f"{v}  {k}\n" for k, v in got.items()), encoding="utf-8")
    pinned = _pinned()
    assert set(got) == set(pinned)
    changed = sorted(name for name in pinned if got[name] != pinned[name])
    assert not changed, f"outputs differ from the pinned fingerprint: {changed}"
