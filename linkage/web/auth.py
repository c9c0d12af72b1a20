"""Sign-in and sign-out: a fresh server-side session at every sign-in, ended at sign-out, throttled
sign-in attempts (linkage/web/login_guard.py), audited either way."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from linkage.store import accounts, audit
from linkage.web.login_guard import Busy
from linkage.web.rendering import render
from linkage.web.session import SESSION_ID, csrf_token, current_user, set_user

router = APIRouter()


@router.get("/login")
def login_form(request: Request):
    if current_user(request):
        return RedirectResponse("/queue", 303)
    return render(request, "login.html", user=None, error=None)


def _refused(request: Request, status: int, message: str, retry_after: float):
    response = render(request, "login.html", status_code=status, user=None, error=message)
    response.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


@router.post("/login")
def login(request: Request, username: Annotated[str, Form(max_length=64)] = "",
          password: Annotated[str, Form(max_length=1024)] = ""):
    state = request.app.state.review
    guard, engine = state.login_guard, state.engine
    address = request.client.host if request.client else "?"
    retry_at = guard.retry_at(username, address)
    if retry_at is not None:  # refused before any hash, the right password too
        when = datetime.fromtimestamp(retry_at, timezone.utc).strftime("%H:%M:%S UTC")
        wait = retry_at - guard.clock()
        return _refused(request, 429, "Too many failed sign-ins for this account or from this "
                                      f"address: try again after {when} (in {math.ceil(wait)} s).",
                        wait)
    try:
        user = accounts.authenticate(engine, username, password, hashing=guard.hashing())
    except Busy:
        return _refused(request, 503, "Too many sign-ins at once: try again in a moment.", 1)
    # An unknown name is not written down: people type odd things (even ID numbers) there.
    actor = username if user or accounts.get_user(engine, username) else "?"
    detail = {"address": address}
    if user is None:
        locked = guard.failed(username, address)
        if locked:
            detail["locked_seconds"] = locked
    else:
        guard.succeeded(username)
    audit.append(engine, actor, "login" if user else "login_failed", detail=detail)
    if user is None:
        return render(request, "login.html", status_code=401, user=None,
                      error="Wrong username or password.")
    request.session.clear()  # a fresh session (and CSRF token) at every sign-in
    request.session[SESSION_ID] = state.sessions.start(user.username)
    set_user(request, user)
    csrf_token(request)
    return RedirectResponse("/queue", 303)


@router.post("/logout")
def logout(request: Request):
    """Sign out: the session ends on the server (an old copy of the cookie is refused from now
    on), and any pair held goes back to the queue for the next reviewer at once."""
    user = current_user(request)
    session_id = request.session.get(SESSION_ID)
    if isinstance(session_id, str) and session_id:
        request.app.state.review.sessions.end(session_id)
    if user:
        state = request.app.state.review
        state.queue.release_all(user.username)
        audit.append(state.engine, user.username, "logout")
    request.session.clear()
    set_user(request, None)
    return RedirectResponse("/login", 303)
