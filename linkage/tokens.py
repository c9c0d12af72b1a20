"""API tokens for the check API: a name, a scope, and only a SHA-256 of the secret in the store.

A token reads ``lkt_<token id>_<secret>``. The id is public (it names the token in lists, logs
and revocations); the secret is 256 random bits, shown once when the token is made. Random
secrets that long need no slow password hash: SHA-256 and a constant-time compare are enough,
and a check stays fast. Scopes are ranked like the review app's roles, so a route asks for
the least scope it needs:

* ``status``: the master's state (run, counts), no personal data;
* ``check``: checks, with names, ID numbers and households masked;
* ``check_full``: checks with the records in full (for offices entitled to see them).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from linkage.store import api_tokens

log = logging.getLogger(__name__)

SCOPES = ("status", "check", "check_full")
SCOPE_RANK = {scope: rank for rank, scope in enumerate(SCOPES, start=1)}
PREFIX = "lkt"
_NAME = re.compile(r"^[A-Za-z0-9_.\- ]{1,100}$")
_TOKEN = re.compile(rf"^{PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_\-]{{20,100}})$")
TOUCH_SECONDS = 60  # last_used_at is written at most this often per token


class TokenError(ValueError):
    """A token that cannot be made or changed as asked; the message says why."""


@dataclass(frozen=True)
class ApiToken:
    token_id: str
    name: str
    scope: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    def allows(self, scope: str) -> bool:
        """True when this token is live and its scope ranks at or above ``scope``."""
        return self.revoked_at is None and SCOPE_RANK.get(self.scope, 0) >= SCOPE_RANK[scope]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(engine: sa.Engine, name: str, scope: str) -> tuple[ApiToken, str]:
    """A new token and its full text; the text is never stored and cannot be shown again."""
    if scope not in SCOPES:
        raise TokenError(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}")
    if not _NAME.match(name or ""):
        raise TokenError(f"name: 1-100 characters of A-Z a-z 0-9 _ . - and space; got {name!r}")
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    created = datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(api_tokens.insert().values(token_id=token_id, name=name, scope=scope,
                                                secret_sha256=_digest(secret), created_at=created))
    return ApiToken(token_id, name, scope, created, None, None), f"{PREFIX}_{token_id}_{secret}"


_PUBLIC = (api_tokens.c.token_id, api_tokens.c.name, api_tokens.c.scope, api_tokens.c.created_at,
           api_tokens.c.revoked_at, api_tokens.c.last_used_at)


def list_tokens(engine: sa.Engine) -> list[ApiToken]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*_PUBLIC).order_by(api_tokens.c.created_at)).all()
    return [ApiToken(*row) for row in rows]


def revoke_token(engine: sa.Engine, token_id: str) -> ApiToken:
    """Revoke a token at once (the next request with it gets 401); revoking twice is refused."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(*_PUBLIC).where(api_tokens.c.token_id == token_id)).first()
        if row is None:
            raise TokenError(f"no token {token_id!r}; `linkage tokens list` shows the ids")
        if row.revoked_at is not None:
            raise TokenError(f"token {token_id!r} was already revoked on {row.revoked_at:%Y-%m-%d}")
        now = datetime.now(timezone.utc)
        conn.execute(api_tokens.update().where(api_tokens.c.token_id == token_id)
                     .values(revoked_at=now))
    return ApiToken(*row[:4], now, row[5])


class TokenVerifier:
    """Checks presented tokens against the store on every request (a revocation counts at
    once) and notes when each token was last used, without a write per request.

    The note is written from a background thread: a check answers in milliseconds, and a
    write may wait on the disk or on another writer (a run storing its results).
    """

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(self, presented: str) -> ApiToken | None:
        """The live token the text names, or None (malformed, unknown, wrong secret, revoked)."""
        match = _TOKEN.match(presented or "")
        if not match:
            return None
        token_id, secret = match.groups()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_tokens.c.secret_sha256, *_PUBLIC)
                               .where(api_tokens.c.token_id == token_id)).first()
        if row is None or not hmac.compare_digest(row[0], _digest(secret)) or row.revoked_at:
            return None
        self._touch(token_id)
        return ApiToken(*row[1:])

    def _touch(self, token_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._touched.get(token_id, -TOUCH_SECONDS) < TOUCH_SECONDS:
                return
            self._touched[token_id] = now
        used = datetime.now(timezone.utc)
        threading.Thread(target=self._write_used, args=(token_id, used), daemon=True,
                         name="token-last-used").start()

    def _write_used(self, token_id: str, used: datetime) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(api_tokens.update().where(api_tokens.c.token_id == token_id)
                             .values(last_used_at=used))
        except sa.exc.SQLAlchemyError:  # a note only: the check it came from is answered
            log.warning("could not note when API token %s was last used", token_id, exc_info=True)
