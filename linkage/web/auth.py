"""Sign-in and sign-out; a fresh session at every sign-in, audited either way."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from linkage import accounts
from linkage.web import audit
from linkage.web.rendering import render
from linkage.web.session import SESSION_USER, csrf_token, current_user

router = APIRouter()


@router.get("/login")
def login_form(request: Request):
    if current_user(request):
        return RedirectResponse("/queue", 303)
    return render(request, "login.html", user=None, error=None)


@router.post("/login")
def login(request: Request, username: Annotated[str, Form(max_length=64)] = "",
          password: Annotated[str, Form(max_length=1024)] = ""):
    engine = request.app.state.review.engine
    user = accounts.authenticate(engine, username, password)
    # An unknown name is not written down: people type odd things (even ID numbers) there.
    actor = username if user or accounts.get_user(engine, username) else "?"
    with engine.begin() as conn:
        audit.record(conn, actor, "login" if user else "login_failed")
    if user is None:
        return render(request, "login.html", status_code=401, user=None,
                      error="Wrong username or password.")
    request.session.clear()  # a fresh session (and CSRF token) at every sign-in
    request.session[SESSION_USER] = user.username
    csrf_token(request)
    return RedirectResponse("/queue", 303)


@router.post("/logout")
def logout(request: Request):
    """Sign out and give back any pair held, so it goes to the next reviewer at once."""
    user = current_user(request)
    if user:
        state = request.app.state.review
        state.queue.release_all(user.username)
        with state.engine.begin() as conn:
            audit.record(conn, user.username, "logout")
    request.session.clear()
    return RedirectResponse("/login", 303)
