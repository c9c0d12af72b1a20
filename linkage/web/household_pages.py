"""Reviewer routes for household correspondences: the latest run's list (those that need a look
first: splits, merges, dropped and rejected ones; a 1:1 whose every member agrees last), the
page of one correspondence and deciding it (同一户 / 不是同一户 / 不确定), which the next full
run applies. Role-checked as the pair routes are, every POST CSRF-checked by the app, opening
and deciding audited. No lease: a correspondence is not handed out, any reviewer may decide
one, and the latest decision stands.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse

from linkage.store import CORRESPONDENCE_DECISIONS, audit
from linkage.store import correspondences as store_corr
from linkage.web import householdview
from linkage.web.context import app_state
from linkage.web.i18n import N_
from linkage.web.i18n import gettext as _
from linkage.web.rendering import render
from linkage.web.session import ReviewerUser

router = APIRouter()
Token = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
Shown = Annotated[str, Query(pattern="^(look|left_over|agreed|all)$")]
NOTICES = {"decided": N_("Your decision on the household correspondence is stored; the next "
                         "full run applies it.")}
SHOWN_LABELS = {"look": N_("Need a look (split, merged, dropped)"),
                "left_over": N_("One to one, members left over"),
                "agreed": N_("One to one, every member agrees"), "all": N_("All")}
RECORDS_WAIT_S = 10.0


def _found(request: Request, token: str):
    """(run id, stored correspondence) at the URL token, or 404."""
    st = app_state(request)
    run_id = st.queue.run()
    key = st.households.find(run_id, token)
    row = store_corr.get(st.engine, run_id, *key) if key else None
    if row is None:
        raise HTTPException(404, _("No such household correspondence."))
    return run_id, row


@router.get("/households")
def household_list(request: Request, user: ReviewerUser, show: Shown = "look",
                   page: Annotated[int, Query(ge=1, le=100_000)] = 1, notice: str = ""):
    st = app_state(request)
    run_id = st.queue.run()
    counts = (store_corr.counts(st.engine, run_id) if run_id
              else {"kinds": {}, "tiers": dict.fromkeys(householdview.SHOWN, 0)})
    rows = (store_corr.listing(st.engine, run_id, show, householdview.PAGE_SIZE + 1,
                               (page - 1) * householdview.PAGE_SIZE) if run_id else [])
    more = len(rows) > householdview.PAGE_SIZE
    rows = rows[:householdview.PAGE_SIZE]
    keys = [(r.insurance_household, r.registry_household) for r in rows]
    decided = store_corr.standing_of(st.engine, keys)
    items = [{"row": r, "token": st.households.token(*k), "decision": decided.get(k, ""),
              "insurance": householdview.split_label(k[0]),
              "registry": householdview.split_label(k[1])} for r, k in zip(rows, keys)]
    return render(request, "households.html", user=user, run_id=run_id, counts=counts,
                  items=items, show=show, page=page, more=more,
                  shown_labels=SHOWN_LABELS,
                  notice=_(NOTICES[notice]) if notice in NOTICES else "")


@router.get("/households/{token}")
def household_page(request: Request, token: Token, user: ReviewerUser, show: Shown = "look"):
    st = app_state(request)
    run_id, row = _found(request, token)
    st.records.follow(run_id)
    if st.records.loading:
        st.records.wait(RECORDS_WAIT_S)
    key = (row.insurance_household, row.registry_household)
    audit.append(st.engine, user.username, "view_correspondence", detail={
        "insurance_household": key[0], "registry_household": key[1], "run_id": run_id})
    decision = store_corr.standing_of(st.engine, [key]).get(key, "")
    view = householdview.build(st.records, row, decision)
    history = (store_corr.history(st.engine, *key) if user.has_role("supervisor") else [])
    return render(request, "household.html", user=user, view=view, token=token, show=show,
                  history=history, records_loaded=st.records.loaded,
                  records_loading=st.records.loading)


@router.post("/households/{token}/decide")
def decide_household(request: Request, token: Token, user: ReviewerUser,
                     decision: Annotated[str, Form()],
                     note: Annotated[str, Form(max_length=2000)] = "",
                     show: Annotated[str, Form(pattern="^(look|left_over|agreed|all)$")] = "look"):
    """Store the decision with its audit row and go back to the list."""
    if decision not in CORRESPONDENCE_DECISIONS:
        raise HTTPException(422, _("decision must be one of %(choices)s")
                            % {"choices": ", ".join(CORRESPONDENCE_DECISIONS)})
    st = app_state(request)
    run_id, row = _found(request, token)
    store_corr.decide(st.engine, row.insurance_household, row.registry_household,
                      user.username, decision, run_id, note.strip() or None)
    return RedirectResponse(f"/households?show={show}&notice=decided", 303)
