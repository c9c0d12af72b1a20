"""What a refused merge means for the reviewer: which records collide, and what each decision
key will do, in the page's language.

The run stores a refused pair's reason in English words that name the colliding records
(linkage.core.cluster.refusal_reasons); this module reads those names back and looks the
records up, so the page can say whether 同一人 creates a CONFLICT: it does when two registry
records with different valid ID numbers end in one entity (linkage.core.golden). A decision
that will, or may (the records are not loaded), create a CONFLICT must be confirmed.

The page names each record as the rest of the pages do (linkage.web.display.record_label:
户籍:GA000045, 新农合:NC000123); the stored reason, and the batch outputs that carry it
(review_pairs.csv), keep the config's source names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from linkage.web.display import SourceNames, record_label
from linkage.web.i18n import N_
from linkage.web.i18n import gettext as _
from linkage.web.records import Record, RecordBook

_REGISTRY = re.compile(r"^would put registry records (\S+) and (\S+) \(two registry persons\)")
_KEPT_APART = re.compile(r"^would join (\S+) and (\S+), kept apart by (.+)$")
# A reason cut short in the store (REASON_CHARS) may have lost the note's closing parenthesis.
_HOUSEHOLD = re.compile(r"^the household rule(?: \((.*?)\)?)?$")
VALID_ID = ("valid", "upgraded")  # the ID statuses the golden record counts as valid numbers
# The household step's notes (linkage.core.household), in the page's language.
HOUSEHOLD_NOTES = {
    "two members of one household": N_("two members of one household"),
    "a parent's ID on a child's record: its birthdate is a generation away":
        N_("a parent's ID on a child's record: its birthdate is a generation away"),
    "the two records are assigned to different registry persons in their households":
        N_("the two records are assigned to different registry persons in their households"),
}
_ASSIGNED = re.compile(r"^assigned within (.+), (\d+) of (\d+) members agree, \+([0-9.]+) bits$")
_CONTRADICTED = re.compile(r"^a member is assigned to another within (.+)$")


def _households(within: str, names: SourceNames | None) -> str:
    """``source:household↔source:household`` with the sources' words (新农合:H1↔户籍:H2)."""
    return "↔".join(record_label(names, part) for part in within.split("↔"))


def household_note(note: str | None, names: SourceNames | None = None) -> str:
    """A household step's note in the page's language, the households it names with their
    sources' words (an unknown note as it is)."""
    if not note:
        return ""
    if note in HOUSEHOLD_NOTES:
        return _(HOUSEHOLD_NOTES[note])
    found = _ASSIGNED.match(note)
    if found:
        within, agree, size, bits = found.groups()
        return _("assigned within %(within)s: %(agree)s of %(size)s members agree, +%(bits)s "
                 "bits") % {"within": _households(within, names), "agree": agree,
                            "size": size, "bits": bits}
    found = _CONTRADICTED.match(note)
    if found:
        return _("a member is assigned to another person within %(within)s") % {
            "within": _households(found.group(1), names)}
    return note


@dataclass(frozen=True)
class Effect:
    decision: str  # match, non_match, unsure
    text: str
    conflict: bool = False  # this decision will (or may) create a CONFLICT: confirm first


@dataclass(frozen=True)
class Refusal:
    summary: str
    effects: tuple[Effect, ...]

    def needs_confirmation(self, decision: str) -> bool:
        return any(e.decision == decision and e.conflict for e in self.effects)

    def effect(self, decision: str) -> Effect | None:
        return next((e for e in self.effects if e.decision == decision), None)


def _key(text: str) -> tuple[str, str] | None:
    source, sep, record_id = text.rstrip("…;,").partition(":")
    return (source, record_id) if sep and record_id else None


def _named(text: str, book: RecordBook, names: SourceNames | None) -> str:
    """``source:record`` with the source's words (户籍:GA1) and the record's name beside it when
    the record is loaded; a key cut short in the stored reason keeps its "…"."""
    key = _key(text)
    if key is None:
        return text
    shown = record_label(names, key) + text[len(text.rstrip("…;,")):]
    record = book.get(*key)
    return f"{shown}（{record.name}）" if record is not None and record.name else shown


def _valid_id(record: Record | None) -> str | None:
    if record is None or record.id_status not in VALID_ID:
        return None
    return record.id_norm or None


def _keep_apart() -> tuple[Effect, Effect]:
    return (Effect("non_match", _("Not the same person: keeps them apart; the next runs keep "
                                  "them as two persons.")),
            Effect("unsure", _("Unsure: leaves the pair in the queue for another reviewer "
                               "(you will not be shown it again).")))


def _registry(a: str, b: str, book: RecordBook, sources: SourceNames | None) -> Refusal:
    ka, kb = _key(a), _key(b)
    ra = book.get(*ka) if ka else None
    rb = book.get(*kb) if kb else None
    names = {"a": _named(a, book, sources), "b": _named(b, book, sources)}
    summary = _("Merge refused: deciding this pair is one person would put the registry "
                "records %(a)s and %(b)s (two registry persons) in one entity.") % names
    if ra is None or rb is None:
        match = Effect("match", _("Same person: creates a CONFLICT if the registry records %(a)s "
                                  "and %(b)s carry different ID numbers (the records are not "
                                  "loaded, so this page cannot tell); a CONFLICT gets no card "
                                  "until the registry office resolves it.") % names, True)
    elif _valid_id(ra) and _valid_id(rb) and _valid_id(ra) != _valid_id(rb):
        match = Effect("match", _("Same person: creates a CONFLICT, because the registry records "
                                  "%(a)s and %(b)s carry different ID numbers; a CONFLICT gets "
                                  "no card until the registry office resolves it.") % names, True)
    elif _valid_id(ra) and _valid_id(ra) == _valid_id(rb):
        match = Effect("match", _("Same person: merges the registry records %(a)s and %(b)s into "
                                  "one person (both carry the same ID number): one person "
                                  "registered twice, for the registry office to remove one "
                                  "entry.") % names)
    else:
        match = Effect("match", _("Same person: merges the registry records %(a)s and %(b)s into "
                                  "one person under the one valid ID number they carry; no "
                                  "CONFLICT.") % names)
    return Refusal(summary, (match, *_keep_apart()))


def _kept_apart(a: str, b: str, kind: str, book: RecordBook,
                sources: SourceNames | None) -> Refusal:
    names = {"a": _named(a, book, sources), "b": _named(b, book, sources)}
    household = _HOUSEHOLD.match(kind)
    if household:
        names["why"] = household_note(household.group(1), sources) or _("the household rule")
        summary = _("Merge refused: it would join %(a)s and %(b)s, which the household rule "
                    "keeps apart (%(why)s).") % names
        match = Effect("match", _("Same person: joins %(a)s and %(b)s in one entity; right only "
                                  "if one person is listed twice in the household.") % names)
    else:
        summary = _("Merge refused: it would join %(a)s and %(b)s, which a reviewer decided are "
                    "not the same person.") % names
        match = Effect("match", _("Same person: joins %(a)s and %(b)s in one entity, against "
                                  "that reviewer's decision; a supervisor sees both decisions in "
                                  "the log.") % names)
    return Refusal(summary, (match, *_keep_apart()))


def explain(reason: str, book: RecordBook, sources: SourceNames | None = None) -> Refusal:
    """The refusal behind a pair's stored ``reason``, for a pair kept apart by a constraint;
    ``sources`` (linkage.web.display.source_names) names the records' sources."""
    found = _REGISTRY.match(reason)
    if found:
        return _registry(found.group(1), found.group(2), book, sources)
    found = _KEPT_APART.match(reason)
    if found:
        return _kept_apart(found.group(1), found.group(2), found.group(3), book, sources)
    # A reason that names no records (an older run, or `linkage add`): say what it may do.
    summary = _("Merge refused: it would put two registry persons, or records a reviewer kept "
                "apart, in one entity.")
    match = Effect("match", _("Same person: creates a CONFLICT if it joins two registry records "
                              "with different ID numbers; a CONFLICT gets no card until the "
                              "registry office resolves it."), True)
    return Refusal(summary, (match, *_keep_apart()))
