"""Sign-in and sign-out: a fresh server-side session at every sign-in, ended at sign-out, throttled
sign-in attempts (linkage/web/login_guard.py), audited either way; and the language switch, open
like the sign-in form (it must work before sign-in) and, like every POST, CSRF-checked."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from linkage.store import accounts, audit
from linkage.web import i18n
from linkage.web.i18n import gettext as _
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
        message = _("Too many failed sign-ins for this account or from this address: try again "
                    "after %(when)s (in %(seconds)d s).") % {"when": when,
                                                            "seconds": math.ceil(wait)}
        return _refused(request, 429, message, wait)
    try:
        user = accounts.authenticate(engine, username, password, hashing=guard.hashing())
    except Busy:
        return _refused(request, 503, _("Too many sign-ins at once: try again in a moment."), 1)
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
                      error=_("Wrong username or password."))
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


def _local(path: str) -> str:
    """A path of this app to go back to (never another site: //host or a scheme)."""
    if not path.startswith("/") or path.startswith(("//", "/\\")) or "\\" in path:
        return "/queue"
    return path


@router.post("/language")
def choose_language(request: Request, lang: Annotated[str, Form(max_length=8)] = i18n.DEFAULT,
                    back: Annotated[str, Form(max_length=200)] = "/queue"):
    """Switch the pages' language (a cookie, nothing else: no personal data, no URL
    parameter) and go back to the page the switch was pressed on."""
    response = RedirectResponse(_local(back), 303)
    response.set_cookie(i18n.COOKIE, lang if lang in i18n.LANGUAGES else i18n.DEFAULT,
                        max_age=i18n.COOKIE_MAX_AGE, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response
