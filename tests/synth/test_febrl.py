"""The engine is general: FEBRL (Latin names, generic comparers) through the same pipeline."""
import shutil
from pathlib import Path

import pytest

from linkage.core.config import load_config
from linkage.jobs.run import run
from linkage.synth.febrl import write_febrl

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def febrl_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("febrl")
    write_febrl(root / "data" / "febrl")
    (root / "configs").mkdir()
    for name in ("febrl4", "febrl3_no_id"):
        shutil.copy(REPO / "configs" / f"{name}.yaml", root / "configs")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("job, truth, min_f1", [("febrl4", "truth4", 0.998),
                                                ("febrl3_no_id", "truth3", 0.99)])
def test_febrl_unsupervised_accuracy(febrl_root, job, truth, min_f1):
    config = load_config(febrl_root / "configs" / f"{job}.yaml")
    result = run(config, truth_path=febrl_root / "data" / "febrl" / f"{truth}.csv")
    assert result.summary["accuracy"]["pairwise"]["f1"] >= min_f1, result.summary["accuracy"]
    assert result.summary["records"]["rejected"] == 0
