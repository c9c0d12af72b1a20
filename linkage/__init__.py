"""Record linkage engine and pipeline for Chinese household-registry and insurance rosters.

The Python API (linkage/api.py) is what a notebook uses: ``Job.from_yaml(path).run()``, the
result's frames and ``explain``, and ``synth_world`` for a synthetic prefecture.
"""
from linkage.api import (
    Exported,
    Job,
    Result,
    RunReplaced,
    demo,
    evaluate,
    febrl,
    record_key,
    synth_world,
)

__all__ = ["Exported", "Job", "Result", "RunReplaced", "demo", "evaluate", "febrl", "record_key",
           "synth_world"]
