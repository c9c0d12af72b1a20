"""The check API (/api/v1): a new enrolment checked against the master while the clerk waits.

Mounted into the review app as a sub-application, so it has its own OpenAPI description
(/api/v1/openapi.json, readable at /api/v1/docs) and its own rules: clients authenticate with
a bearer token (linkage/tokens.py), never with the review app's cookie session, so the review
app's CSRF check does not apply here and cannot be bypassed from here. Records travel in JSON
bodies only; no route takes personal data in its URL, and nothing here logs a record.

The master (linkage/master.py) is built on first use, or by ``linkage serve`` in the
background from start-up (the review pages answer meanwhile, and the check routes answer 503
with Retry-After until it is ready), and rebuilt in the background when the job has a newer
complete run; checks keep using the old one until the new one is ready.
"""
# No `from __future__ import annotations`: FastAPI must see the per-job record model itself.
import csv
import gc
import html
import io
import logging
import threading
import time
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from linkage.core.config import JobConfig
from linkage.online.check import (
    MAX_CANDIDATES,
    VERDICT_MESSAGES,
    VERDICTS,
    WARNINGS,
    CheckResult,
    check_records,
)
from linkage.online.master import Master, NoMaster, latest_run, load_master
from linkage.store import Store
from linkage.store.tokens import CACHE_SECONDS, ApiToken, StoreBusy, TokenVerifier
from linkage.web.api_guard import (
    COARSE_REASONS,
    CheckLimits,
    RateLimited,
    masked_record_problem,
    masked_warnings,
)
from linkage.web.display import mask_id, mask_name
from linkage.web.token_gate import BUSY, SCOPE_KEY, UNAUTHORISED, TokenGate

log = logging.getLogger(__name__)

MAX_BATCH = 10_000  # records per batch request
MAX_CSV_BYTES = 20 * 2**20
MAX_FIELD_CHARS = 200
# Request bodies, refused (413) before they are read. A roster record with every field, its
# Chinese escaped as \uXXXX and pretty-printed, is about 600 bytes: 10,000 of them 6 MB.
MAX_JSON_BYTES = 8 * 2**20
MAX_RECORD_BYTES = 64 * 2**10  # one record: a dozen fields of 200 escaped characters is 15 kB
MAX_FORM_OVERHEAD = 64 * 2**10  # the multipart framing and the source field beside the CSV
MAX_UPLOAD_BYTES = MAX_CSV_BYTES + MAX_FORM_OVERHEAD  # the app's limit: the largest route's
REFRESH_SECONDS = 60.0  # how often the store is asked for a newer complete run
BUILDING_RETRY_S = 15  # Retry-After while the first master is built

FIELD_HELP = {
    "name": "姓名 as written (张伟, 包·巴特尔, 張偉 ...)",
    "id_number": "resident ID as written: 18 or 15 characters; damaged values are fine",
    "birth_date": "any roster format: 1965-03-12, 19650312, 1965/3/12, 1965年3月12日 ...",
    "gender": "男/女, 1/2 or M/F",
    "household_id": "the roster's household (family) code",
    "relation": "relation to the head of household (户主, 配偶, 长子 ...)",
    "township": "苏木/乡/镇",
    "village": "嘎查/村, with or without the group (组)",
    "ethnicity": "民族",
    "status": "人员状态 (registry records)",
}

API_DESCRIPTION = """
Checks an enrolment record against the master roster: the entities and golden records of the
job's latest complete linkage run, matched with the run's own blocking rules, comparisons and
Fellegi-Sunter model, so field weights equal a batch run's. An insurance record that sends its
`household_id` (a household the run knows) is read within that household as the batch run
reads it: where the household can change the answer (no clear match, a match that may be a
housemate's or a generation away), the run's household step weighs the record's pairs with
the registry household(s) the household's members were linked into (`explanation.household`,
bits; the step's note ends the reason). A clear match and a record without a known household
have a household term of 0.

**Verdicts** (from the best candidate entity by match probability):

* `new_person`: no entity reaches the review threshold;
* `needs_review`: the best entity lies between the review and match thresholds, or two or more
  entities reach the match threshold;
* `duplicate_enrolment`: one entity reaches the match threshold, the record comes from an
  insurance source, and the entity already holds an insurance enrolment this record does not
  renew (another scheme, or the same scheme under another household);
* `known_person`: one entity reaches the match threshold and this would be its first
  enrolment, or renews one it has (same source and record id, or same scheme and household).

A record whose ID number is invalid or Excel-damaged and that has no full birthdate is
`needs_review`, not `new_person`: nothing in it shows that the registry does not know the person.

**Warnings** (`warnings`, in this order; each a stable `code`, a short Chinese `message` for the
desk and a `detail`):

* `DECEASED`: the person the verdict names is deceased in the registry;
* `ID_INVALID`: the ID number fails its check character, date or region, or is not an ID
  number (`detail.id_status`: bad_check, bad_date, bad_region, malformed);
* `ID_DAMAGED`: Excel damaged the number (1.50502E+17, or its last digits turned to 0);
* `ID_OTHER_PERSON`: a registry record carries exactly this ID number under another name or
  birthdate (`detail.holders`: entity, record and which of name and birth_date differ);
* `ALREADY_ENROLLED`: with `duplicate_enrolment`: the enrolments it would duplicate (scheme,
  source, record id, household) and the person's township and village.

`ID_INVALID` and `ID_DAMAGED` read the submitted number only and are given in both scopes. The
`check` scope gets the other three only for a record with a name and a full ID number (the desk
has the person's card), `DECEASED` and `ALREADY_ENROLLED` only when that number is the named
person's own (one of their records carries it), without `detail` for `ID_OTHER_PERSON` and
without household ids.

**Batches** are also matched within themselves: `batch_matches` lists the batch's other
records (by index) that may be the same person. A record the master does not know that
matches an earlier record of its batch is `needs_review`, not `new_person`.

**Records**: every record needs a name or an ID number (or both), else 422; fields are text
of at most 200 characters. A batch holds at most 10,000 records.

**Authentication**: `Authorization: Bearer lkt_...` (made with `linkage tokens add`, optionally
with an expiry). No token, or a malformed, unknown, revoked or expired one: 401 on every route
but this description, and the body is not read; too small a scope: 403. `status` may only read
`/status`. A revocation counts within seconds.

**Scopes.** `check_full` sees the records in full, with each candidate's probability, weight,
band and per-field explanation. `check` sees the verdict, a coarse reason and masked fields
only (names, ID numbers, birth days and household ids masked; no probabilities, weights or
per-field levels, which would let a caller rebuild what the mask hides), and only candidates
at or above the review threshold. Because the verdict itself answers a question about the
data, a `check` caller is bounded: every record must carry a name and either a full ID number
or a birthdate with at least year and month (else 422), a request holds at most 20 records
(else 422), and each token may check so many records per minute, hour and day (else 429 with
Retry-After; records count, not requests). Each token's daily counts go to the audit trail.

**Sizes**: a body over 64 kB to `/check`, 8 MB to `/check/batch` or 20 MB to `/check/batch/csv`
is refused with 413 before it is read. **Busy store**: while the store cannot be read in time
(a run writing its results), a token the server has not seen lately gets 503 with Retry-After.

Personal data goes in request bodies only, never in URLs.
"""


def _settled(master: Master) -> Master:
    """Move the master's millions of objects out of the garbage collector's sight.

    A full collection would otherwise walk them all now and then, and the clerk whose check
    it interrupts waits for it: the p99 latency.
    """
    gc.collect()
    gc.freeze()
    return master


class MasterBuilding(Exception):
    """The first master is being built in the background: ask again shortly."""


class MasterHolder:
    """The current master, built on first use (or in the background from start-up) and
    swapped when a newer run completes."""

    def __init__(self, config: JobConfig, store: Store, refresh_seconds: float = REFRESH_SECONDS):
        self.config = config
        self.store = store
        self.refresh_seconds = refresh_seconds
        self._master: Master | None = None
        self._lock = threading.Lock()
        self._checked = 0.0
        self._refreshing = False
        self._building: threading.Thread | None = None
        self.error: str | None = None  # why the last background build failed

    def build_in_background(self, after: threading.Thread | None = None) -> threading.Thread:
        """Start building the master in a thread (once ``after`` has ended, if given); until
        it is ready get() raises MasterBuilding (the routes answer 503 with Retry-After)."""
        def build() -> None:
            import sys

            if after is not None:
                after.join()
            try:
                master = self.get(wait=True)
                self.error = None
                print(f"check API: master of run {master.run_id}: "
                      f"{master.stats['records']:,} records, {master.stats['entities']:,} "
                      f"entities, built in {master.stats['build_seconds']} s", file=sys.stderr)
            except NoMaster as exc:
                self.error = str(exc)
                log.warning("check API: no master yet (%s); it is built on the first check "
                            "after a run", exc)
            except Exception as exc:  # noqa: BLE001 - checks then build it on first use
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("check API: building the master failed")
            finally:
                self._building = None

        self._building = threading.Thread(target=build, name="master-build", daemon=True)
        self._building.start()
        return self._building

    @property
    def loaded(self) -> Master | None:
        """The master if one is built already (never builds one)."""
        return self._master

    def get(self, wait: bool = False) -> Master:
        master = self._master
        if master is None and self._building is not None and not wait:
            raise MasterBuilding()
        if master is None:
            with self._lock:
                if self._master is None:
                    self._master = _settled(load_master(self.config, self.store))
                    self._checked = time.monotonic()
                master = self._master
        elif time.monotonic() - self._checked >= self.refresh_seconds and not self._refreshing:
            self._refreshing = True
            self._checked = time.monotonic()
            threading.Thread(target=self._refresh, name="master-refresh", daemon=True).start()
        return master

    def _refresh(self) -> None:
        try:
            run_id = latest_run(self.store, self.config.job)
            if self._master is None or run_id != self._master.run_id:
                self._master = _settled(load_master(self.config, self.store, run_id))
        except Exception:  # noqa: BLE001 - keep serving the master we have
            log.exception("check API: rebuilding the master failed; serving run %s",
                          self._master.run_id if self._master else None)
        finally:
            self._refreshing = False


# --- request and response bodies ------------------------------------------------------------

class _RecordBase(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=MAX_FIELD_CHARS)

    @model_validator(mode="after")
    def _identifies_someone(self):
        if not any((getattr(self, f, None) or "").strip() for f in ("name", "id_number")):
            raise ValueError("a record needs a name or an ID number (or both)")
        # As ingest rejects such cells: a NUL would also merge distinct values when factorised.
        for name, value in self:
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(f"field {name!r} holds a NUL character")
        return self


def record_model(config: JobConfig) -> type[BaseModel]:
    """The enrolment record the job's sources can describe: its mapped fields, all optional
    text, plus the source (scheme) it is enrolled in and, if it has one yet, its record id."""
    fields = sorted({f for s in config.sources for f in s.fields})
    sources = tuple(s.name for s in config.sources)
    spec: dict[str, Any] = {
        "source": (Literal[sources], Field(description="the configured source this record would "
                                                       "be entered in: " + ", ".join(
            f"{s.name} ({s.role}{', ' + s.scheme if s.scheme else ''})" for s in config.sources))),
        "record_id": (str | None, Field(None, description="the record's id in its source, when it "
                                                          "has one (a renewal or correction)")),
    }
    for f in fields:
        spec[f] = (str | None, Field(None, description=FIELD_HELP.get(f, "as in the source")))
    return create_model("EnrolmentRecord", __base__=_RecordBase, **spec)


class FieldWeight(BaseModel):
    level: str = Field(description="comparison level, strongest first in the model")
    weight: float = Field(description="match weight in bits (log2 m/u)")


class MatchedRecord(BaseModel):
    source: str
    record_id: str


class Enrolment(BaseModel):
    source: str
    scheme: str
    record_id: str
    household_id: str | None = Field(description="null for the check scope")
    renewed: bool = Field(description="true when the checked record would renew this enrolment")


class CandidateOut(BaseModel):
    entity_id: str
    probability: float | None = Field(description="null for the check scope")
    weight: float | None = Field(description="total match weight in bits: prior + fields; null "
                                             "for the check scope")
    band: Literal["match", "review", "non_match"] | None = Field(
        description="null for the check scope")
    record: MatchedRecord = Field(description="the entity's record that matched best")
    explanation: dict[str, FieldWeight | float] | None = Field(
        description="per comparison its level and weight; 'household' and 'prior' in bits; "
                    "null for the check scope")
    golden: dict[str, Any] = Field(description="the entity's golden record (masked for the "
                                               "check scope)")
    enrolments: list[Enrolment]


class BatchMatch(BaseModel):
    index: int = Field(description="position of the other record in the batch (0-based)")
    probability: float | None = Field(description="null for the check scope")
    band: Literal["match", "review"]


class WarningOut(BaseModel):
    code: Literal[tuple(WARNINGS)] = Field(description="stable: " + ", ".join(WARNINGS))
    message: str = Field(description="for the desk, in Chinese")
    detail: dict[str, Any] | None = Field(description="by code (see the description); null for "
                                                      "ID_OTHER_PERSON in the check scope")


class CheckOut(BaseModel):
    verdict: Literal[VERDICTS]
    reason: str = Field(description="why, for the data team, in English (by verdict only for "
                                    "the check scope)")
    message: str = Field(description="the verdict for the desk, in Chinese (by verdict only)")
    entity_id: str | None = Field(description="the person this record is, when the verdict "
                                              "names one")
    run_id: str = Field(description="the linkage run the master comes from")
    masked: bool
    quality: dict[str, str | None] = Field(description="what standardising found: id_status "
                                                       "(valid, bad_check, ...), birth_quality")
    candidates: list[CandidateOut] = Field(description=f"at most {MAX_CANDIDATES}, best first")
    batch_matches: list[BatchMatch] = Field(description="other records of the same batch that "
                                                        "may be this person, best first (empty "
                                                        "for a single check)")
    warnings: list[WarningOut] = Field(description="what the desk must not miss; the check "
                                                   "scope gets the registry's warnings only "
                                                   "for a record with a name and a full ID")


class BatchOut(BaseModel):
    run_id: str
    count: int
    results: list[CheckOut]


class StatusOut(BaseModel):
    job: str
    run_id: str
    records: int
    entities: int
    build_seconds: float
    thresholds: dict[str, float]


# --- the app ----------------------------------------------------------------------------------

def _masked_golden(golden: dict) -> dict:
    out = dict(golden)
    out["name"] = mask_name(out.get("name"))
    out["id_number"] = mask_id(out.get("id_number"))
    birth = out.get("birth_date")
    if isinstance(birth, str) and len(birth) >= 4:
        out["birth_date"] = birth[:4] + "-**-**"
    else:
        out["birth_date"] = birth
    out["household_id"] = None
    return out


def result_json(result: CheckResult, run_id: str, full: bool, record: dict) -> dict:
    """One check result (of ``record``) as the API answers it; masked unless ``full``.

    A masked result holds no evidence that could be read as an oracle for a hidden value (see
    linkage/web/api_guard.py): no probabilities, weights, bands or per-field levels, a reason
    by verdict only, only the candidates the verdict can be about (review band and above), and
    the warnings api_guard.masked_warnings allows for the record.
    """
    if full:
        candidates = [{
            "entity_id": c.entity_id, "probability": c.probability, "weight": c.weight,
            "band": c.band, "record": {"source": c.record[0], "record_id": c.record[1]},
            "explanation": c.explanation, "golden": c.golden,
            "enrolments": [dict(e) for e in c.enrolments],
        } for c in result.candidates]
        return {"verdict": result.verdict, "reason": result.reason,
                "message": VERDICT_MESSAGES[result.verdict], "entity_id": result.entity_id,
                "run_id": run_id, "masked": False,
                "quality": result.quality, "candidates": candidates,
                "batch_matches": result.batch_matches,
                "warnings": [dict(w) for w in result.warnings]}
    candidates = [{
        "entity_id": c.entity_id, "probability": None, "weight": None, "band": None,
        "record": {"source": c.record[0], "record_id": c.record[1]}, "explanation": None,
        "golden": _masked_golden(c.golden),
        "enrolments": [{**e, "household_id": None} for e in c.enrolments],
    } for c in result.candidates if c.band != "non_match"]
    return {"verdict": result.verdict, "reason": COARSE_REASONS[result.verdict],
            "message": VERDICT_MESSAGES[result.verdict], "entity_id": result.entity_id,
            "run_id": run_id, "masked": True,
            "quality": result.quality, "candidates": candidates,
            "batch_matches": [{"index": m["index"], "probability": None, "band": m["band"]}
                              for m in result.batch_matches],
            "warnings": masked_warnings(record, result.warnings, result.own_id)}


def create_check_app(config: JobConfig, store: Store,
                     refresh_seconds: float = REFRESH_SECONDS,
                     limits: CheckLimits | None = None,
                     token_seconds: float = CACHE_SECONDS) -> FastAPI:
    """The check API over the job's store; mount it at /api/v1. ``limits``: the per-token
    record limits and the masked batch size (default: api_guard's); ``token_seconds``: how
    long a verified token is trusted before the store is asked again."""
    app = FastAPI(title="Enrolment check API", version="1", description=API_DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  max_body_size=MAX_UPLOAD_BYTES)
    holder = MasterHolder(config, store, refresh_seconds)
    verifier = TokenVerifier(store.engine, ttl=token_seconds)
    limits = limits or CheckLimits(store.engine)
    app.state.holder = holder
    app.state.limits = limits
    app.state.verifier = verifier
    # The token is checked before any route reads a body (FastAPI parses bodies before it
    # solves dependencies); only the description is public. The app's body limit is the
    # largest route's, so a bad token is told 401 (not 413) for any body a route could take;
    # each route then applies its own limit.
    app.add_middleware(TokenGate, verifier=verifier, public=("/openapi.json", "/docs"))
    Record = record_model(config)
    BatchIn = create_model("BatchRequest", __config__=ConfigDict(extra="forbid"),
                           records=(list[Record], Field(min_length=1, max_length=MAX_BATCH)))
    bearer = HTTPBearer(auto_error=False, description="an API token: `linkage tokens add`")

    # Single checks run on the event loop, one at a time in arrival order: each takes
    # milliseconds of CPU, and handing them to threads would only make concurrent checks share
    # the interpreter lock and all finish late (the tail latency a clerk sees). The token was
    # verified by the gate (from memory, or off the loop); `bearer` documents the scheme.
    def scoped(scope: str):
        async def dependency(request: Request,
                             _: HTTPAuthorizationCredentials | None = Depends(bearer)) -> ApiToken:
            token = request.scope.get("state", {}).get(SCOPE_KEY)
            if token is None or not token.live():
                raise HTTPException(401, UNAUTHORISED, headers={"WWW-Authenticate": "Bearer"})
            if not token.allows(scope):
                raise HTTPException(403, f"This needs a token with the {scope} scope; this "
                                         f"token has {token.scope}.")
            return token
        return dependency

    def master() -> Master:
        try:
            return holder.get()
        except MasterBuilding:
            raise HTTPException(503, "The master roster is being built (the server has just "
                                     "started); try again shortly.",
                                headers={"Retry-After": str(BUILDING_RETRY_S)}) from None
        except NoMaster as exc:
            raise HTTPException(503, str(exc)) from None

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        # The submitted values are left out of the answer: an ID number is not echoed back.
        return JSONResponse({"detail": [_error(e) for e in exc.errors()]}, status_code=422)

    async def busy(request: Request, exc: Exception):
        # A store that cannot answer in time (a run holds its lock) is a wait, not a fault.
        if not isinstance(exc, StoreBusy):
            log.warning("check API: the store is busy or unreachable", exc_info=exc)
        return JSONResponse({"detail": BUSY}, status_code=503,
                            headers={"Retry-After": str(StoreBusy.retry_after)})

    for kind in (StoreBusy, sa.exc.OperationalError, sa.exc.TimeoutError):
        app.add_exception_handler(kind, busy)

    def admit(token: ApiToken, records: list[dict], where: list) -> bool:
        """Whether the token sees full answers; refuses (422, 429) what a masked caller may not
        ask, before any record is checked."""
        full = token.allows("check_full")
        if not full:
            if len(records) > limits.masked_batch:
                limits.refuse(token.token_id, len(records))
                raise _invalid(where, f"{len(records):,} records; the check scope takes at most "
                                      f"{limits.masked_batch} per request")
            for i, record in enumerate(records):
                problem = masked_record_problem(record)
                if problem:
                    limits.refuse(token.token_id, len(records))
                    raise _invalid(where + ([i] if len(where) > 1 else []), problem)
        try:
            limits.take(token.token_id, "check_full" if full else "check", len(records))
        except RateLimited as exc:
            raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)})
        return full

    def run_checks(token: ApiToken, records: list[dict], full: bool) -> tuple[str, list[dict]]:
        m = master()
        return m.run_id, [result_json(r, m.run_id, full, record)
                          for r, record in zip(check_records(m, records), records)]

    @app.post("/check", summary="Check one enrolment record", response_model=CheckOut,
              responses=_answers(401, 403, 413, 422, 429, 503), max_body_size=MAX_RECORD_BYTES)
    async def check_one(record: Record, token: ApiToken = Depends(scoped("check"))):  # type: ignore[valid-type]
        """The candidate persons for one record, with probabilities, per-field explanations and
        golden records, and a verdict: new_person, known_person, duplicate_enrolment or
        needs_review (rules in the API description)."""
        records = [record.model_dump()]
        full = admit(token, records, ["body"])
        if holder.loaded is None:  # the first check builds the master: not on the event loop
            _, results = await run_in_threadpool(run_checks, token, records, full)
        else:
            _, results = run_checks(token, records, full)
        return JSONResponse(results[0])

    @app.post("/check/batch", summary="Check a batch of records (JSON)", response_model=BatchOut,
              description=f"Up to {MAX_BATCH:,} records checked at once (one standardisation "
                          "and one comparison pass for the whole batch); results in the order "
                          "sent, each as /check answers it, and the records are matched with "
                          "each other too (batch_matches).",
              responses=_answers(401, 403, 413, 422, 429, 503), max_body_size=MAX_JSON_BYTES)
    def check_batch(batch: BatchIn, token: ApiToken = Depends(scoped("check"))):  # type: ignore[valid-type]
        records = [r.model_dump() for r in batch.records]
        full = admit(token, records, ["body", "records"])
        run_id, results = run_checks(token, records, full)
        return JSONResponse({"run_id": run_id, "count": len(results), "results": results})

    @app.post("/check/batch/csv", summary="Check a batch of records (CSV upload)",
              response_model=BatchOut, responses=_answers(401, 403, 413, 422, 429, 503))
    async def check_csv(file: UploadFile = File(description="CSV in UTF-8 or GBK/GB18030: a "
                                                            "source's own export (its columns as "
                                                            "the job config maps them) or "
                                                            "standard field names"),
                        source: str = Form(description="the source the rows would be entered in"),
                        token: ApiToken = Depends(scoped("check"))):
        """A roster file checked like /check/batch (same limit, same answers per row)."""
        data = await file.read(MAX_CSV_BYTES + 1)
        if len(data) > MAX_CSV_BYTES:
            raise HTTPException(413, f"file over {MAX_CSV_BYTES // 2**20} MB; split it")
        records = await run_in_threadpool(_csv_checked, data, source, config, Record)
        full = admit(token, records, ["body", "file"])
        run_id, results = await run_in_threadpool(run_checks, token, records, full)
        return JSONResponse({"run_id": run_id, "count": len(results), "results": results})

    @app.get("/status", summary="The master's state", response_model=StatusOut,
             responses=_answers(401, 403, 503))
    def status(token: ApiToken = Depends(scoped("status"))):
        """Which run the master comes from and how big it is; no personal data."""
        m = master()
        return {"job": config.job, "run_id": m.run_id, "records": m.stats["records"],
                "entities": m.stats["entities"], "build_seconds": m.stats["build_seconds"],
                "thresholds": {"match": config.match_threshold, "review": config.review_threshold}}

    @app.get("/docs", include_in_schema=False)
    def docs():
        return HTMLResponse(_docs_page(app.openapi()))

    return app


def build_in_background(check_app: FastAPI, after: threading.Thread | None = None) -> None:
    """Start building the master without waiting for it, once ``after`` (say, the review
    queue's warm-up) has ended; checks answer 503 with Retry-After until then."""
    check_app.state.holder.build_in_background(after)


def preload(check_app: FastAPI) -> None:
    """Build the master before serving, so the first clerk does not wait for it."""
    import sys

    try:
        master = check_app.state.holder.get()
    except NoMaster as exc:
        print(f"note: check API has no master yet ({exc}); it loads on the first check after a "
              "run", file=sys.stderr)
        return
    print(f"check API: master of run {master.run_id}: {master.stats['records']:,} records, "
          f"{master.stats['entities']:,} entities, built in {master.stats['build_seconds']} s",
          file=sys.stderr)


_ANSWERS = {
    401: "no token, or a malformed, unknown, revoked or expired one (header WWW-Authenticate: "
         "Bearer); the body is not read",
    403: "the token's scope is too small for this route",
    413: "the body is over this route's size limit (64 kB for /check, 8 MB for /check/batch, "
         "20 MB for /check/batch/csv)",
    422: "a bad record or request: every record needs a name or an ID number; the check scope "
         "needs a name and either a full ID number or a birthdate of at least year and month on "
         f"every record and at most 20 records a request; at most {MAX_BATCH:,} records; a CSV "
         "that cannot be read (the answer names the problem). Values are not echoed back",
    429: "the token's record limit is reached (header Retry-After: seconds)",
    503: "no master yet (no complete run), or the store is busy (header Retry-After: seconds)",
}


def _answers(*codes: int) -> dict:
    """The OpenAPI ``responses`` of a route answering with these error statuses."""
    return {code: {"description": _ANSWERS[code]} for code in codes}


def _error(e: dict) -> dict:
    return {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}


def _csv_checked(data: bytes, source: str, config: JobConfig, model: type[BaseModel]) -> list[dict]:
    """An uploaded CSV's rows as validated records (422 for anything wrong with them)."""
    try:
        return [model.model_validate(r).model_dump() for r in _csv_records(data, source, config)]
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def _csv_records(data: bytes, source: str, config: JobConfig) -> list[dict]:
    """Rows of an uploaded CSV as record dicts (fields named as the API names them)."""
    names = [s.name for s in config.sources]
    if source not in names:
        raise _invalid(["body", "source"], f"source must be one of {', '.join(names)}")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise _invalid(["body", "file"], "the file is neither UTF-8 nor GBK/GB18030 text")
    # newline="": the csv module finds line ends itself, so bare CR (old office exports) and
    # mixed endings read as rows, and a line break inside quotes stays in its cell.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:  # e.g. a cell over the csv module's field limit
        raise _invalid(["body", "file"], f"line {reader.line_num}: the file cannot be read as "
                                         f"CSV ({exc})") from None
    if not rows:
        raise _invalid(["body", "file"], "the file is empty (no header row)")
    header = [h.strip() for h in rows[0]]
    src = config.source(source)
    by_column = {col: f for f, col in src.fields.items()} | {src.record_id: "record_id"}
    fields = {f for s in config.sources for f in s.fields} | {"record_id"}
    mapping = {i: by_column.get(h) or (h if h in fields else None) for i, h in enumerate(header)}
    if not {"name", "id_number"} & set(mapping.values()):
        raise _invalid(["body", "file"], "no name or ID number column: use the source's own "
                                         f"column names ({src.fields.get('name')}, "
                                         f"{src.fields.get('id_number')}) or name, id_number")
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    if not body:
        raise _invalid(["body", "file"], "the file has a header but no rows")
    if len(body) > MAX_BATCH:
        raise _invalid(["body", "file"], f"{len(body):,} rows; at most {MAX_BATCH:,} per request")
    out = []
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            unclosed = any("\n" in c or "\r" in c for c in row)
            raise _invalid(["body", "file", line], f"row {line} has {len(row)} cells but the "
                                                    f"header has {len(header)}" + (
                " (a quote opened in it is never closed?)" if unclosed else ""))
        record = {"source": source}
        record.update({f: (row[i] or None) for i, f in mapping.items() if f})
        out.append(record)
    return out


def _invalid(loc: list, msg: str) -> RequestValidationError:
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error"}])


def _docs_page(spec: dict) -> str:
    """The OpenAPI description as one plain page (no scripts from elsewhere: the app's content
    security policy allows none, and the office network may have no internet)."""
    esc = html.escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{esc(spec['info']['title'])}</title>"
             f"<link rel='stylesheet' href='/static/app.css'></head><body><main>",
             f"<h1>{esc(spec['info']['title'])} v{esc(spec['info']['version'])}</h1>",
             "<p><a href='openapi.json'>openapi.json</a></p>",
             f"<pre>{esc(spec['info'].get('description', '').strip())}</pre>"]
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(f"<h2>{esc(method.upper())} /api/v1{esc(path)}</h2>"
                         f"<p><strong>{esc(op.get('summary', ''))}</strong></p>"
                         f"<pre>{esc(op.get('description', ''))}</pre>")
            body = op.get("requestBody", {}).get("content", {})
            for kind, content in body.items():
                ref = content.get("schema", {}).get("$ref", "")
                parts.append(f"<p>body ({esc(kind)}): {esc(ref.rsplit('/', 1)[-1] or 'form')}</p>")
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        props = schema.get("properties", {})
        if not props:
            continue
        rows = "".join(f"<tr><td>{esc(p)}</td><td>{esc(str(v.get('description', '')))}</td></tr>"
                       for p, v in props.items())
        parts.append(f"<h3>{esc(name)}</h3><table>{rows}</table>")
    parts.append("</main></body></html>")
    return "".join(parts)
