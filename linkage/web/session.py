"""Sessions, roles and CSRF for every route of the review app.

The session cookie (Starlette's, signed with the app's secret, HttpOnly, SameSite=Strict, Secure
behind a TLS proxy) holds only a random session id and a random CSRF token. The id is checked
against the store's ``review_sessions`` (which keeps its SHA-256) together with the user's role
and state, on each request that needs a user: logging out, a password change, disabling the
account or a role change take effect at the next request. The check is one indexed read, made
in the thread pool (every route and role dependency is a plain function), never on the event
loop; static files and the async error handlers do not look. Logging out is also remembered in
the process, so it holds even if the store cannot be written at that moment.

Every POST must carry the session's CSRF token (form field `csrf_token` or header X-CSRF-Token):
the check is one app-wide dependency, so a new form cannot forget it.
"""
from __future__ import annotations

import hmac
import secrets
import threading
import time
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from linkage.store import accounts
from linkage.store.accounts import User
from linkage.web.i18n import gettext as _

SESSION_ID = "sid"
SESSION_CSRF = "csrf"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_RESOLVED = "review_user"  # request.state: the user this request was found to have


class Sessions:
    """Server-side sessions: started at sign-in, ended at sign-out, checked on each request."""

    def __init__(self, engine, lifetime: timedelta):
        self.engine = engine
        self.lifetime = lifetime
        self._ended: dict[str, float] = {}  # digests ended by this process -> when
        self._lock = threading.Lock()

    def start(self, username: str) -> str:
        return accounts.start_session(self.engine, username, self.lifetime)

    def user(self, session_id: str) -> User | None:
        digest = accounts.session_digest(session_id)
        if digest in self._ended:
            return None
        return accounts.session_user(self.engine, digest)

    def end(self, session_id: str) -> None:
        """End the session here at once, then in the store (for every other process)."""
        digest = accounts.session_digest(session_id)
        now = time.time()
        with self._lock:
            horizon = now - self.lifetime.total_seconds()
            if len(self._ended) > 10_000:  # forget what the cookie's own age refuses anyway
                self._ended = {d: t for d, t in self._ended.items() if t > horizon}
            self._ended[digest] = now
        accounts.end_session(self.engine, digest)


class LoginRequired(Exception):
    """No signed-in user: pages redirect to the login form, JSON routes answer 401."""


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    token = request.session.get(SESSION_CSRF)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


async def csrf_protect(request: Request) -> None:
    """Refuse (403) any state-changing request without this session's token."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get(SESSION_CSRF)
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get("csrf_token")
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, _("The form's security token is missing or wrong; reload the "
                                   "page and try again."))


def current_user(request: Request) -> User | None:
    """The signed-in user of a live session (looked up once per request), or None."""
    if hasattr(request.state, _RESOLVED):
        return getattr(request.state, _RESOLVED)
    session_id = request.session.get(SESSION_ID)
    user = None
    if isinstance(session_id, str) and session_id:
        user = request.app.state.review.sessions.user(session_id)
        if user is None:  # ended, expired or disabled: this cookie signs nobody in again
            request.session.pop(SESSION_ID, None)
    set_user(request, user)
    return user


def known_user(request: Request) -> User | None:
    """The user this request was already found to have, without asking the store (for the
    async error handlers, which run on the event loop)."""
    return getattr(request.state, _RESOLVED, None)


def set_user(request: Request, user: User | None) -> None:
    setattr(request.state, _RESOLVED, user)


def require(role: str):
    """A dependency admitting users whose role ranks at or above `role`."""
    def dependency(request: Request) -> User:
        user = current_user(request)
        if user is None:
            raise LoginRequired()
        if not user.has_role(role):
            raise HTTPException(403, _("This needs the %(role)s role.") % {"role": role})
        return user
    return dependency


ReviewerUser = Annotated[User, Depends(require("reviewer"))]
SupervisorUser = Annotated[User, Depends(require("supervisor"))]
AdminUser = Annotated[User, Depends(require("admin"))]
