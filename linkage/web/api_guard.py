"""What a masked (``check``-scope) caller may ask, how often, and what it is told.

A masked answer must not let its caller recover what the mask hides. Per-field levels, weights
and probabilities would: one name sent with every date of a year finds the one whose birthdate
level is ``exact``, and 100 IDs varying the two hidden region digits find the one at
``exact_valid``. So a masked answer carries the verdict, a coarse reason and masked fields only.

The verdict itself has to change with the data (that is what a desk asks), so probing through
it is bounded instead:

* a masked record carries a name and either a full ID number or a birthdate of at least year and
  month: no ID-only or name-only probes;
* a masked request holds at most ``masked_batch`` records;
* each token may check so many records per minute, hour and day (records, not requests, so a
  batch counts for its size), with a moving window (the ``limits`` package);
* each token's daily count of checked and refused records goes to the audit trail (counts only,
  never the values), written off the request path.

The verdict's warnings (linkage/online/check.py) are bounded the same way (masked_warnings):
those that read the registry are given only for a record carrying a name and a full ID number,
the card a desk has in hand, so a name-and-birthdate probe learns nothing from them.
DECEASED and ALREADY_ENROLLED, which describe the person the verdict names, need that number
to be the person's own (a record of the entity carries it): a made-up number with a valid
check character beside a name and birthdate would otherwise open them to the probe.
ID_OTHER_PERSON tests the one number sent, exactly, and says neither whose it is nor which of
name and birthdate differ: each record tests one number against the record limits, never a
range of them (a damaged number's surviving digits are matched against none).
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from datetime import datetime, timezone

import sqlalchemy as sa
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from linkage.online.check import INPUT_WARNINGS
from matchers.birthdate import parse_birthdate
from matchers.resident_id import parse_id

log = logging.getLogger(__name__)

MASKED_BATCH = 20  # records per request for the check scope
# Records per token; None: no limit. A desk checks a person in a minute or two; a school's
# whole class goes through a check_full token or a batch run.
DEFAULT_RATES: dict[str, str | None] = {
    "check": "30/minute;300/hour;2000/day",
    "check_full": "20000/minute",
}
FLUSH_SECONDS = 60.0  # usage counts go to the audit trail at most this often

# ID statuses of a number with all its digits (a wrong check digit is still a full number).
_FULL_ID = frozenset({"valid", "upgraded", "bad_check", "bad_date", "bad_region"})

# What a masked caller is told of why: by verdict only (the detailed reason names
# probabilities and thresholds).
COARSE_REASONS = {
    "new_person": "no known person matches this record",
    "known_person": "matches a known person",
    "duplicate_enrolment": "the person is already enrolled elsewhere (see enrolments)",
    "needs_review": "a possible match that a reviewer must decide",
}


class RateLimited(Exception):
    """A token asked for more checks than its limit allows; retry after ``retry_after`` s."""

    def __init__(self, limit: str, retry_after: int):
        super().__init__(f"this token may check at most {limit} records; try again in "
                         f"{retry_after} s")
        self.retry_after = retry_after


def masked_record_problem(record: dict) -> str | None:
    """Why a masked caller may not send this record, or None if it may."""
    name = record.get("name")
    if not (isinstance(name, str) and name.strip()):
        return "the check scope needs the person's name on every record"
    if parse_id(record.get("id_number"))["id_status"] in _FULL_ID:
        return None
    birth, _ = parse_birthdate(record.get("birth_date"))
    if birth and birth % 10000 // 100:  # year and month at least
        return None
    return ("the check scope needs a full ID number (18 or 15 characters) or a birthdate with "
            "at least year and month beside the name")


def carries_card(record: dict) -> bool:
    """Whether a record carries a name and a full ID number (18 or 15 characters; a wrong
    check character still counts): what a desk copies off the person's card."""
    name = record.get("name")
    return (isinstance(name, str) and bool(name.strip())
            and parse_id(record.get("id_number"))["id_status"] in _FULL_ID)


def masked_warnings(record: dict, warnings: list[dict], own_id: bool) -> list[dict]:
    """The warnings a masked caller is told for ``record``; ``own_id``: a record of the
    person the verdict names carries the submitted number exactly (CheckResult.own_id).

    ID_INVALID and ID_DAMAGED read the submitted number alone (quality.id_status already says
    as much): always given. The registry's warnings only for a record that carries_card
    (DECEASED and ALREADY_ENROLLED, about the named person, only with ``own_id`` too), and with
    no more than the masked answer shows elsewhere: ID_OTHER_PERSON without its holders (whose
    the number is, which of name and birthdate differ), ALREADY_ENROLLED without household ids.
    """
    card = carries_card(record)
    out = []
    for w in warnings:
        if w["code"] in INPUT_WARNINGS:
            out.append(dict(w))
        elif not card:
            continue
        elif w["code"] == "ID_OTHER_PERSON":
            out.append({**w, "detail": None})
        elif not own_id:
            continue
        elif w["code"] == "ALREADY_ENROLLED":
            detail = dict(w["detail"])
            detail["enrolments"] = [{**e, "household_id": None} for e in detail["enrolments"]]
            out.append({**w, "detail": detail})
        else:
            out.append(dict(w))
    return out


class CheckLimits:
    """Per-token record limits by scope, and the daily usage kept for the audit trail."""

    def __init__(self, engine: sa.Engine | None, rates: dict[str, str | None] | None = None,
                 masked_batch: int = MASKED_BATCH, flush_seconds: float = FLUSH_SECONDS):
        self.engine = engine
        self.masked_batch = masked_batch
        self.rates = dict(DEFAULT_RATES if rates is None else rates)
        self._items = {scope: parse_many(rate) for scope, rate in self.rates.items() if rate}
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._lock = threading.Lock()
        self._usage: Counter = Counter()  # (token_id, day, "records" | "refused") -> count
        self._flushed = time.monotonic()
        self.flush_seconds = flush_seconds

    def take(self, token_id: str, scope: str, records: int) -> None:
        """Count ``records`` against the token's limits, or raise RateLimited (nothing counted)."""
        items = self._items.get(scope, [])
        with self._lock:
            for item in items:
                if not self._limiter.test(item, token_id, cost=records):
                    self._note(token_id, "refused", records)
                    stats = self._limiter.get_window_stats(item, token_id)
                    wait = max(1, math.ceil(stats.reset_time - time.time()))
                    if records > item.amount:
                        wait = item.get_expiry()
                    raise RateLimited(str(item).replace(" per 1 ", " per "), wait)
            for item in items:
                self._limiter.hit(item, token_id, cost=records)
            self._note(token_id, "records", records)

    def refuse(self, token_id: str, records: int) -> None:
        """Note records refused before they were counted (a masked rule, a too large batch)."""
        with self._lock:
            self._note(token_id, "refused", records)

    def _note(self, token_id: str, kind: str, n: int) -> None:
        day = datetime.now(timezone.utc).date().isoformat()
        self._usage[(token_id, day, kind)] += n
        if time.monotonic() - self._flushed >= self.flush_seconds:
            self._flushed = time.monotonic()
            threading.Thread(target=self.flush, name="api-usage", daemon=True).start()

    def flush(self) -> None:
        """Write the counts gathered since the last flush to the audit trail (one row per token
        and day: action api_checks, detail {day, records, refused})."""
        from linkage.store import audit

        with self._lock:
            usage, self._usage = self._usage, Counter()
        if not usage or self.engine is None:
            return
        rows: dict[tuple[str, str], dict] = {}
        for (token_id, day, kind), n in usage.items():
            rows.setdefault((token_id, day), {"day": day, "records": 0, "refused": 0})[kind] += n
        try:
            audit.append_many(self.engine, [(f"token:{token_id}", "api_checks", detail)
                                            for (token_id, _), detail in sorted(rows.items())])
        except sa.exc.SQLAlchemyError:  # counts only: put them back for the next flush
            log.warning("could not write API usage to the audit trail", exc_info=True)
            with self._lock:
                self._usage.update(usage)


def daily_usage(engine: sa.Engine) -> list[dict]:
    """Per token and day, the records checked and refused, from the audit trail."""
    from linkage.store import audit

    totals: dict[tuple[str, str], dict] = {}
    for entry in audit.entries(engine, action="api_checks", limit=1_000_000):
        token_id = entry.actor.removeprefix("token:")
        day = entry.detail.get("day", "")
        row = totals.setdefault((token_id, day), {"token_id": token_id, "day": day,
                                                  "records": 0, "refused": 0})
        row["records"] += int(entry.detail.get("records", 0))
        row["refused"] += int(entry.detail.get("refused", 0))
    return [totals[k] for k in sorted(totals)]
