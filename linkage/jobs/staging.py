"""Output files appear whole or not at all, even when the process is killed while writing them.

A run writes its files into a staging folder inside the output folder and moves each one into
place with os.replace (atomic on one file system) only after the run is stored. A run killed
before that leaves the previous run's files untouched; its staging folder is removed by the next
run that writes to the same output folder.
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PREFIX = ".partial-"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (signal 0 only checks)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale(out_dir: Path) -> list[Path]:
    """Remove staging folders left by processes that no longer run; the folders removed."""
    removed = []
    for path in Path(out_dir).glob(PREFIX + "*"):
        pid = path.name[len(PREFIX):].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def publish(staging: Path, out_dir: Path) -> None:
    """Move every staged file into the output folder, each replacing its old version at once."""
    for path in sorted(staging.rglob("*")):
        if path.is_file():
            target = out_dir / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)


@contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """A fresh staging folder in `out_dir`, published when the block ends without an error."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale(out_dir)
    staging = out_dir / f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        publish(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
