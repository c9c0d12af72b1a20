"""Review-app accounts: users with a role, created from the command line, argon2 password hashes,
and the server-side sessions of signed-in browsers.

Roles are ranked (reviewer < supervisor < admin): a route that needs a reviewer admits a
supervisor too, so the check is one comparison and never a list to keep in step.

A session is a random id in the signed cookie and a row in ``review_sessions`` holding only its
SHA-256: logging out ends that row, and a password change or disabling the account ends all of
the user's rows in the same transaction, so an old cookie stops working at once.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from linkage.store.tables import review_sessions, users

ROLES = ("reviewer", "supervisor", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}
MIN_PASSWORD = 8
MIN_STRENGTH = 3  # zxcvbn's score (0-4): 3 resists an offline attack on a slow hash
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so that a wrong name costs as much time as
    a wrong password and timing does not tell which usernames exist."""
    return HASHER.hash("not the password of anyone")


class AccountError(ValueError):
    """A user that cannot be created as asked; the message says why."""


@dataclass(frozen=True)
class User:
    username: str
    role: str
    active: bool
    created_at: datetime

    def has_role(self, role: str) -> bool:
        """True when this user's role ranks at or above `role`."""
        return self.active and ROLE_RANK.get(self.role, 0) >= ROLE_RANK[role]


def check_password(username: str, password: str) -> None:
    """Refuse a password that is short or easy to guess (zxcvbn score below MIN_STRENGTH, the
    user name and 'linkage' counting as known words); the message says why."""
    from zxcvbn import zxcvbn

    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters")
    result = zxcvbn(password, user_inputs=[username, "linkage"], max_length=128)
    if result["score"] < MIN_STRENGTH:
        feedback = result["feedback"]
        why = " ".join(filter(None, [feedback.get("warning"), *feedback.get("suggestions", [])]))
        raise AccountError(f"password too easy to guess (strength {result['score']} of 4, needs "
                           f"{MIN_STRENGTH}){': ' + why if why else ''}")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}; got {role!r}")


def create_user(engine: sa.Engine, username: str, password: str, role: str,
                hasher: PasswordHasher | None = None) -> User:
    """Add a user; refuses unknown roles, weak passwords, odd names and existing users."""
    _check_role(role)
    if not _USERNAME.match(username or ""):
        raise AccountError("username: 1-64 characters of A-Z a-z 0-9 _ . - "
                           f"(it appears in logs and URLs); got {username!r}")
    check_password(username, password)
    created = datetime.now(timezone.utc)
    digest = (hasher or HASHER).hash(password)
    try:
        with engine.begin() as conn:
            conn.execute(users.insert().values(username=username, password_hash=digest, role=role,
                                               active=True, created_at=created))
    except sa.exc.IntegrityError:
        raise AccountError(f"user {username!r} already exists") from None
    return User(username, role, True, created)


_PUBLIC = (users.c.username, users.c.role, users.c.active, users.c.created_at)


def list_users(engine: sa.Engine) -> list[User]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*_PUBLIC).order_by(users.c.username)).all()
    return [User(*row) for row in rows]


def get_user(engine: sa.Engine, username: str) -> User | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(*_PUBLIC).where(users.c.username == username)).first()
    return User(*row) if row else None


def authenticate(engine: sa.Engine, username: str, password: str,
                 hashing: AbstractContextManager | None = None) -> User | None:
    """The active user with this name and password, or None (wrong name, password or inactive).

    `hashing` is held while the password hash is computed (not while the store is read): the
    sign-in throttle bounds how many of these memory-hungry hashes run at once.
    """
    with engine.connect() as conn:
        row = conn.execute(sa.select(users.c.password_hash, *_PUBLIC)
                           .where(users.c.username == username)).first()
    with hashing or nullcontext():
        digest = row[0] if row else _dummy_hash()
        try:
            HASHER.verify(digest, password or "")
        except (VerificationError, InvalidHashError):
            return None
    if row is None or not row[3]:
        return None
    return User(*row[1:])


def _update_user(engine: sa.Engine, username: str, end_sessions: bool, **values) -> User:
    """Change one user's row (and end their sessions if asked) in one transaction."""
    with engine.begin() as conn:
        done = conn.execute(users.update().where(users.c.username == username)
                            .values(**values)).rowcount
        if not done:
            raise AccountError(f"no user {username!r}")
        if end_sessions:
            end_user_sessions(conn, username)
    return get_user(engine, username)


def set_password(engine: sa.Engine, username: str, password: str,
                 hasher: PasswordHasher | None = None) -> User:
    """A new password (checked as at creation); every open session of the user ends."""
    check_password(username, password)
    return _update_user(engine, username, True,
                        password_hash=(hasher or HASHER).hash(password))


def set_active(engine: sa.Engine, username: str, active: bool) -> User:
    """Disable (every open session ends) or enable an account."""
    return _update_user(engine, username, not active, active=active)


def set_role(engine: sa.Engine, username: str, role: str) -> User:
    """A new role; pages read the role on every request, so it applies at the next one."""
    _check_role(role)
    return _update_user(engine, username, False, role=role)


# ---------------------------------------------------------------------- server-side sessions

def session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def start_session(engine: sa.Engine, username: str, lifetime: timedelta) -> str:
    """A new session for the user; returns its random id (for the cookie only: the store keeps
    its SHA-256). Sessions past their lifetime are dropped on the way."""
    session_id = secrets.token_urlsafe(32)
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(review_sessions.delete().where(review_sessions.c.expires_at < now))
        conn.execute(review_sessions.insert().values(
            session_sha256=session_digest(session_id), username=username, created_at=now,
            expires_at=now + lifetime))
    return session_id


def session_user(engine: sa.Engine, digest: str) -> User | None:
    """The active user of a live session (not ended, not expired), or None: one indexed query."""
    q = (sa.select(*_PUBLIC).join(review_sessions, review_sessions.c.username == users.c.username)
         .where(review_sessions.c.session_sha256 == digest,
                review_sessions.c.ended_at.is_(None),
                review_sessions.c.expires_at > datetime.now(timezone.utc), users.c.active))
    with engine.connect() as conn:
        row = conn.execute(q).first()
    return User(*row) if row else None


def end_session(engine: sa.Engine, digest: str) -> None:
    with engine.begin() as conn:
        conn.execute(review_sessions.update().where(
            review_sessions.c.session_sha256 == digest, review_sessions.c.ended_at.is_(None))
            .values(ended_at=datetime.now(timezone.utc)))


def end_user_sessions(conn: sa.Connection, username: str) -> int:
    """End every open session of the user inside the caller's transaction; how many ended."""
    return conn.execute(review_sessions.update().where(
        review_sessions.c.username == username, review_sessions.c.ended_at.is_(None))
        .values(ended_at=datetime.now(timezone.utc))).rowcount
