import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    """A synthetic prefecture of 1,500 persons written as the demo job expects it."""
    from linkage.synth import generate_world, write_world

    root = tmp_path_factory.mktemp("world")
    write_world(generate_world(1500, seed=11), root / "data" / "demo")
    (root / "configs").mkdir()
    shutil.copy(REPO / "configs" / "demo.yaml", root / "configs" / "demo.yaml")
    return root


@pytest.fixture
def demo_job(small_world, tmp_path) -> Path:
    """The demo config over the small world, with a store and output of its own."""
    config = small_world / "configs" / f"demo-{tmp_path.name}.yaml"
    text = (REPO / "configs" / "demo.yaml").read_text(encoding="utf-8")
    text = text.replace("output: ../out/demo", f"output: {tmp_path / 'out'}")
    text = text.replace("store: sqlite:///../out/demo/linkage.sqlite",
                        f"store: sqlite:///{tmp_path / 'store.sqlite'}")
    config.write_text(text, encoding="utf-8")
    return config


@pytest.fixture(scope="session")
def office_run(small_world, tmp_path_factory):
    """One pipeline run over the small world, with truth: its RunResult and output folder."""
    from linkage.config import load_config
    from linkage.pipeline import run

    tmp = tmp_path_factory.mktemp("office")
    config = load_config(small_world / "configs" / "demo.yaml", {
        "output": str(tmp / "out"), "store": f"sqlite:///{tmp / 'store.sqlite'}"})
    return run(config, truth_path=small_world / "data" / "demo" / "truth.csv")
