"""Fingerprint a run's output folder, to prove a refactor changed no output.

Prints one line per output file (see linkage/outputs/fingerprint.py for what is hashed):

    python benchmarks/output_fingerprint.py out/demo > before.txt
    ... change the code, run the same job into a fresh folder ...
    python benchmarks/output_fingerprint.py out/demo > after.txt && diff before.txt after.txt
"""
from __future__ import annotations

import sys
from pathlib import Path

from linkage.outputs.fingerprint import fingerprint

if __name__ == "__main__":
    for name, value in fingerprint(Path(sys.argv[1])).items():
        print(f"{value}  {name}")
