"""Output files are published whole: staged, then moved into place one os.replace each."""
import os
import subprocess
import sys

import pytest

from linkage.jobs.staging import PREFIX, staged


def test_files_appear_only_when_the_block_succeeds(tmp_path):
    (tmp_path / "roster.csv").write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with staged(tmp_path) as staging:
            (staging / "roster.csv").write_text("half", encoding="utf-8")
            raise RuntimeError("killed half-way")
    assert (tmp_path / "roster.csv").read_text(encoding="utf-8") == "old"
    with staged(tmp_path) as staging:
        (staging / "roster.csv").write_text("new", encoding="utf-8")
        assert (tmp_path / "roster.csv").read_text(encoding="utf-8") == "old"
    assert (tmp_path / "roster.csv").read_text(encoding="utf-8") == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["roster.csv"]


def test_staging_left_by_a_dead_process_is_removed_and_a_live_ones_kept(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead = tmp_path / f"{PREFIX}{int(ended.stdout)}-abc"
    live = tmp_path / f"{PREFIX}{os.getpid()}-def"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "clusters.csv").write_text("partial", encoding="utf-8")
    with staged(tmp_path):
        pass
    assert not dead.exists() and live.exists()
    assert not (tmp_path / "clusters.csv").exists()
