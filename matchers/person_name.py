"""Chinese person names: normalise, split, read and compare.

Three forms of a name are kept apart on purpose:

* ``name_norm`` is the name as written, cleaned (NFKC, no spaces, one kind of middle dot). It
  keeps the original characters: 乾, 昇 and 於 are legitimate name characters.
* ``name_key`` is for comparing only: simplified with OpenCC one character at a time, variant
  characters folded (阎→闫, 萧→肖 ...), middle dot removed, so 張偉 = 张伟 and
  包·巴特尔 = 包巴特尔. It is lossy (乾→干) and must never be shown as the name.
* ``name_pinyin`` / ``name_fold`` say how the key sounds: toneless pinyin with surname readings
  at the surname position (单 shan, 曾 zeng, 区 ou), and a coarse folding of each syllable for
  transliterated Mongolian names (see :func:`matchers.hanzi.fold_syllable`).

Surname and given name (``split_name``), in key form:

* a name with a middle dot splits at the first dot: 包·巴特尔 -> 包 + 巴特尔;
* otherwise a compound surname (欧阳, 司马, 尉迟 ... ``data/surnames_compound.tsv``) followed by at
  least one character is the surname;
* otherwise the first character is the surname when it is one of the ~400 common Han surnames
  (``data/surnames_common.txt``) and a given name follows;
* otherwise there is no surname and the whole key is the given name: a Mongolian name without a
  dot (巴特尔, 乌力吉巴雅尔) has no Han surname. Mongolians also use Han surnames (包, 白, 韩), so
  包巴特尔 splits as 包 + 巴特尔; first syllables of transliterations that are also rare Han
  surnames (巴, 乌, 那, 敖, 其 ...) are deliberately not on the list.

``name_minority`` marks a name as transliterated (minority, mostly Mongolian here): it has a
middle dot, or its given name has three or more characters (Han given names have one or two).
Only such names take part in the ``phonetic`` level, so Han two- and three-character names never
fall into it by accident. The price: a Han name whose surname is rare enough to miss the list
(栾建国) reads as a three-character given name and is marked too; its folded syllables must
still agree for the phonetic level to hold.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from functools import cache

import numpy as np
import pandas as pd
from rapidfuzz.distance import Indel, JaroWinkler, Levenshtein, Prefix
from rapidfuzz.process import cpdist

from matchers import hanzi
from matchers.base import (
    Comparison,
    Frame,
    Level,
    LevelTest,
    Pairs,
    column,
    column_at,
    cpdist_workers,
    per_distinct_frame,
    register,
    select_levels,
)

DOT = "\u00b7"
# Middle-dot look-alikes typed for the separator in minority names, and '.'/'。' typed for it.
_DOTS = ".\u00b7\u0387\u2022\u2027\u2219\u22c5\u2e31\u30fb\uff0e\uff65\ua78f\u3002\uff61"
_DOT_RUN = re.compile("[" + re.escape(_DOTS) + "]+")
COLUMNS = [
    "name_raw",
    "name_norm",
    "name_key",
    "name_surname",
    "name_given",
    "name_pinyin",
    "name_fold",
    "name_minority",
    "surname_pinyin",
    "given_pinyin",
    "name_initials",
]


# --- normalising ---------------------------------------------------------------------------


def _as_text(value: object) -> str | None:
    """Any cell value as text; None for the many spellings of 'no value'."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("gb18030", errors="replace")
    try:
        return value if isinstance(value, str) else str(value)
    except Exception:  # an object whose __str__ fails is no name
        return None


# Most names are plain unified ideographs: NFKC leaves them as they are and nothing in them is
# invisible, so one regex match spares the per-character work below.
_PLAIN_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")


def _drop_invisible(text: str) -> str:
    # Whitespace of every kind, control and format characters (zero-width space, BOM, ...).
    if _PLAIN_HAN.fullmatch(text):
        return text
    return "".join(
        c for c in text if not c.isspace() and unicodedata.category(c) not in ("Cc", "Cf")
    )


def _clean_once(text: str) -> str:
    if _PLAIN_HAN.fullmatch(text):
        return text
    text = unicodedata.normalize("NFKC", _drop_invisible(text))
    text = _drop_invisible(text)  # NFKC can make spaces (e.g. U+00A8 -> ' \u0308')
    return _DOT_RUN.sub(DOT, text).strip(DOT)


def _settle(step: Callable[[str], str], text: str) -> str:
    # Removing characters can leave a sequence that NFKC composes further; repeat to a fixed point.
    for _ in range(4):
        new = step(text)
        if new == text:
            break
        text = new
    return text


def normalise_name(value: object) -> str | None:
    """The name as written, cleaned: NFKC, no whitespace, one U+00B7 for any middle dot.

    Keeps the original characters (no traditional-to-simplified conversion): this is the form
    shown to reviewers and written to the card roster. None when nothing is left.
    """
    text = _as_text(value)
    if text is None:
        return None
    return _settle(_clean_once, text) or None


def _key_once(text: str) -> str:
    text = unicodedata.normalize("NFKC", text.replace(DOT, ""))
    text = "".join(hanzi.key_char(c) for c in text)
    return _drop_invisible(unicodedata.normalize("NFKC", text)).replace(DOT, "")


def _key_of_norm(norm: str) -> str:
    return _settle(_key_once, norm.replace(DOT, ""))


def name_key(value: object) -> str | None:
    """The comparison key: normalised, simplified, variant-folded, middle dot removed."""
    norm = normalise_name(value)
    return (_key_of_norm(norm) or None) if norm else None


# --- surname, readings, folding ----------------------------------------------------------------


def _split_key(norm: str, key: str) -> tuple[str | None, str]:
    if DOT in norm:
        first = _key_of_norm(norm.split(DOT, 1)[0])
        if first and key.startswith(first) and len(key) > len(first):
            return first, key[len(first):]
        return None, key
    for size in (4, 3, 2):
        if len(key) > size and key[:size] in hanzi.COMPOUND_SURNAMES:
            return key[:size], key[size:]
    if len(key) >= 2 and key[0] in hanzi.COMMON_SURNAMES:
        return key[0], key[1:]
    return None, key


def split_name(value: object) -> tuple[str | None, str | None]:
    """(surname, given name) in key form; surname None when the name has no Han surname."""
    norm = normalise_name(value)
    key = _key_of_norm(norm) if norm else ""
    if not key:
        return None, None
    return _split_key(norm, key)


def _syllables(key: str, surname: str | None) -> list[str]:
    """Canonical toneless reading per character; the surname's own reading at its position."""
    return [syllable for syllable, _ in _sounds(key, surname)]


def _sounds(key: str, surname: str | None) -> list[tuple[str, str]]:
    """(reading, folded sound) per character of the key, surname read as a surname."""
    sounds = [_char_sound(char) for char in key]
    special = hanzi.surname_readings(surname) if surname else None
    for i, syllable in enumerate(special[:len(key)] if special else ()):
        sounds[i] = (syllable, hanzi.fold_syllable(syllable) if hanzi.readings(key[i]) else key[i])
    return sounds


@cache
def _char_sound(char: str) -> tuple[str, str]:
    # Han characters fold by sound, one private-use character each; anything else stays as is.
    found = hanzi.readings(char)
    return (found[0], hanzi.fold_syllable(found[0])) if found else (char, char)


def name_pinyin(value: object) -> str | None:
    """Space-separated toneless pinyin of the key, surname read as a surname (单 -> shan)."""
    surname, given = split_name(value)
    if given is None:
        return None
    return " ".join(_syllables((surname or "") + given, surname))


@cache
def _plain_key(char: str) -> str | None:
    """The settled key of one plain ideograph, or None when it leaves plain ideographs.

    For a name of plain ideographs the key is the concatenation of these: every step of
    ``_key_once`` works character by character and NFKC leaves plain ideographs alone.
    """
    key = _key_of_norm(char)
    return key if _PLAIN_HAN.fullmatch(key) else None


def parse_name(value: object) -> dict:
    """The name columns of COLUMNS for one raw value; never raises."""
    return _parse(value)


def _parse(value: object) -> dict:
    if type(value) is str and _PLAIN_HAN.fullmatch(value):
        parts = [_plain_key(c) for c in value]
        if None not in parts:  # the common case: no per-name normalising at all
            return _parsed(value, value, "".join(parts))
    return _parse_general(value)


def _parse_general(value: object) -> dict:
    raw = _as_text(value)
    norm = normalise_name(raw) if raw is not None else None
    key = _key_of_norm(norm) if norm else ""
    if not key:
        return dict.fromkeys(COLUMNS) | {"name_raw": raw, "name_norm": norm, "name_minority": False}
    return _parsed(raw, norm, key)


def _parsed(raw: str, norm: str, key: str) -> dict:
    surname, given = _split_key(norm, key)
    syllables, folds = zip(*_sounds(key, surname))
    cut = len(surname) if surname else 0
    return {
        "name_raw": raw,
        "name_norm": norm,
        "name_key": key,
        "name_surname": surname,
        "name_given": given,
        "name_pinyin": " ".join(syllables),
        "name_fold": "".join(folds),
        "name_minority": DOT in norm or len(given) >= 3,
        # Blocking keys: surname and given-name syllables apart, and the initials.
        "surname_pinyin": " ".join(syllables[:cut]) or None,
        "given_pinyin": " ".join(syllables[cut:]) or None,
        "name_initials": "".join([x[0] for x in syllables if x]),
    }


def standardise(values: pd.Series) -> pd.DataFrame:
    """The name columns of COLUMNS.md, computed once per distinct raw value, same index."""
    values = values if isinstance(values, pd.Series) else pd.Series(values)
    try:
        return per_distinct_frame(values, _parse, COLUMNS)
    except TypeError:  # unhashable cells (lists, dicts): compare them by their text
        return per_distinct_frame(values.map(_hashable), _parse, COLUMNS)


def _hashable(value: object) -> object:
    try:
        hash(value)
        return value
    except TypeError:
        return _as_text(value)


def name_frequencies(keys: pd.Series) -> pd.Series:
    """Relative frequency of each name key among the non-blank keys, indexed by key.

    The engine divides a name agreement's weight by how common the name is: 王伟 = 王伟 is weak
    evidence, a rare name agreeing is strong.
    """
    keys = pd.Series(keys, dtype=object)
    keys = keys[~(keys.isna() | (keys == ""))]
    return keys.value_counts(normalize=True, sort=False).rename("name_key_frequency")


# --- comparing -----------------------------------------------------------------------------


class _Names:
    """The standardised columns of the distinct names met in one batch of pairs.

    Features needing Python (lengths, reading-set ids, sorted given names) are computed here, once
    per distinct name, then every pair test is numpy indexing plus rapidfuzz over arrays.
    """

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self.key = columns["name_key"]
        self.given = columns["name_given"]
        self.surname = columns["name_surname"]
        self.pinyin = columns["name_pinyin"]
        self.fold = columns["name_fold"]
        minority = [v is True or v is np.True_ for v in columns["name_minority"]]
        self.minority = np.array(minority, dtype=bool)
        keys = [k if isinstance(k, str) else "" for k in self.key]
        self.blank = np.array([not k for k in keys], dtype=bool)
        self.key_len = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
        givens = [g if isinstance(g, str) else "" for g in self.given]
        self.given_len = np.fromiter(map(len, givens), dtype=np.int64, count=len(givens))
        self.has_surname = np.array([isinstance(s, str) and s != "" for s in self.surname], bool)
        # Codes in one space so a key can be compared with a given name.
        n = len(keys)
        sorted_given = ["".join(sorted(g)) for g in givens]
        codes, _ = pd.factorize(np.array(keys + givens + sorted_given, dtype=object))
        self.key_code, self.given_code, self.sorted_code = codes[:n], codes[n:2 * n], codes[2 * n:]
        self.surname_code = pd.factorize(self.surname)[0]
        # Folded sound of surname and given name apart: the phonetic level must not let a
        # dropped surname pass as a dropped syllable (包·巴特尔 / 巴特尔 is surname_dropped).
        folds = [f if isinstance(f, str) else "" for f in self.fold]
        cut = [len(k) - len(g) for k, g in zip(keys, givens)]
        surname_folds = np.array([f[:c] for f, c in zip(folds, cut)], dtype=object)
        self.surname_fold_code = pd.factorize(surname_folds)[0]
        self.given_fold = np.array([f[c:] for f, c in zip(folds, cut)], dtype=object)
        self._keys, self._sids = keys, None

    def reading_sets(self) -> tuple[np.ndarray, np.ndarray]:
        """Reading-set ids of every character of every key, flat, with each key's start offset."""
        if self._sids is None:
            flat: list[int] = []
            starts = np.zeros(len(self._keys), dtype=np.int64)
            for i, (key, surname) in enumerate(zip(self._keys, self.surname)):
                starts[i] = len(flat)
                surname = surname if isinstance(surname, str) else None
                flat.extend(hanzi.reading_set_ids(key, surname))
            self._sids = (np.asarray(flat, dtype=np.int64), starts)
        return self._sids


class NamePairs(Pairs):
    """The features of a batch of name pairs: each side as an index into the distinct names.

    ``a``/``b`` index into ``names`` (one entry per distinct raw name of both sides, plus a blank
    one for absent names), so every level is integer indexing over the pairs it is given, and
    10 million pairs take seconds. Distances are cached per pair so that levels sharing one
    (lookalike and one_edit; pinyin_high and pinyin_low) compute it once.
    """

    def __init__(self, left: Frame, right: Frame) -> None:
        super().__init__(left, right)
        code_l, uniq_l = pd.factorize(column(left, "name_raw", object))
        code_r, uniq_r = pd.factorize(column(right, "name_raw", object))
        joint, _ = pd.factorize(np.concatenate([uniq_l, uniq_r]))
        joint_l, joint_r = joint[: len(uniq_l)], joint[len(uniq_l):]
        n_names = int(joint.max()) + 1 if joint.size else 0
        # Read each name's columns from one row where it occurs (all such rows agree).
        rows_l, rows_r = _first_rows(code_l, len(uniq_l)), _first_rows(code_r, len(uniq_r))
        columns = {}
        for name in COLUMNS[2:]:
            values = np.empty(n_names + 1, dtype=object)  # the last entry is the blank name
            values[joint_r] = column_at(right, name, rows_r)
            values[joint_l] = column_at(left, name, rows_l)
            columns[name] = values
        self.names = _Names(columns)
        # Code -1 (no value) picks the appended blank name.
        self.a = np.append(joint_l, n_names)[code_l]
        self.b = np.append(joint_r, n_names)[code_r]
        self.missing = self.names.blank[self.a] | self.names.blank[self.b]
        self._cache: dict[str, np.ndarray] = {}

    def distance(
        self, name: str, sel: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        """A per-pair distance for the pairs ``sel``, each computed at most once per batch."""
        cache = self._cache.get(name)
        if cache is None:
            cache = self._cache[name] = np.full(len(self.a), np.nan, dtype=np.float32)
        todo = sel[np.isnan(cache[sel])]
        if todo.size:
            cache[todo] = compute(todo)
        return cache[sel]

    def strings(self, values: np.ndarray, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-name ``values`` (a column of ``names``) of both sides of the pairs ``sel``."""
        return values[self.a[sel]], values[self.b[sel]]


def _first_rows(codes: np.ndarray, n: int) -> np.ndarray:
    first = np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(codes >= 0)
    first[codes[rows]] = rows
    return first


def _cpdist(scorer, left: np.ndarray, right: np.ndarray, **kwargs) -> np.ndarray:
    if left.size == 0:
        return np.zeros(0)
    return cpdist(left, right, scorer=scorer, workers=cpdist_workers(left.size), **kwargs)


def _exact(p: NamePairs, sel: np.ndarray) -> np.ndarray:
    return p.a[sel] == p.b[sel]  # one index per distinct raw name


def _normalised(p: NamePairs, sel: np.ndarray) -> np.ndarray:
    n = p.names
    return n.key_code[p.a[sel]] == n.key_code[p.b[sel]]


def _pinyin(p: NamePairs, sel: np.ndarray) -> np.ndarray:
    """Same length, and at every position the two characters share a reading."""
    n = p.names
    a, b = p.a[sel], p.b[sel]
    hit = np.zeros(sel.size, dtype=bool)
    alive = np.flatnonzero(n.key_len[a] == n.key_len[b])
    if alive.size == 0:
        return hit
    sids, starts = n.reading_sets()
    position = 0
    while alive.size:
        done = n.key_len[a[alive]] <= position
        hit[alive[done]] = True
        alive = alive[~done]
        if alive.size:
            left = sids[starts[a[alive]] + position]
            right = sids[starts[b[alive]] + position]
            alive = alive[hanzi.READING_SETS.match(left, right)]
        position += 1
    return hit


def _phonetic(p: NamePairs, sel: np.ndarray) -> np.ndarray:
    """Both transliterated, surnames alike, given names alike after folding (巴特尔/巴图尔).

    Given names fold-equal, or one syllable inserted or dropped when both have 3+ syllables
    (其力嘎/其贺力嘎): an Indel distance of 1 over the folded strings, one character per syllable.
    """
    n = p.names
    a, b = p.a[sel], p.b[sel]
    hit = n.minority[a] & n.minority[b] & (n.surname_fold_code[a] == n.surname_fold_code[b])
    cand = np.flatnonzero(hit)
    left, right = n.given_fold[a[cand]], n.given_fold[b[cand]]
    long_enough = (n.given_len[a[cand]] >= 3) & (n.given_len[b[cand]] >= 3)
    hit[cand] = _cpdist(Indel.distance, left, right, score_cutoff=1) <= long_enough
    return hit


def _levenshtein(p: NamePairs, sel: np.ndarray) -> np.ndarray:
    def compute(todo: np.ndarray) -> np.ndarray:
        left, right = p.strings(p.names.key, todo)
        return _cpdist(Levenshtein.distance, left, right, score_cutoff=1)

    return p.distance("levenshtein", sel, compute)


def _lookalike(p: NamePairs, sel: np.ndarray) -> np.ndarray:
    """One substitution, and the two characters share a four-corner code (己/已, 戊/戌)."""
    n = p.names
    hit = np.zeros(sel.size, dtype=bool)
    same = np.flatnonzero(n.key_len[p.a[sel]] == n.key_len[p.b[sel]])
    one = same[_levenshtein(p, sel[same]) == 1]
    if one.size:
        # Python per distinct (left, right) pair, and only on these few.
        size = len(n.key)
        codes, pairs = pd.factorize(p.a[sel[one]] * size + p.b[sel[one]])
        alike = np.array([_differing_alike(n.key[x // size], n.key[x % size]) for x in pairs])
        hit[one] = alike[codes]
    return hit


def _differing_alike(left: str, right: str) -> bool:
    j = next(k for k, (x, y) in enumerate(zip(left, right)) if x != y)
    return hanzi.looks_alike(left[j], right[j])


def _one_edit(p: NamePairs, sel: np.ndarray) -> np.ndarray:
    """Levenshtein distance 1 over characters, except a dropped surname (its own, later level)."""
    n = p.names
    hit = np.zeros(sel.size, dtype=bool)
    near = np.flatnonzero(np.abs(n.key_len[p.a[sel]] - n.key_len[p.b[sel]]) <= 1)
    one = near[_levenshtein(p, sel[near]) == 1]
    hit[one] = ~_surname_dropped(p, sel[one])
    return hit


def _surname_dropped(p: NamePairs, sel: np.ndarray) -> np.ndarray:
    """One side is the other's given name alone: 包·巴特尔 / 巴特尔 (given name 2+ characters)."""
    n = p.names
    a, b = p.a[sel], p.b[sel]

    def dropped(full: np.ndarray, bare: np.ndarray) -> np.ndarray:
        given_long = n.has_surname[full] & (n.given_len[full] >= 2)
        return given_long & (n.given_code[full] == n.key_code[bare])

    return dropped(a, b) | dropped(b, a)


def _truncated(p: NamePairs, sel: np.ndarray) -> np.ndarray:
    """One key a strict prefix of the other, the shorter 3+ characters: 乌力吉巴雅尔 / 乌力吉巴."""
    n = p.names
    la, lb = n.key_len[p.a[sel]], n.key_len[p.b[sel]]
    shorter = np.minimum(la, lb)
    hit = np.zeros(sel.size, dtype=bool)
    cand = np.flatnonzero((la != lb) & (shorter >= 3))
    left, right = p.strings(p.names.key, sel[cand])
    hit[cand] = _cpdist(Prefix.similarity, left, right) == shorter[cand]
    return hit


def _swapped(p: NamePairs, sel: np.ndarray) -> np.ndarray:
    """Same surname, same given-name characters in another order: 张明华 / 张华明."""
    n = p.names
    a, b = p.a[sel], p.b[sel]
    return (
        n.has_surname[a]
        & (n.surname_code[a] == n.surname_code[b])
        & (n.given_len[a] >= 2)
        & (n.sorted_code[a] == n.sorted_code[b])
        & (n.given_code[a] != n.given_code[b])
    )


def _pinyin_similar(threshold: float, floor: float) -> LevelTest:
    def test(p: NamePairs, sel: np.ndarray) -> np.ndarray:
        def compute(todo: np.ndarray) -> np.ndarray:
            left, right = p.strings(p.names.pinyin, todo)
            return _cpdist(JaroWinkler.similarity, left, right, score_cutoff=floor)

        return p.distance("jaro_winkler", sel, compute) >= threshold

    return test


def _names_missing(p: NamePairs) -> np.ndarray:
    return p.missing


def name_levels(pinyin_high: float = 0.92, pinyin_low: float = 0.85) -> tuple[Level, ...]:
    """All levels of the name comparison, strongest first ('different' is implicit)."""
    floor = min(pinyin_high, pinyin_low)
    return (
        Level("exact", _exact, "identical as written"),
        Level("normalised", _normalised, "same key: spaces, dots, traditional forms, variants"),
        Level("pinyin", _pinyin, "homophones: characters share a reading position by position"),
        Level("phonetic", _phonetic, "transliterated names alike after folding (巴特尔/巴图尔)"),
        Level("lookalike", _lookalike, "one character swapped for a look-alike (己/已)"),
        Level("one_edit", _one_edit, "one character inserted, dropped or changed"),
        Level("surname_dropped", _surname_dropped, "one side is the other's given name"),
        Level("truncated", _truncated, "one name cut short (field length)"),
        Level("swapped", _swapped, "given-name characters swapped"),
        Level("pinyin_high", _pinyin_similar(pinyin_high, floor), "pinyin Jaro-Winkler high"),
        Level("pinyin_low", _pinyin_similar(pinyin_low, floor), "pinyin Jaro-Winkler low"),
    )


@register("chinese_name")
def chinese_name_comparison(
    levels: list[str] | None = None, pinyin_high: float = 0.92, pinyin_low: float = 0.85
) -> Comparison:
    """The Chinese person-name comparison a job config selects with ``matcher: chinese_name``."""
    return Comparison(
        name="name",
        columns=("name_raw", *COLUMNS[2:]),  # name_norm is for display only
        levels=select_levels(name_levels(pinyin_high, pinyin_low), levels),
        missing=_names_missing,
        tf_column="name_key",
        tf_levels=("exact", "normalised"),
        params={"levels": levels, "pinyin_high": pinyin_high, "pinyin_low": pinyin_low},
        features=NamePairs,
    )
