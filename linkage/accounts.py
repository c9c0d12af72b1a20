"""Review-app accounts: users with a role, created from the command line, argon2 password hashes.

Roles are ranked (reviewer < supervisor < admin): a route that needs a reviewer admits a
supervisor too, so the check is one comparison and never a list to keep in step.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from linkage.store import users

ROLES = ("reviewer", "supervisor", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}
MIN_PASSWORD = 8
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


def create_user(engine: sa.Engine, username: str, password: str, role: str,
                hasher: PasswordHasher | None = None) -> User:
    """Add a user; refuses unknown roles, short passwords, odd names and existing users."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    if not _USERNAME.match(username or ""):
        raise AccountError("username: 1-64 characters of A-Z a-z 0-9 _ . - "
                           f"(it appears in logs and URLs); got {username!r}")
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters")
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


def authenticate(engine: sa.Engine, username: str, password: str) -> User | None:
    """The active user with this name and password, or None (wrong name, password or inactive)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(users.c.password_hash, *_PUBLIC)
                           .where(users.c.username == username)).first()
    digest = row[0] if row else _dummy_hash()
    try:
        HASHER.verify(digest, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if row is None or not row[3]:
        return None
    return User(*row[1:])
