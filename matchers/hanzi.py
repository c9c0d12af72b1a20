"""Character-level data for comparing Chinese names: comparison forms, readings, look-alikes.

Everything here works one character (or one syllable) at a time and is cached, because names are
built from a few thousand characters: pypinyin and OpenCC are slow per call, but each character
is looked up once per process. The name-level logic lives in :mod:`matchers.person_name`.

Data sources: OpenCC ``t2s`` (traditional to simplified), pypinyin's character dictionary
(readings, with ``heteronym=True`` for every reading of a character), the ``four_corner_method``
package (four-corner codes, for look-alike characters) and the small tables in ``data/``
(surnames, surname readings, name-character variants), each explained in its header.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

DATA = Path(__file__).with_name("data")


def _rows(filename: str) -> list[list[str]]:
    """Non-comment lines of a data file, split on tabs (or whitespace when there is no tab)."""
    rows = []
    for line in (DATA / filename).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].rstrip()
        if line:
            rows.append(line.split("\t") if "\t" in line else line.split())
    return rows


COMMON_SURNAMES: frozenset[str] = frozenset(c for row in _rows("surnames_common.txt") for c in row)
COMPOUND_SURNAMES: dict[str, tuple[str, ...]] = {
    surname: tuple(reading.split()) for surname, reading in _rows("surnames_compound.tsv")
}
SURNAME_READINGS: dict[str, str] = dict(_rows("surname_readings.tsv"))
VARIANTS: dict[str, str] = {
    variant: canonical for canonical, variants in _rows("name_variants.tsv") for variant in variants
}


# --- comparison form of a character -------------------------------------------------------

_converter = None


def _t2s(char: str) -> str:
    global _converter
    if _converter is None:
        import opencc

        _converter = opencc.OpenCC("t2s")
    return _converter.convert(char)


@cache
def key_char(char: str) -> str:
    """The comparison form of one character: simplified (OpenCC t2s), variant-folded, casefolded.

    Converted one character at a time, not as phrases, so that the same character always gets
    the same key whatever stands next to it (and a dot or space inserted anywhere cannot change
    the key). Lossy on purpose (乾→干, 於→于): a key is for comparing, never for display.
    """
    out = _t2s(char)
    out = "".join(VARIANTS.get(c, c) for c in out)
    return out.casefold()


# --- readings ------------------------------------------------------------------------------


@cache
def readings(char: str) -> tuple[str, ...]:
    """Toneless pinyin readings of a Han character, pypinyin's default first; () if not Han."""
    from pypinyin import Style, pinyin

    found = pinyin(char, style=Style.NORMAL, heteronym=True, errors=lambda _: None)
    if not found:
        return ()
    return tuple(dict.fromkeys(r for r in found[0] if r.isascii() and r.isalpha()))


def surname_readings(surname: str) -> tuple[str, ...] | None:
    """How a surname is read, syllable by syllable, where that differs from pypinyin's default."""
    if surname in COMPOUND_SURNAMES:
        return COMPOUND_SURNAMES[surname]
    if surname in SURNAME_READINGS:
        return (SURNAME_READINGS[surname],)
    return None


class ReadingSets:
    """Registry of reading sets with ids, and the matrix saying which two sets share a reading.

    Two characters sound alike when their reading sets intersect (勒 {le, lei} / 雷 {lei}).
    Giving each distinct set an id lets a whole column of character pairs be tested with one
    numpy lookup in a small boolean matrix. Han sets are bounded (pypinyin knows about 4,500
    distinct sets over 426 syllables); a non-Han character gets an id above ``OTHER`` that only
    matches itself, so odd input cannot grow the matrix.
    """

    OTHER = 1 << 24
    PAD = -1

    def __init__(self) -> None:
        self._han: dict[frozenset[str], int] = {}
        self._sets: list[frozenset[str]] = []  # by id
        self._by_syllable: dict[str, list[int]] = {}  # syllable -> ids of the sets holding it
        self._other: dict[str, int] = {}
        self._matrix = np.zeros((0, 0), dtype=bool)  # capacity x capacity; _filled ids set
        self._filled = 0

    def han_id(self, readings_: frozenset[str]) -> int:
        found = self._han.get(readings_)
        if found is None:
            found = self._han[readings_] = len(self._sets)
            self._sets.append(readings_)
            for syllable in readings_:
                self._by_syllable.setdefault(syllable, []).append(found)
        return found

    def other_id(self, char: str) -> int:
        found = self._other.get(char)
        if found is None:
            found = self._other[char] = self.OTHER + len(self._other)
        return found

    def overlap(self) -> np.ndarray:
        """Boolean matrix over the Han set ids registered so far: do the two sets intersect?

        Grown by the rows of new sets only (each looked up through the syllables it holds),
        with a quarter spare room as it grows: a server meeting a new reading set mid-check pays
        microseconds (a few ms when the room grows), not a rebuild of the whole matrix (~100 ms
        at 4,500 sets).
        """
        n = len(self._sets)
        if self._filled < n:
            if self._matrix.shape[0] < n:
                room = n + n // 4 + 256  # a quarter spare: ~30 MB at 4,500 sets, not 80
                grown = np.zeros((room, room), dtype=bool)
                grown[:self._filled, :self._filled] = self._matrix[:self._filled, :self._filled]
                self._matrix = grown
            for sid in range(self._filled, n):
                shared = np.fromiter({other for syllable in self._sets[sid]
                                      for other in self._by_syllable[syllable]}, dtype=np.int64)
                self._matrix[sid, shared] = True
                self._matrix[shared, sid] = True
            self._filled = n
        return self._matrix

    def match(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Element-wise: do the sets with these ids share a reading (PAD matches only PAD)?"""
        ok = left == right
        han = ~ok & (left >= 0) & (right >= 0) & (left < self.OTHER) & (right < self.OTHER)
        if han.any():
            ok[han] = self.overlap()[left[han], right[han]]
        return ok


READING_SETS = ReadingSets()


@cache
def _char_sid(char: str, surname_reading: str | None) -> int:
    found = readings(char)
    if not found:
        return READING_SETS.other_id(char)
    extra = (surname_reading,) if surname_reading else ()
    return READING_SETS.han_id(frozenset(found + extra))


def reading_set_ids(key: str, surname: str | None) -> list[int]:
    """One reading-set id per character of a name key; the surname's own readings are added."""
    special = surname_readings(surname) if surname and key.startswith(surname) else None
    out = []
    for i, char in enumerate(key):
        extra = special[i] if special and i < len(special) else None
        out.append(_char_sid(char, extra))
    return out


# --- look-alike characters -----------------------------------------------------------------

_four_corner = None


@cache
def four_corner(char: str) -> str | None:
    """The five-digit four-corner code (四角号码, with the supplementary corner) of a character."""
    global _four_corner
    if _four_corner is None:
        from four_corner_method import FourCornerMethod

        _four_corner = FourCornerMethod()
    return _four_corner.query(char)


def looks_alike(a: str, b: str) -> bool:
    """Two different characters with the same four-corner code (己/已, 戊/戌, 候/侯, 未/末).

    The four-corner method codes the stroke shapes at a character's four corners plus one
    supplementary corner, so an equal code means the same corner shapes: what the eye confuses
    when reading a hand-written form. It is coarse (冈/同/网/周 share a code too), which is why
    this only refines a one-character substitution, never a match on its own.
    """
    if a == b:
        return False
    code = four_corner(a)
    return code is not None and code == four_corner(b)


# --- phonetic folding of transliterated names ------------------------------------------------

# Initial consonant classes. Mongolian sounds are written with whichever Chinese syllable is
# closest, and scribes differ: voiced and aspirated stops are one Mongolian phoneme written
# either way (巴/帕, 达/塔, 嘎/卡/哈), affricates and sibilants swap (其/齐/扎/查, 苏/舒/希),
# l and r are written alike (力/日/勒/尔), and y-/w- are just glides before a vowel.
_INITIALS = {
    "b": "B", "p": "B", "m": "M", "f": "F", "d": "D", "t": "D", "n": "N",
    "l": "L", "r": "L", "g": "G", "k": "G", "h": "G",
    "j": "J", "q": "J", "zh": "J", "ch": "J", "z": "J", "c": "J",
    "x": "S", "s": "S", "sh": "S", "y": "0", "w": "0", "": "0",
}  # fmt: skip
_INITIAL_CLASSES = "0BMFDNLGJS"
_VOWEL_CLASSES = "AE"
FOLD_BASE = 0xE000  # Unicode private-use area: one code point per folded syllable


@cache
def fold_syllable(syllable: str) -> str:
    """One private-use character standing for a toneless pinyin syllable's folded sound.

    A syllable folds to (initial class, vowel class):

    * the initial to its class above (b/p, d/t, g/k/h, j/q/zh/ch/z/c, x/s/sh, l/r, y/w/none);
    * ``er`` (尔/儿), a Mongolian final -r, to the l/r class with a reduced vowel, so 尔, 儿, 日,
      勒, 力 all fold alike;
    * a final nasal (-n, -ng) is dropped: 敦 dun / 登 deng, 格 / 根;
    * the vowel to ``A`` when the final is built on a (a, ia, ua, ai, an, ang ...) and to a
      reduced ``E`` otherwise: e, i, u, o, ü, ao, ou, ei ... are the vowels scribes swap when
      writing an unstressed Mongolian vowel (特 te / 图 tu, 木 mu / 米 mi); ao and iao join them
      because they write Mongolian o (宝 / 博, 陶 / 图).

    The code point is computed from the two classes, so a folded name is stable across runs and
    machines and can be stored.
    """
    s = syllable.lower()
    if not s.isascii() or not s.isalpha():
        return syllable
    if s == "er":
        initial, vowel = "L", "E"
    else:
        head = s[:2] if s[:2] in ("zh", "ch", "sh") else s[:1] if s[:1] in _INITIALS else ""
        initial = _INITIALS[head]
        final = s[len(head):]
        if final.endswith("ng"):
            final = final[:-2]
        elif final.endswith("n") and len(final) > 1:
            final = final[:-1]
        vowel = "A" if "a" in final and final not in ("ao", "iao") else "E"
    code = _INITIAL_CLASSES.index(initial) * len(_VOWEL_CLASSES) + _VOWEL_CLASSES.index(vowel)
    return chr(FOLD_BASE + code)


def describe_fold(folded: str) -> str:
    """A readable form of a folded name for reports and debugging, e.g. ``B-A D-E L-E``."""
    parts = []
    for char in folded:
        code = ord(char) - FOLD_BASE
        if 0 <= code < len(_INITIAL_CLASSES) * len(_VOWEL_CLASSES):
            initial, vowel = divmod(code, len(_VOWEL_CLASSES))
            parts.append(f"{_INITIAL_CLASSES[initial]}-{_VOWEL_CLASSES[vowel]}")
        else:
            parts.append(char)
    return " ".join(parts)
