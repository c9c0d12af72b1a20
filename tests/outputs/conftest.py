"""Office-output fixtures: one pipeline run over the shared small world (tests/conftest.py)."""
import pytest


@pytest.fixture(scope="session")
def office_run(small_world, tmp_path_factory):
    """One pipeline run over the small world, with truth: its RunResult and output folder."""
    from linkage.core.config import load_config
    from linkage.jobs.run import run

    tmp = tmp_path_factory.mktemp("office")
    config = load_config(small_world / "configs" / "demo.yaml", {
        "output": str(tmp / "out"), "store": f"sqlite:///{tmp / 'store.sqlite'}"})
    return run(config, truth_path=small_world / "data" / "demo" / "truth.csv")
