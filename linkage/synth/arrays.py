"""Vectorised helpers: integers to digit strings, GB 11643 numbers, weighted draws.

Why: a million persons cannot afford a Python call per character, so text is built from numpy
digit arrays through one view, and every draw is a single call on the generator.
"""
from __future__ import annotations

import numpy as np

from linkage.synth import names as pools

NUM = np.array([str(i) for i in range(2101)], dtype=object)
Z2 = np.array([f"{i:02d}" for i in range(100)], dtype=object)
CN = np.array(list(pools.CHINESE_NUMERALS), dtype=object)


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) decimal digits of non-negative integers, most significant first."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((np.asarray(values, dtype=np.int64)[:, None] // powers) % 10).astype(np.uint8)


def _ascii(codes: np.ndarray) -> np.ndarray:
    """Rows of ASCII codes -> object array of str, through one numpy view (no loop per char)."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    width = codes.shape[1]
    return codes.view(f"S{width}").ravel().astype(f"U{width}").astype(object)


def zfill(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers as zero-padded decimal strings of the given width."""
    return _ascii(digits(values, width) + 48)


_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK_CHARS = np.frombuffer(b"10X98765432", dtype=np.uint8)


def resident_ids(region: np.ndarray, y: np.ndarray, m: np.ndarray, d: np.ndarray,
                 seq: np.ndarray) -> np.ndarray:
    """GB 11643 numbers (region, birthdate, sequence, ISO 7064 MOD 11-2 check), vectorised."""
    body = np.hstack([digits(region, 6), digits(y, 4), digits(m, 2), digits(d, 2),
                      digits(seq, 3)])
    check = _CHECK_CHARS[(body.astype(np.int64) @ _ID_WEIGHTS) % 11]
    return _ascii(np.hstack([body + 48, check[:, None]]))


def days_in_month(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Days in each (year, month); a month outside 1..12 counts as the nearest valid one."""
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    dim = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(m, 1, 12)]
    return dim + ((m == 2) & leap)


def pick(rng: np.random.Generator, options: np.ndarray, n: int,
         p: np.ndarray | None = None) -> np.ndarray:
    """n draws from options (with replacement), weighted by p if given."""
    return options[rng.choice(len(options), size=n, p=p)]


def zipf(n: int, s: float = 0.9, offset: float = 1.5) -> np.ndarray:
    """Zipf-like weights over n items in order of commonness (the first few recur often)."""
    w = 1.0 / (np.arange(n) + offset) ** s
    return w / w.sum()
