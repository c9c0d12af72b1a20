"""Sessions, roles and CSRF for every route of the review app.

The session cookie (Starlette's, signed with the app's secret, HttpOnly, SameSite=Strict) holds
only the username and a random CSRF token; the role is read from the store on each request, so
a role change or a disabled account takes effect at once. Every POST must carry the session's
CSRF token (form field `csrf_token` or header X-CSRF-Token): the check is one app-wide
dependency, so a new form cannot forget it.
"""
from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from linkage import accounts
from linkage.accounts import User

SESSION_USER = "user"
SESSION_CSRF = "csrf"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


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
        raise HTTPException(403, "The form's security token is missing or wrong; reload the "
                                 "page and try again.")


def current_user(request: Request) -> User | None:
    username = request.session.get(SESSION_USER)
    if not username:
        return None
    user = accounts.get_user(request.app.state.review.engine, username)
    if user is None or not user.active:
        request.session.pop(SESSION_USER, None)
        return None
    return user


def require(role: str):
    """A dependency admitting users whose role ranks at or above `role`."""
    def dependency(request: Request) -> User:
        user = current_user(request)
        if user is None:
            raise LoginRequired()
        if not user.has_role(role):
            raise HTTPException(403, f"This needs the {role} role.")
        return user
    return dependency


ReviewerUser = Annotated[User, Depends(require("reviewer"))]
SupervisorUser = Annotated[User, Depends(require("supervisor"))]
AdminUser = Annotated[User, Depends(require("admin"))]
