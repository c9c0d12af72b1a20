"""The household correspondences of the latest run for reviewers: their addresses, the list
page's rows and the page of one correspondence (both households side by side, who was assigned
to whom and how surely, the step's evidence in words).

A correspondence's URL carries a keyed digest of its two household labels under the server's
secret (as a pair's does, linkage/web/queue.py), so an address cannot be made up from household
numbers; the map back is kept per run. ID numbers leave this module masked as on the pair page.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass

import sqlalchemy as sa

from linkage.store import correspondences as store_corr
from linkage.web.display import IdCell, gender_label, mask_id_pair
from linkage.web.i18n import gettext as _
from linkage.web.records import Record, RecordBook

PAGE_SIZE = 50
SHOWN = ("look", "left_over", "agreed", "all")  # the list's filters (store TIERS)


def url_token(secret: bytes, insurance: str, registry: str) -> str:
    """The address of the correspondence of these two households under the server's secret."""
    message = "\x1f".join(("household-correspondence", insurance, registry)).encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def split_label(label: str) -> tuple[str, str]:
    """'source:household_id' -> (source, household_id)."""
    source, _sep, household_id = label.partition(":")
    return source, household_id


class Correspondences:
    """The latest run's correspondences by URL token (the run is the review queue's)."""

    def __init__(self, engine: sa.Engine, secret: str | bytes):
        self.engine = engine
        self._secret = secret.encode("utf-8") if isinstance(secret, str) else secret
        self._run: str | None = None
        self._by_url: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def token(self, insurance: str, registry: str) -> str:
        return url_token(self._secret, insurance, registry)

    def find(self, run_id: str | None, token: str) -> tuple[str, str] | None:
        """The (insurance, registry) households at a URL token in ``run_id``, or None."""
        if run_id is None:
            return None
        if run_id != self._run:
            with self._lock:
                if run_id != self._run:
                    self._by_url = {self.token(a, b): (a, b)
                                    for a, b in store_corr.keys(self.engine, run_id)}
                    self._run = run_id
        return self._by_url.get(token)


@dataclass
class Side:
    """One member on one side of a correspondence's row (None fields where absent)."""
    record_id: str
    name: str
    relation: str
    birth: str
    gender: str
    id_cells: list[IdCell]


@dataclass
class MemberRow:
    insurance: Side | None
    registry: Side | None
    weight: float | None  # the assigned pair's household weight (bits); None: not assigned
    strong: bool


@dataclass
class CorrespondenceView:
    row: object  # the stored correspondence (household_correspondences columns)
    insurance: tuple[str, str]  # (source, household id)
    registry: tuple[str, str]
    members: list[MemberRow]
    evidence: list[str]  # the step's evidence, in the page's language
    decision: str  # the standing decision on it ('' where none)


def _id_of(record: Record | None) -> str:
    if record is None:
        return ""
    return record.id_norm or record.fields.get("id_number", "").strip()


def _side(record: Record | None, record_id: str, cells: list[IdCell]) -> Side:
    if record is None:  # not among the records read: its key only
        return Side(record_id, "", "", "", "", [])
    return Side(record.record_id, record.name, record.fields.get("relation", ""), record.birth,
                gender_label(record.gender), cells)


def members(book: RecordBook, insurance: tuple[str, str], registry: tuple[str, str],
            assignment: list) -> list[MemberRow]:
    """The assigned member pairs (strongest first), then each side's members left over."""
    ins = {r.record_id: r for r in book.household_members(*insurance)}
    reg = {r.record_id: r for r in book.household_members(*registry)}
    rows, used_i, used_r = [], set(), set()
    for i, r, weight, strong in sorted(assignment, key=lambda a: (not a[3], -a[2])):
        a, b = ins.get(i) or book.get(insurance[0], i), reg.get(r) or book.get(registry[0], r)
        cells_a, cells_b = mask_id_pair(_id_of(a), _id_of(b))
        rows.append(MemberRow(_side(a, i, cells_a), _side(b, r, cells_b), float(weight),
                              bool(strong)))
        used_i.add(i)
        used_r.add(r)
    def alone(rec: Record) -> Side:  # masked, no character marked as differing
        return _side(rec, rec.record_id, mask_id_pair(_id_of(rec), _id_of(rec))[0])

    rows += [MemberRow(alone(rec), None, None, False)
             for record_id, rec in ins.items() if record_id not in used_i]
    rows += [MemberRow(None, alone(rec), None, False)
             for record_id, rec in reg.items() if record_id not in used_r]
    return rows


def evidence(row) -> list[str]:
    """What the household step found, in words: how many members agree, on how many anchors,
    who is left over, and what became of the correspondence."""
    size = max(int(row.members_insurance), int(row.members_registry))
    said = [_("%(agree)s of %(size)s members agree") % {"agree": row.members_agreeing,
                                                        "size": size},
            _("%(anchors)s members link on their own evidence (anchors)")
            % {"anchors": row.anchors}]
    if row.left_insurance or row.left_registry:
        said.append(_("left over: %(insurance)s in the NCMS household, %(registry)s in the "
                      "registry household") % {"insurance": row.left_insurance,
                                               "registry": row.left_registry})
    if row.kind == "dropped":
        said.append(_("The household step dropped it: its one anchor is assigned more surely "
                      "in another household. Same household keeps it in the next run."))
    elif row.kind == "rejected":
        said.append(_("A reviewer said it is not the same household: the run assigned no "
                      "member inside it."))
    elif row.decision == "same":
        said.append(_("A reviewer confirmed it: the run kept it."))
    return said


def build(book: RecordBook, row, decision: str) -> CorrespondenceView:
    """The page of one stored correspondence."""
    insurance, registry = split_label(row.insurance_household), split_label(row.registry_household)
    try:
        assignment = json.loads(row.assignment or "[]")
    except ValueError:
        assignment = []
    return CorrespondenceView(row, insurance, registry,
                              members(book, insurance, registry, assignment), evidence(row),
                              decision)
