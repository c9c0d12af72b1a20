"""The walkthroughs in notebooks/ run top to bottom, and are committed without outputs.

Each notebook ends with assertions proving it did what it says, so running it is the test. The
kernel is this interpreter (jupyter_client starts the `python3` kernel with sys.executable), so
the notebooks see the same installed package; nothing is registered globally.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
needs_spark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (os.environ.get("JAVA_HOME") or shutil.which("java")),
                       reason="Spark needs Java"),
]


def _param(path: Path):
    marks = needs_spark if "spark" in path.stem else []
    return pytest.param(path, id=path.stem, marks=marks)


def test_there_are_notebooks():
    assert [p.name[:2] for p in ALL] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("path", [_param(p) for p in ALL])
def test_notebook_is_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, (f"{path.name}: cells {dirty} carry outputs; clear them before committing "
                       "(Jupyter: Edit > Clear All Outputs)")


@pytest.mark.parametrize("path", [_param(p) for p in ALL])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path, monkeypatch):
    if "spark" in path.stem:
        pytest.importorskip("pyspark")
    from jupyter_client.kernelspec import KernelSpecManager

    argv = KernelSpecManager().get_kernel_spec("python3").argv
    assert argv[0] in {"python", "python3", sys.executable}, (
        f"the python3 kernel runs {argv[0]}, not this interpreter ({sys.executable})")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's tempfile folders land here
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{exc}", pytrace=False)
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")
