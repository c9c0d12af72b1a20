"""API tokens for the check API: a name, a scope, and only a SHA-256 of the secret in the store.

A token reads ``lkt_<token id>_<secret>``. The id is public (it names the token in lists, logs
and revocations); the secret is 256 random bits, shown once when the token is made. Random
secrets that long need no slow password hash: SHA-256 and a constant-time compare are enough,
and a check stays fast. Scopes are ranked like the review app's roles, so a route asks for
the least scope it needs:

* ``status``: the master's state (run, counts), no personal data;
* ``check``: checks, with names, ID numbers and households masked;
* ``check_full``: checks with the records in full (for offices entitled to see them).

A token may be made to lapse (``expires_at``); a lapsed token is refused like a revoked one.
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
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from linkage.store.tables import api_tokens

log = logging.getLogger(__name__)

SCOPES = ("status", "check", "check_full")
SCOPE_RANK = {scope: rank for rank, scope in enumerate(SCOPES, start=1)}
PREFIX = "lkt"
_NAME = re.compile(r"^[A-Za-z0-9_.\- ]{1,100}$")
_TOKEN = re.compile(rf"^{PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_\-]{{20,100}})$")
TOUCH_SECONDS = 60  # last_used_at is written at most this often per token
CACHE_SECONDS = 5.0  # a verified token is trusted this long: a revocation counts within it
READ_TIMEOUT = 1.0  # how long a token read waits for a busy store before giving up
BUSY_SECONDS = 2  # how often a busy store is read again (and the Retry-After)
# While the store cannot be read, a token verified this recently still counts: a run storing a
# million persons holds a rollback-journal SQLite store's lock for minutes, and desks go on.
STALE_SECONDS = 300.0
CACHE_SIZE = 10_000  # tokens (and refused token texts) remembered at most


class TokenError(ValueError):
    """A token that cannot be made or changed as asked; the message says why."""


class StoreBusy(Exception):
    """The store could not be read in time (a writer holds the lock, a lock or statement
    timeout); ask again after ``retry_after`` seconds."""

    retry_after = BUSY_SECONDS


@dataclass(frozen=True)
class ApiToken:
    token_id: str
    name: str
    scope: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    expires_at: datetime | None = None  # None: never

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and (now or _utcnow()) >= _aware(self.expires_at)

    def live(self) -> bool:
        """Neither revoked nor lapsed."""
        return self.revoked_at is None and not self.expired()

    def allows(self, scope: str) -> bool:
        """True when this token is live and its scope ranks at or above ``scope``."""
        return self.live() and SCOPE_RANK.get(self.scope, 0) >= SCOPE_RANK[scope]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(moment: datetime) -> datetime:
    """A stored time as UTC (SQLite gives back naive datetimes; they were written in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def expiry(days: int | None = None, until: date | None = None,
           now: datetime | None = None) -> datetime | None:
    """When a token made ``now`` lapses: ``days`` days later, or at the end of the day
    ``until`` (the server's local time); None for neither (it never lapses)."""
    now = now or _utcnow()
    if days is not None and until is not None:
        raise TokenError("give an expiry in days or as a date, not both")
    if days is not None:
        if days < 1:
            raise TokenError(f"--expires-days must be 1 or more; got {days}")
        return now + timedelta(days=days)
    if until is not None:
        local = datetime.combine(until + timedelta(days=1), datetime.min.time()).astimezone()
        if local <= now:
            raise TokenError(f"--expires {until.isoformat()} has passed")
        return local.astimezone(timezone.utc)
    return None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(engine: sa.Engine, name: str, scope: str,
                 expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new token and its full text; the text is never stored and cannot be shown again.
    ``expires_at``: when it lapses (see :func:`expiry`); None: never."""
    if scope not in SCOPES:
        raise TokenError(f"scope must be one of {', '.join(SCOPES)}; got {scope!r}")
    if not _NAME.match(name or ""):
        raise TokenError(f"name: 1-100 characters of A-Z a-z 0-9 _ . - and space; got {name!r}")
    created = _utcnow()
    if expires_at is not None and _aware(expires_at) <= created:
        raise TokenError(f"the expiry {expires_at:%Y-%m-%d %H:%M} has passed")
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(api_tokens.insert().values(token_id=token_id, name=name, scope=scope,
                                                secret_sha256=_digest(secret), created_at=created,
                                                expires_at=expires_at))
    return (ApiToken(token_id, name, scope, created, None, None, expires_at),
            f"{PREFIX}_{token_id}_{secret}")


_PUBLIC = (api_tokens.c.token_id, api_tokens.c.name, api_tokens.c.scope, api_tokens.c.created_at,
           api_tokens.c.revoked_at, api_tokens.c.last_used_at, api_tokens.c.expires_at)


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
    return ApiToken(*row[:4], now, *row[5:])


MISS = object()  # TokenVerifier.cached: memory cannot tell, the store must be read


class TokenVerifier:
    """Checks presented tokens and notes when each token was last used, without a store read
    or write on a check's path.

    A verified token is remembered for ``ttl`` seconds, keyed by its id and the SHA-256 of the
    presented secret (never the secret), so a check costs a hash and a lookup. A token in use
    is read again in the background once half its ``ttl`` has passed, so a revocation or an
    expiry counts within ``ttl`` while no check waits for the read. Refused texts are
    remembered too: a desk retrying with a revoked token does not read the store each time.

    The store is read through a connection of its own that waits at most ``read_timeout``
    for a busy store and then raises :class:`StoreBusy` (the API answers 503 with
    Retry-After): the store's own engine would wait 30 s. Once a read has found the store
    busy, no check waits for it again: a token verified in the last STALE_SECONDS still counts
    (a revocation cannot be written to a locked SQLite store either), others get 503 at once,
    and a background probe reads the store every BUSY_SECONDS until it answers.

    The last-used note is written from a background thread: a check answers in milliseconds,
    and a write may wait on the disk or on another writer.
    """

    def __init__(self, engine: sa.Engine, ttl: float = CACHE_SECONDS,
                 read_timeout: float = READ_TIMEOUT):
        self.engine = engine
        self.ttl = ttl
        self.reader = quick_reader(engine, read_timeout)
        self._cache: dict[tuple[str, str], tuple[float, ApiToken | None]] = {}
        self._refreshing: set[tuple[str, str]] = set()
        self._busy = False  # a read found the store busy; the probe has not read it since
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def cached(self, presented: str):
        """From memory only: the live token, None (refused), or MISS when the store must be
        read (:meth:`verify`). Raises StoreBusy for a text memory cannot vouch for while the
        store is known to be busy."""
        key = _key(presented)
        return None if key is None else self._lookup(key)

    def verify(self, presented: str) -> ApiToken | None:
        """The live token the text names, or None (malformed, unknown, wrong secret, revoked,
        lapsed); reads the store when memory cannot tell (a blocking read: call it off the
        event loop). Raises StoreBusy when the store cannot be read in time."""
        key = _key(presented)
        if key is None:
            return None
        found = self._lookup(key)
        if found is not MISS:
            return found
        try:
            token = self._read(key)
        except StoreBusy:
            return self._lookup(key)  # a recent verification, or StoreBusy
        return self._use(token)

    def _lookup(self, key: tuple[str, str]):
        now = time.monotonic()
        entry = self._cache.get(key)
        if entry is not None and now - entry[0] < self.ttl:
            token = entry[1]
            if token is not None and token.revoked_at is None and now - entry[0] >= self.ttl / 2:
                self._refresh_soon(key)
            return self._use(entry[1])
        if self._busy:
            if entry is not None and entry[1] is not None and now - entry[0] < STALE_SECONDS:
                return self._use(entry[1])
            raise StoreBusy("the store is busy")
        return MISS

    def _read(self, key: tuple[str, str]) -> ApiToken | None:
        """The stored token of ``key`` (remembered), or StoreBusy."""
        try:
            with self.reader.connect() as conn:
                row = conn.execute(sa.select(api_tokens.c.secret_sha256, *_PUBLIC)
                                   .where(api_tokens.c.token_id == key[0])).first()
        except (sa.exc.OperationalError, sa.exc.TimeoutError) as exc:
            self._store_busy(exc)
            raise StoreBusy("the store is busy") from None
        token = ApiToken(*row[1:]) if row and hmac.compare_digest(row[0], key[1]) else None
        self._remember(key, token)
        return token

    def _refresh_soon(self, key: tuple[str, str]) -> None:
        with self._lock:
            if key in self._refreshing or self._busy:
                return
            self._refreshing.add(key)
        threading.Thread(target=self._refresh, args=(key,), daemon=True,
                         name="token-refresh").start()

    def _refresh(self, key: tuple[str, str]) -> None:
        try:
            self._read(key)
        except StoreBusy:
            pass  # the entry ages on; checks fall back on it while the store stays busy
        except Exception:  # noqa: BLE001 - a background read: the next check tries again
            log.exception("API token check: reading token %s failed", key[0])
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _store_busy(self, exc: Exception) -> None:
        with self._lock:
            if self._busy:
                return
            self._busy = True
        log.warning("API token check: the store is busy (%s); reading it again every %s s",
                    type(getattr(exc, "orig", None) or exc).__name__, BUSY_SECONDS)
        threading.Thread(target=self._probe, daemon=True, name="token-store-probe").start()

    def _probe(self) -> None:
        """Read the store every BUSY_SECONDS until it answers, then let checks read it again."""
        try:
            while True:
                time.sleep(BUSY_SECONDS)
                try:
                    with self.reader.connect() as conn:
                        conn.execute(sa.select(api_tokens.c.token_id).limit(1)).all()
                    return
                except (sa.exc.OperationalError, sa.exc.TimeoutError):
                    continue
        except Exception:  # noqa: BLE001 - not a busy store: let the checks' reads find out
            log.exception("API token check: probing the store failed")
        finally:
            with self._lock:
                self._busy = False
            log.info("API token check: the store answers again")

    def _use(self, token: ApiToken | None) -> ApiToken | None:
        if token is None or not token.live():
            return None
        self._touch(token.token_id)
        return token

    def _remember(self, key: tuple[str, str], token: ApiToken | None) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._cache) >= CACHE_SIZE:  # keep the live tokens; refused texts go first
                self._cache = {k: v for k, v in self._cache.items()
                               if v[1] is not None and now - v[0] < STALE_SECONDS}
                if len(self._cache) >= CACHE_SIZE:
                    self._cache.clear()
            self._cache[key] = (now, token)

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


def _key(presented: str) -> tuple[str, str] | None:
    """(token id, SHA-256 of the secret) of a well-formed token text, else None."""
    match = _TOKEN.match(presented or "")
    return (match[1], _digest(match[2])) if match else None


def quick_reader(engine: sa.Engine, timeout: float = READ_TIMEOUT) -> sa.Engine:
    """An engine on the same store whose reads give up after about ``timeout`` seconds when
    the store is locked (SQLite's busy timeout; PostgreSQL's lock and statement timeouts),
    instead of the store engine's 30 s. Unpooled: it serves the rare token reads only."""
    url = engine.url
    ms = max(1, round(timeout * 1000))
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):  # one in-process database: share it
            return engine
        return sa.create_engine(url, connect_args={"timeout": timeout},
                                poolclass=sa.pool.NullPool)
    if url.get_backend_name() == "postgresql":
        given = url.query.get("options")
        given = " ".join(given) if isinstance(given, tuple) else (given or "")
        options = f"{given} -c lock_timeout={ms} -c statement_timeout={2 * ms}".strip()
        return sa.create_engine(url.update_query_dict({"options": options}),
                                connect_args={"connect_timeout": max(1, round(timeout * 2))},
                                poolclass=sa.pool.NullPool)
    return engine
