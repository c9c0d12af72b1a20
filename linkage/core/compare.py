"""Comparison vectors: one int8 level per comparison per candidate pair, computed in chunks."""
from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

from matchers import make_comparison
from matchers.base import Comparison


class ComparisonSpec(Protocol):
    """What building a comparison reads of its config (``config.ComparisonConfig``).

    Named here rather than imported: the config validates a comparison by building it, so
    this module must not import the config back.
    """

    @property
    def matcher(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def field(self) -> str | None: ...
    @property
    def params(self) -> Mapping[str, Any]: ...


def build_comparisons(configs: Iterable[ComparisonSpec]) -> list[Comparison]:
    """Instantiate the configured matchers; a generic matcher reads ``<field>_std``."""
    out = []
    for c in configs:
        params = dict(c.params)
        name = c.name
        if c.field is not None:
            params.setdefault("column", f"{c.field}_std")
            name = name or c.field
        out.append(make_comparison(c.matcher, name=name, **params))
    return out


def comparison_vectors(
    records: pd.DataFrame,
    comparisons: list[Comparison],
    left: np.ndarray,
    right: np.ndarray,
    chunk_size: int = 1_000_000,
    progress: bool = False,
) -> np.ndarray:
    """(pairs x comparisons) int8 matrix of level indices, MISSING (-1) where no evidence."""
    from tqdm import tqdm

    columns = sorted({col for c in comparisons for col in c.columns})
    table = records[columns].reset_index(drop=True)
    out = np.empty((len(left), len(comparisons)), dtype=np.int8)
    with tqdm(total=len(left), desc="compare", unit=" pairs", disable=not progress,
              file=sys.stderr, mininterval=1.0, unit_scale=True) as bar:
        for start in range(0, len(left), chunk_size):
            stop = min(start + chunk_size, len(left))
            lhs = table.take(left[start:stop])
            rhs = table.take(right[start:stop])
            for k, comparison in enumerate(comparisons):
                # Only the comparison's own columns: level tests slice their frames per level.
                cols = list(comparison.columns)
                out[start:stop, k] = comparison.compare(lhs[cols], rhs[cols])
            bar.update(stop - start)
    return out
