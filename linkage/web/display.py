"""What a reviewer sees of two values: character differences, masked ID numbers, weight bars,
and the stored codes (fields, bands, decisions, roles, model levels, gender, audit actions,
sources) in the page's language.

Pure functions over strings, so the privacy rules (what part of an ID number leaves the server)
are tested without a browser. Templates only render the segments these return. The code tables
here are the one place a page's words for a code come from (linkage/web/rendering.py hands them
to the templates); the stored codes, the check API's codes and the batch outputs stay as they
are, and an unknown code is shown as it is.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from linkage.web import i18n
from linkage.web.i18n import N_
from linkage.web.i18n import gettext as _

# What a reviewer sees of an ID number: the province (2 digits) and nothing else. The page shows
# the birth date and gender, which fix the number's 8 date digits and the parity of its 17th;
# the check character follows from the rest. Showing more would let the page complete the
# number: with the prefecture (4 digits) shown only ~10 county codes and 500 sequences are left,
# and showing the check character cuts that by 11 again. With the province alone about 100k
# numbers fit everything the page shows (~200 county codes x 500 sequences).
REVIEW_HEAD = 2
# The check API's masked scope (mask_id) shows the prefecture and the last four characters.
VISIBLE_HEAD = 4
VISIBLE_TAIL = 4
MASK = "*"
_ID_CHAR = re.compile(r"[0-9XxＸｘ０-９]")
_ID_LIKE = re.compile(r"[0-9０-９]{17}[0-9XxＸｘ０-９]|[0-9０-９]{15}")


@dataclass(frozen=True)
class Segment:
    text: str
    changed: bool


@dataclass(frozen=True)
class IdCell:
    char: str
    differs: bool
    masked: bool


def char_diff(a: str | None, b: str | None,
              aligned: bool = False) -> tuple[list[Segment], list[Segment]]:
    """Both strings cut into runs of equal and differing characters (one character = one code
    point, so 王丽/王莉 differ in one place, not in three bytes).

    `aligned` compares position by position when the lengths agree: right for fixed formats
    such as yyyy-mm-dd, where a day/month swap should show as two changed fields.
    """
    a, b = a or "", b or ""
    if aligned and len(a) == len(b):
        return _runs(a, [x != y for x, y in zip(a, b)]), _runs(b, [x != y for x, y in zip(a, b)])
    left: list[Segment] = []
    right: list[Segment] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        same = op == "equal"
        if i2 > i1:
            left.append(Segment(a[i1:i2], not same))
        if j2 > j1:
            right.append(Segment(b[j1:j2], not same))
    return left, right


def _runs(text: str, changed: list[bool]) -> list[Segment]:
    out: list[Segment] = []
    for ch, flag in zip(text, changed):
        if out and out[-1].changed == flag:
            out[-1] = Segment(out[-1].text + ch, flag)
        else:
            out.append(Segment(ch, flag))
    return out


def _visible(i: int, n: int, head: int = VISIBLE_HEAD, tail: int = VISIBLE_TAIL) -> bool:
    return n >= 15 and (i < head or i >= n - tail)


def mask_id_pair(a: str | None, b: str | None) -> tuple[list[IdCell], list[IdCell]]:
    """Two ID numbers masked for a reviewer: the province digits stay, every other digit
    (the check character too) becomes '*', and each position where the numbers differ is marked.

    The reviewer learns where the numbers differ (one typo, two swapped digits, a damaged tail)
    but not the number itself, nor enough of it to complete it from the page's birth date and
    gender (see REVIEW_HEAD). Characters that are not digits (无, 待补, the E+ of Excel damage)
    are shown: they carry no identity.
    """
    a, b = a or "", b or ""

    def cells(s: str, other: str) -> list[IdCell]:
        out = []
        for i, ch in enumerate(s):
            differs = i >= len(other) or other[i] != ch
            hide = bool(_ID_CHAR.match(ch)) and not _visible(i, len(s), REVIEW_HEAD, 0)
            out.append(IdCell(MASK if hide else ch, differs, hide))
        return out

    return cells(a, b), cells(b, a)


def describe_id_difference(a: str | None, b: str | None) -> str:
    """A short phrase on how two ID numbers differ, safe to show (it names no digit)."""
    a, b = a or "", b or ""
    if not a or not b:
        return _("one side has no usable number") if (a or b) else _("no number on either side")
    if a == b:
        return _("identical")
    if len(a) != len(b):
        return _("different lengths (%(a)d and %(b)d characters)") % {"a": len(a), "b": len(b)}
    where = [i for i in range(len(a)) if a[i] != b[i]]
    if len(where) == 2 and where[1] == where[0] + 1 and a[where[0]] == b[where[1]] \
            and a[where[1]] == b[where[0]]:
        return _("two adjacent characters swapped (positions %(first)d-%(second)d)") % {
            "first": where[0] + 1, "second": where[1] + 1}
    if len(where) == 1:
        return _("one character differs (position %(position)d)") % {"position": where[0] + 1}
    return _("%(count)d characters differ") % {"count": len(where)}


def mask_free_text(value: str | None) -> str:
    """Hide anything shaped like a resident ID inside a free-text field (an extra column)."""
    if not value:
        return value or ""
    return _ID_LIKE.sub(lambda m: MASK * len(m.group(0)), value)


@dataclass(frozen=True)
class Bar:
    name: str
    level: str
    weight: float
    x: float  # SVG user units, in a 0..200 box whose centre (100) is weight 0
    width: float


def weight_bars(explanation: dict) -> list[Bar]:
    """Per-field match weights (bits) as bars from a centre line: right for evidence of a match,
    left against; all bars on one scale so their lengths compare."""
    items: list[tuple[str, str, float]] = []
    for name, value in explanation.items():
        if isinstance(value, dict):
            items.append((name, str(value.get("level", "")), float(value.get("weight") or 0.0)))
        elif isinstance(value, (int, float)):
            items.append((name, "", float(value)))
    scale = max((abs(w) for _, _, w in items), default=0.0) or 1.0
    bars = []
    for name, level, w in items:
        width = abs(w) / scale * 98
        bars.append(Bar(name, level, w, 100.0 if w >= 0 else 100.0 - width, width))
    return bars


def mask_id(value: str | None) -> str | None:
    """One ID number masked for check-API clients that may not see IDs: only the province
    digits stay, as on the review pages. The masked answer shows the birth year and the
    caller may send a guess per check, so the prefecture and last four characters (the old
    mask) left a few hundred completions: few enough to probe within a day's record limit."""
    if not value:
        return value
    return "".join(MASK if _ID_CHAR.match(ch) and not _visible(i, len(value), REVIEW_HEAD, 0)
                   else ch for i, ch in enumerate(value))


def mask_name(value: str | None) -> str | None:
    """A name with only its first character shown (张** , 包·***); middle dots stay."""
    if not value:
        return value
    return value[0] + "".join(ch if ch in "·•．・" else MASK for ch in value[1:])


# --------------------------------------------------------------------------- codes shown as words

# Translated where shown ({{ _(FIELD_LABELS[f]) }}): 姓名, 身份证号 … in Chinese.
FIELD_LABELS = {
    "name": N_("Name"), "id_number": N_("ID number"), "birth_date": N_("Date of birth"),
    "gender": N_("Gender"), "household_id": N_("Household number"),
    "relation": N_("Relation to head"), "township": N_("Township"), "village": N_("Village"),
    "ethnicity": N_("Ethnicity"), "status": N_("Registry status"), "address": N_("Address"),
    # the model's terms beside the fields (linkage.core.model's explanation)
    "place": N_("Place"), "household": N_("Household"), "prior": N_("Prior"),
}
# What a band, a decision or a role is called on the pages (the stored codes stay as they are).
BAND_LABELS = {"match": N_("match band"), "review": N_("review band"),
               "non_match": N_("non-match band")}
DECISION_LABELS = {"match": N_("Same person"), "non_match": N_("Not the same person"),
                   "unsure": N_("Unsure")}
ROLE_LABELS = {"reviewer": N_("reviewer"), "supervisor": N_("supervisor"), "admin": N_("admin")}
# A reviewer's decision on a household correspondence (linkage.store.correspondences).
HOUSEHOLD_DECISION_LABELS = {"same": N_("Same household"),
                             "different": N_("Not the same household"), "unsure": N_("Unsure")}
# The household step's kinds of correspondence (linkage.core.household).
CORRESPONDENCE_KINDS = {
    "1:1": N_("one to one"),
    "split": N_("split: one NCMS household in several registry households"),
    "merged": N_("merged: several NCMS households in one registry household"),
    "split+merged": N_("split and merged"),
    "dropped": N_("dropped: rests on one member who belongs to another household"),
    "rejected": N_("rejected by a reviewer"),
}

# The comparison levels of the registered matchers (matchers/), shortest honest words first.
# A label means the same in every comparison except where COMPARISON_LEVELS says otherwise.
LEVELS = {
    "exact": N_("identical"), "equal": N_("identical"), "different": N_("different"),
    "missing": N_("missing on a side"),
    # names
    "normalised": N_("same after normalising"), "pinyin": N_("homophones"),
    "phonetic": N_("alike when transliterated"), "lookalike": N_("a look-alike character"),
    "one_edit": N_("one character changed, added or dropped"),
    "surname_dropped": N_("surname dropped on a side"), "truncated": N_("cut short on a side"),
    "swapped": N_("order swapped"), "pinyin_high": N_("pinyin very alike"),
    "pinyin_low": N_("pinyin somewhat alike"),
    # the generic `string` matcher: <metric>_high / <metric>_low
    "jaro_winkler_high": N_("spelling very alike"),
    "jaro_winkler_low": N_("spelling somewhat alike"),
    "levenshtein_high": N_("spelling very alike"),
    "levenshtein_low": N_("spelling somewhat alike"),
    # dates
    "lunar": N_("lunar birthday on a side"), "within_days": N_("a few days apart"),
    "one_digit": N_("one digit differs"), "year_month": N_("same year and month"),
    "year": N_("same year"),
    # places
    "same_village": N_("same village"), "same_township": N_("same township"),
    # ID numbers
    "exact_valid": N_("same valid number"),
    "exact_upgraded": N_("same number (a side upgraded from 15 digits)"),
    "exact_flagged": N_("same number, flagged on a side"),
    "check_digit_only": N_("only the check character differs"),
    "excel_partial": N_("damaged by Excel, the surviving digits agree"),
    "exact_birth_conflict": N_("same number, but a birthdate contradicts it"),
    "other_region": N_("two valid numbers of different regions"),
}
COMPARISON_LEVELS = {
    ("birth_date", "swapped"): N_("day and month swapped"),
    ("name", "swapped"): N_("given-name characters swapped"),
    ("id_number", "one_digit"): N_("one digit changed or two swapped"),
}
GENDERS = {"M": N_("male"), "F": N_("female")}
# linkage.store.audit.ACTIONS, as the audit trail names them.
ACTIONS = {
    "login": N_("signed in"), "login_failed": N_("sign-in failed"), "logout": N_("signed out"),
    "view_pair": N_("opened a pair"), "decide": N_("decided"),
    "reveal_id": N_("revealed full ID numbers"), "reverse_decision": N_("reversed a decision"),
    "request_second_review": N_("asked for a second review"), "api_checks": N_("check API use"),
    "account_change": N_("account changed"), "token_change": N_("API token changed"),
    "view_correspondence": N_("opened a household correspondence"),
    "decide_correspondence": N_("decided a household correspondence"),
}
# The keys of an audit entry's detail (linkage.store.review, linkage.web.auth, the CLI).
DETAIL_KEYS = {
    "decision": N_("decision"), "probability": N_("probability"), "active": N_("active"),
    "second_review": N_("second review"), "run_id": N_("run"),
    "without_lease": N_("without a lease"), "fields": N_("fields"), "address": N_("address"),
    "locked_seconds": N_("locked for (s)"), "reviewer": N_("reviewer"),
    "was_active": N_("was active"), "note": N_("note"), "first_reviewer": N_("first reviewer"),
    "username": N_("username"), "change": N_("change"), "role": N_("role"),
    "day": N_("day"), "records": N_("records"), "refused": N_("refused"),
    "insurance_household": N_("NCMS household"), "registry_household": N_("registry household"),
}

# An account or token change's kind (linkage.cli: `users` and `tokens` commands).
CHANGES = {"added": N_("added"), "password": N_("new password"), "role": N_("new role"),
           "enable": N_("enabled"), "disable": N_("disabled"), "revoked": N_("revoked")}


def _word(table: dict[str, str], code: str | None) -> str:
    """A code in the page's language; an unknown (or empty) code as it is."""
    return _(table[code]) if code in table else (code or "")


def label(table: dict[str, str], code: str | None, empty: str = "—") -> str:
    """A stored code (band, decision, role) in the page's language; unknown codes as they are,
    no code as ``empty``."""
    return _word(table, code) if code else empty


def level_label(comparison: str, level: str | None) -> str:
    """A comparison level (``exact``, ``jaro_winkler_high``, ``missing``) in words."""
    said = COMPARISON_LEVELS.get((comparison, level or ""))
    return _(said) if said else _word(LEVELS, level)


def gender_label(code: str | None) -> str:
    """M / F as 男 / 女 (male / female); anything else as it is."""
    return _word(GENDERS, code)


def action_label(code: str | None) -> str:
    """An audit action code (``view_pair``) in words."""
    return _word(ACTIONS, code)


def detail_label(key: str) -> str:
    """The key of an audit entry's detail in words."""
    return _word(DETAIL_KEYS, key)


def change_label(code: str | None) -> str:
    """The kind of an account or token change (``revoked``) in words."""
    return _word(CHANGES, code)


# A source that has no scheme (so no display name) is named by its role: the police registry is
# 户籍 (registry); a source of role `other` (a school's pupil list, a village's own census) is
# 其他来源 with its config name beside it, since the word alone does not say which list it is.
ROLE_SOURCES = {"authority": N_("registry"), "other": N_("other source")}
ALWAYS_NAMED_ROLES = {"other"}


@dataclass(frozen=True)
class SourceName:
    """How the pages name one source, in whichever language the page is in.

    An insurance source by its scheme: the display name in Chinese (新农合), the scheme code in
    English (NCMS). Any other source by its role's word (户籍 / registry), with its config name
    beside it when several sources share the word (户籍（police_old）) and always for role
    `other` (其他来源（school）).
    """

    scheme: str | None = None  # the scheme code
    display: str | None = None  # the scheme's display name
    role_word: str | None = None  # a ROLE_SOURCES msgid
    source: str | None = None  # the config name, shown beside a shared role word

    def label(self) -> str:
        if self.scheme is not None:
            return self.scheme if i18n.current() == "en" else (self.display or self.scheme)
        if not self.role_word:
            return self.source or ""
        word = _(self.role_word)
        if self.source:
            return _("%(role)s (%(source)s)") % {"role": word, "source": self.source}
        return word


SourceNames = dict[str, SourceName]


def source_names(config) -> SourceNames:
    """Source name -> its :class:`SourceName` for every source of a job config whose scheme or
    role has a word (JobConfig.scheme_names: a scheme's display name, else its code); none
    without a config."""
    if config is None:
        return {}
    names = config.scheme_names
    out: SourceNames = {}
    for s in config.sources:
        if s.role == "insurance":
            code = s.scheme or s.name
            out[s.name] = SourceName(scheme=code, display=names.get(code, code))
    by_role: dict[str, list[str]] = {}
    for s in config.sources:
        if s.role != "insurance" and s.role in ROLE_SOURCES:
            by_role.setdefault(s.role, []).append(s.name)
    for role, sources in by_role.items():
        for name in sources:
            named = len(sources) > 1 or role in ALWAYS_NAMED_ROLES
            out[name] = SourceName(role_word=ROLE_SOURCES[role], source=name if named else None)
    return out


def source_label(names: SourceNames | None, source: str) -> str:
    """A source as the office names it (see :class:`SourceName`): 新农合 / NCMS, 户籍 /
    registry, 其他来源（school）; a source not in the config (or no config) by its name."""
    name = (names or {}).get(source)
    return name.label() if name is not None else source


def record_label(names: SourceNames | None, key) -> str:
    """A record key, ``(source, record_id)`` or ``"source:record_id"``, with the source's
    words: 新农合:NC000123, 户籍:GA000045. The record id stays as it is."""
    if isinstance(key, str):
        source, sep, record_id = key.partition(":")
        if not sep:
            return key
    else:
        source, record_id = key
    return f"{source_label(names, source)}:{record_id}"
