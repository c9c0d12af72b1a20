"""The pair page's content: two records field by field with their differences, the model's
reasons as bars, both households and the other candidates of each record.

ID numbers leave this module masked unless `reveal` is set, which only the reveal route (a
supervisor's audited POST) does; household and candidate lists carry no ID number at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from linkage.core.config import STANDARD_FIELDS
from linkage.web.display import (
    Bar,
    IdCell,
    Segment,
    SourceNames,
    char_diff,
    describe_id_difference,
    gender_label,
    mask_free_text,
    mask_id_pair,
    weight_bars,
)
from linkage.web.i18n import N_
from linkage.web.i18n import gettext as _
from linkage.web.queue import ReviewQueue, ScoredPair
from linkage.web.records import Record, RecordBook
from linkage.web.refusal import Refusal, explain, household_note

ID_STATUS_TEXT = {
    "valid": N_("check digit valid"), "bad_check": N_("check digit wrong"),
    "missing": N_("missing"), "upgraded": N_("old 15-digit number, shown upgraded to 18"),
    "excel_damaged": N_("damaged by Excel"),
}


@dataclass
class Row:
    field: str
    columns: tuple[str, str]
    kind: str  # 'diff' (segments), 'id' (cells), 'text'
    left: list = field(default_factory=list)
    right: list = field(default_factory=list)
    notes: tuple[str, str] = ("", "")
    summary: str = ""

    @property
    def differs(self) -> bool:
        return any(getattr(part, "changed", False) or getattr(part, "differs", False)
                   for part in (*self.left, *self.right))


@dataclass
class Member:
    record_id: str
    name: str
    relation: str
    birth: str
    gender: str  # in the page's language (男 / 女)
    is_self: bool


@dataclass
class Other:
    record: str
    name: str
    probability: float | None
    band: str | None
    refused: bool


@dataclass
class PairView:
    pair: ScoredPair
    left: Record | None
    right: Record | None
    rows: list[Row]
    bars: list[Bar]
    households: tuple[list[Member], list[Member]]
    others: tuple[list[Other], list[Other]]
    revealed: bool
    refusal: Refusal | None = None  # a refused merge: who collides, what each key will do
    household_note: str = ""  # why the household term is what it is, in the page's language


def _id_value(record: Record) -> str:
    return record.id_norm or record.fields.get("id_number", "").strip()


def _id_row(a: Record, b: Record, reveal: bool) -> Row:
    va, vb = _id_value(a), _id_value(b)
    cells_a, cells_b = mask_id_pair(va, vb)
    if reveal:
        cells_a = [IdCell(ch, c.differs, False) for ch, c in zip(va, cells_a)]
        cells_b = [IdCell(ch, c.differs, False) for ch, c in zip(vb, cells_b)]
    notes = tuple(_(ID_STATUS_TEXT[r.id_status]) if r.id_status in ID_STATUS_TEXT
                  else r.id_status or "" for r in (a, b))
    if reveal:
        notes = tuple(_("%(status)s; as typed: %(typed)s") % {
            "status": n, "typed": r.fields.get("id_number", "")} for n, r in zip(notes, (a, b)))
    return Row("id_number", (a.columns.get("id_number", ""), b.columns.get("id_number", "")),
               "id", cells_a, cells_b, notes, describe_id_difference(va, vb))


def _typed(*pairs: tuple[str | None, str]) -> tuple[str, ...]:
    """What was typed, where it differs from the standardised value shown."""
    return tuple(_("as typed: %(raw)s") % {"raw": raw} if raw and raw != std else ""
                 for raw, std in pairs)


def _value_row(name: str, a: Record, b: Record) -> Row:
    cols = (a.columns.get(name, ""), b.columns.get(name, ""))
    va, vb = a.fields.get(name), b.fields.get(name)
    if name == "birth_date":  # compare the parsed dates; show what was typed beside them
        notes = _typed((va, a.birth), (vb, b.birth))
        left, right = char_diff(a.birth or va, b.birth or vb, aligned=True)
        return Row(name, cols, "diff", left, right, notes)
    if name == "gender":  # 男 / 女 (male / female), whole words: a character diff says nothing
        shown = [gender_label(r.gender) if r.gender else (v or "") for r, v in ((a, va), (b, vb))]
        notes = _typed((va, shown[0]), (vb, shown[1]))
        left, right = ([Segment(x, shown[0] != shown[1])] if x else [] for x in shown)
        return Row(name, cols, "diff", left, right, notes)
    # Mapped on one side only, or household codes of two sources (different numbering schemes).
    if va is None or vb is None or (name == "household_id" and a.source != b.source):
        return Row(name, cols, "text", [Segment(mask_free_text(va), False)] if va else [],
                   [Segment(mask_free_text(vb), False)] if vb else [])
    left, right = char_diff(mask_free_text(va), mask_free_text(vb))
    return Row(name, cols, "diff", left, right)


def _rows(a: Record, b: Record, reveal: bool) -> list[Row]:
    names = [f for f in STANDARD_FIELDS if f in a.fields or f in b.fields]
    names += [f for f in dict.fromkeys([*a.fields, *b.fields]) if f not in names]
    rows = [_id_row(a, b, reveal) if n == "id_number" else _value_row(n, a, b) for n in names]
    for rec, side in ((a, 0), (b, 1)):
        for col, value in rec.extras.items():
            seg = [Segment(mask_free_text(value), False)]
            rows.append(Row(col, (col, "") if side == 0 else ("", col), "text",
                            seg if side == 0 else [], seg if side == 1 else []))
    return rows


def _members(book: RecordBook, rec: Record | None) -> list[Member]:
    if rec is None:
        return []
    return [Member(m.record_id, m.name, m.fields.get("relation", ""), m.birth,
                   gender_label(m.gender), m.key == rec.key) for m in book.household(*rec.key)]


def _others(queue: ReviewQueue, book: RecordBook, pair: ScoredPair,
            key: tuple[str, str]) -> list[Other]:
    out = []
    for p in queue.other_pairs(key, pair.ref.token):
        other = p.ref.right if p.ref.left == key else p.ref.left
        rec = book.get(*other)
        out.append(Other(f"{other[0]}:{other[1]}", rec.name if rec else "", p.probability,
                         p.band, p.refused_merge))
    return out


def build(queue: ReviewQueue, book: RecordBook, pair: ScoredPair, reveal: bool = False,
          names: SourceNames | None = None) -> PairView:
    """The pair page of ``pair``; ``names`` (display.source_names) names the sources in the
    refusal and household notes as the rest of the page does."""
    a, b = book.get(*pair.ref.left), book.get(*pair.ref.right)
    rows = _rows(a, b, reveal) if a and b else []
    return PairView(
        pair=pair, left=a, right=b, rows=rows, bars=weight_bars(pair.explanation),
        households=(_members(book, a), _members(book, b)),
        others=(_others(queue, book, pair, pair.ref.left),
                _others(queue, book, pair, pair.ref.right)),
        revealed=reveal,
        refusal=explain(pair.reason, book, names) if pair.refused_merge else None,
        household_note=household_note(pair.explanation.get("household_note"), names),
    )
