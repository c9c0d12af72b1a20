"""Supervisor and admin routes: the decision log, reversals, second reviews, agreement, the audit
trail and the list of accounts (accounts themselves are made with `linkage users add`)."""
from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse

from linkage.store import accounts, audit
from linkage.web import oversight
from linkage.web.context import app_state
from linkage.web.i18n import N_
from linkage.web.i18n import gettext as _
from linkage.web.rendering import render
from linkage.web.session import AdminUser, SupervisorUser

router = APIRouter()
PAGE = 100
NOTICES = {"reversed": N_("Decision reversed; the pair is back in the queue."),
           "reopened": N_("Pair sent back for a second review."),
           "refused": N_("Nothing changed (already reversed, or not an active decision).")}
Username = Annotated[str, Query(max_length=64)]


def _back(reviewer: str, notice: str) -> RedirectResponse:
    query = {"notice": notice, **({"reviewer": reviewer} if reviewer else {})}
    return RedirectResponse(f"/supervisor/log?{urlencode(query)}", 303)


@router.get("/supervisor/log")
def decision_log(request: Request, user: SupervisorUser, reviewer: Username = "",
                 page: Annotated[int, Query(ge=0, le=100_000)] = 0, notice: str = ""):
    engine = app_state(request).engine
    rows = oversight.decision_log(engine, reviewer or None, limit=PAGE + 1, offset=page * PAGE)
    return render(request, "log.html", user=user, rows=rows[:PAGE], more=len(rows) > PAGE,
                  page=page, reviewer=reviewer, reviewers=oversight.reviewers(engine),
                  notice=_(NOTICES[notice]) if notice in NOTICES else "")


@router.post("/supervisor/decisions/{decision_id}/reverse")
def reverse(request: Request, decision_id: int, user: SupervisorUser,
            note: Annotated[str, Form(max_length=2000)] = "",
            reviewer: Annotated[str, Form(max_length=64)] = ""):
    done = oversight.reverse(app_state(request).engine, decision_id, user.username, note.strip())
    return _back(reviewer, "reversed" if done else "refused")


@router.post("/supervisor/decisions/{decision_id}/second-review")
def second_review(request: Request, decision_id: int, user: SupervisorUser,
                  reviewer: Annotated[str, Form(max_length=64)] = ""):
    done = oversight.request_second_review(app_state(request).engine, decision_id, user.username)
    return _back(reviewer, "reopened" if done else "refused")


@router.get("/supervisor/agreement")
def agreement(request: Request, user: SupervisorUser):
    table, disagreements = oversight.agreement(app_state(request).engine)
    return render(request, "agreement.html", user=user, table=table,
                  disagreements=disagreements)


@router.get("/supervisor/audit")
def audit_trail(request: Request, user: SupervisorUser, actor: Username = "",
                action: Annotated[str, Query(max_length=40)] = ""):
    if action and action not in audit.ACTIONS:
        raise HTTPException(422, _("unknown action"))
    rows = audit.entries(app_state(request).engine, actor or None, action or None)
    return render(request, "audit.html", user=user, rows=rows, actor=actor, action=action,
                  actions=audit.ACTIONS)


@router.get("/api/decisions")
def decisions_json(request: Request, user: SupervisorUser, reviewer: Username = "") -> list[dict]:
    st = app_state(request)
    rows = oversight.decision_log(st.engine, reviewer or None, limit=1000)
    return [{"decision_id": r.decision_id, "pair": st.queue.url_token(r.ref),
             "left": ":".join(r.ref.left), "right": ":".join(r.ref.right),
             "decision": r.decision, "reviewer": r.reviewer,
             "decided_at": r.decided_at.isoformat(), "score": r.score, "active": r.active,
             "reversed": r.reversed_by is not None} for r in rows]


@router.get("/api/agreement")
def agreement_json(request: Request, user: SupervisorUser) -> dict:
    st = app_state(request)
    table, disagreements = oversight.agreement(st.engine)
    return {"reviewers": [{"reviewer": a.reviewer, "pairs": a.pairs, "agreed": a.agreed,
                           "rate": a.rate} for a in table],
            "disagreements": [{"pair": st.queue.url_token(d["ref"]), "decisions": d["decisions"]}
                              for d in disagreements]}


@router.get("/admin/users")
def users_page(request: Request, user: AdminUser):
    return render(request, "users.html", user=user,
                  users=accounts.list_users(app_state(request).engine))
