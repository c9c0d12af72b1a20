"""A fingerprint of a run's output folder: what must stay the same when the code is refactored.

One entry per output file: its SHA-256 where the file is deterministic (CSV, model.json), the
SHA-256 of its cell values for XLSX (the zip holds timestamps), and of summary.json without the
keys that differ between any two runs (run id, timings, memory). tests/jobs/test_outputs_pinned.py
holds the demo job's outputs to a pinned fingerprint; benchmarks/output_fingerprint.py prints
one for any folder.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

# kept_state: whether a file came from the kept state (linkage.jobs.state) or was standardised
# again changes nothing the run computes.
VOLATILE_SUMMARY_KEYS = {"run_id", "timings", "memory", "started_at", "finished_at", "outputs",
                         "kept_state"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _xlsx_cells(path: Path) -> bytes:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True)
    parts = []
    for sheet in book.worksheets:
        parts.append(f"## {sheet.title}")
        for row in sheet.iter_rows(values_only=True):
            parts.append("\t".join("" if v is None else repr(v) for v in row))
    return "\n".join(parts).encode("utf-8")


def _summary(path: Path) -> bytes:
    summary = json.loads(path.read_text(encoding="utf-8"))
    kept = {k: v for k, v in summary.items() if k not in VOLATILE_SUMMARY_KEYS}
    return json.dumps(kept, sort_keys=True, ensure_ascii=False).encode("utf-8")


def fingerprint(folder: Path) -> dict[str, str]:
    """File name -> fingerprint, for every output the run writes deterministically."""
    out = {}
    for path in sorted(folder.iterdir()):
        if path.suffix in (".csv", ".txt") or path.name == "model.json":
            if path.name == "README_outputs.txt":
                continue  # names the run id
            out[path.name] = _sha(path.read_bytes())
        elif path.suffix == ".xlsx":
            out[path.name] = "cells:" + _sha(_xlsx_cells(path))
        elif path.name == "summary.json":
            out[path.name] = "stable-keys:" + _sha(_summary(path))
    return out
