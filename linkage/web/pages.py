"""Reviewer routes: the queue, the pair page, deciding (then straight to the next pair), and the
supervisor-only reveal of full ID numbers. Pairs are addressed by their URL token only (keyed with
the server's secret), and a reviewer opens or decides only the pair they hold. A decision that
will create a CONFLICT (linkage/web/refusal.py) is stored only when its confirmation is posted:
the first post answers with a confirmation form.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse

from linkage.store import DECISIONS, audit
from linkage.web import display, oversight, pairview, refusal
from linkage.web.context import app_state
from linkage.web.i18n import N_
from linkage.web.i18n import gettext as _
from linkage.web.queue import LeaseConflict, NotHeld, PairClosed, ScoredPair
from linkage.web.rendering import render
from linkage.web.session import ReviewerUser, SupervisorUser

router = APIRouter()
Token = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
NOTICES = {
    "empty": N_("No pair is waiting for you. Thank you!"),
    "gone": N_("That pair is no longer yours (its lease ran out or it was decided)."),
    "released": N_("You gave the pair back to the queue."),
}
NOT_HELD = N_("This pair is not yours (its lease ran out, or it was never handed to you); your "
              "decision was not stored. Take the next pair.")
RECORDS_WAIT_S = 10.0  # a pair page opened while the records are read waits this long for them


@router.get("/")
def home(user: ReviewerUser):
    return RedirectResponse("/queue", 303)


@router.get("/queue")
def queue_page(request: Request, user: ReviewerUser, notice: str = ""):
    q = app_state(request).queue
    counts = q.counts(user.username)
    held = q.held_by(user.username) if counts.yours_now else None
    return render(request, "queue.html", user=user, counts=counts, run_id=q.run(),
                  held=q.url_token(held) if held else None,
                  notice=_(NOTICES[notice]) if notice in NOTICES else "",
                  upcoming=q.waiting(user.username, limit=15))


@router.post("/queue/next")
def next_pair(request: Request, user: ReviewerUser):
    return _to_next(request, user.username)


def _to_next(request: Request, username: str) -> RedirectResponse:
    pair = app_state(request).queue.claim_next(username)
    if pair is None:
        return RedirectResponse("/queue?notice=empty", 303)
    return RedirectResponse(f"/pair/{app_state(request).queue.url_token(pair.ref)}", 303)


def _pair_or_404(request: Request, token: str) -> ScoredPair:
    pair = app_state(request).queue.find(token)
    if pair is None:
        raise HTTPException(404, _("No such pair."))
    return pair


def _page(request: Request, user, pair: ScoredPair, reveal: bool, status_code: int = 200,
          here: str | None = None):
    st = app_state(request)
    st.records.follow(st.queue.run())  # a newer run's records, read in the background
    if st.records.loading:
        st.records.wait(RECORDS_WAIT_S)
    names = display.source_names(st.config)
    view = pairview.build(st.queue, st.records, pair, reveal=reveal, names=names)
    history = oversight.pair_history(st.engine, pair.ref) if user.has_role("supervisor") else []
    return render(request, "pair.html", status_code=status_code, user=user, view=view,
                  history=history, holds=st.queue.holds(user.username, pair.ref.token),
                  records_loaded=st.records.loaded, records_loading=st.records.loading,
                  source_names=names,
                  **({"here": here} if here else {}))


@router.get("/pair/{token}")
def pair_page(request: Request, token: Token, user: ReviewerUser):
    """A reviewer sees only the pair they hold; a supervisor may open any pair (from the log)."""
    st = app_state(request)
    pair = _pair_or_404(request, token)
    if not st.queue.holds(user.username, pair.ref.token) and not user.has_role("supervisor"):
        return RedirectResponse("/queue?notice=gone", 303)
    audit.append(st.engine, user.username, "view_pair", pair.ref)
    return _page(request, user, pair, reveal=False)


@router.post("/pair/{token}/decide")
def decide(request: Request, token: Token, user: ReviewerUser,
           decision: Annotated[str, Form()], note: Annotated[str, Form(max_length=2000)] = "",
           confirm: Annotated[str, Form(max_length=8)] = ""):
    """Store the decision and open the next pair at once; only the pair's lease holder may,
    or a supervisor (audited as deciding without a lease). A decision that will create a
    CONFLICT answers with a confirmation form first and is stored only with ``confirm=yes``."""
    if decision not in DECISIONS:
        raise HTTPException(422, _("decision must be one of %(choices)s")
                            % {"choices": ", ".join(DECISIONS)})
    st = app_state(request)
    pair = _pair_or_404(request, token)
    supervisor = user.has_role("supervisor")
    if confirm != "yes" and pair.refused_merge:
        why = refusal.explain(pair.reason, st.records, display.source_names(st.config))
        if why.needs_confirmation(decision):
            if not supervisor and not st.queue.holds(user.username, pair.ref.token):
                raise HTTPException(409, _(NOT_HELD))
            return render(request, "confirm.html", user=user, pair=pair, decision=decision,
                          note=note, refusal=why, effect=why.effect(decision),
                          here=f"/pair/{token}")
    try:
        st.queue.decide(user.username, pair, decision, note.strip() or None, override=supervisor)
    except LeaseConflict:
        raise HTTPException(409, _("Another reviewer holds this pair now; your decision was not "
                                   "stored. Take the next pair.")) from None
    except NotHeld:
        raise HTTPException(409, _(NOT_HELD)) from None
    except PairClosed:
        raise HTTPException(409, _("This pair was decided by someone else after your lease ran "
                                   "out; your decision was not stored.")) from None
    return _to_next(request, user.username)


@router.post("/pair/{token}/release")
def release(request: Request, token: Token, user: ReviewerUser):
    """Give the pair back undecided (e.g. before a break)."""
    app_state(request).queue.release_all(user.username)
    return RedirectResponse("/queue?notice=released", 303)


@router.post("/pair/{token}/reveal")
def reveal(request: Request, token: Token, user: SupervisorUser):
    """Show both full ID numbers; only supervisors and admins, and always audited."""
    st = app_state(request)
    pair = _pair_or_404(request, token)
    audit.append(st.engine, user.username, "reveal_id", pair.ref, detail={"fields": ["id_number"]})
    return _page(request, user, pair, reveal=True, here=f"/pair/{token}")


@router.get("/api/me")
def me(user: ReviewerUser) -> dict:
    return {"username": user.username, "role": user.role}


@router.get("/api/queue")
def queue_stats(request: Request, user: ReviewerUser) -> dict:
    return app_state(request).queue.stats(user.username)
