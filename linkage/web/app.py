"""The review app's factory: one FastAPI app over one store, with server-side sessions, CSRF on
every POST, throttled sign-in, strict security headers and no route that answers without checking
the caller's role. Behind a TLS reverse proxy (`secure_cookies`, `forwarded_allow_ips`) cookies
are Secure, HSTS is sent, and X-Forwarded-For/-Proto are believed from the proxy's address only.
"""
from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from datetime import timedelta

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from linkage.core.config import JobConfig
from linkage.store import Store
from linkage.web import auth, household_pages, i18n, pages, supervisor
from linkage.web.context import AppState
from linkage.web.householdview import Correspondences
from linkage.web.i18n import LanguageMiddleware
from linkage.web.login_guard import LoginGuard
from linkage.web.queue import LEASE_SECONDS, ReviewQueue
from linkage.web.records import BackgroundRecords, RecordBook
from linkage.web.rendering import HERE, render
from linkage.web.session import LoginRequired, Sessions, csrf_protect, known_user
from linkage.web.timing import ServerTiming

log = logging.getLogger(__name__)
SESSION_HOURS = 10
# Pages hold personal data: no caching, no framing, no referrer, nothing loaded from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
HSTS = {"Strict-Transport-Security": "max-age=31536000"}  # only when served over TLS


class SecurityHeaders:
    """ASGI middleware: every answer carries SECURITY_HEADERS (unless a route set its own).

    Plain ASGI rather than ``@app.middleware("http")``: that wrapper costs about a millisecond
    per request, a tenth of an online check's budget.
    """

    def __init__(self, app, headers: dict[str, str] = SECURITY_HEADERS) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


REVIEW_ONLY = ("This server serves the review pages only (linkage serve --review-only); the "
               "check API is not here. Checks are answered by `linkage serve --check-only`.")


def create_app(store_url: str, config: JobConfig | None = None, secret_key: str | None = None,
               *, records: RecordBook | BackgroundRecords | None = None,
               lease_seconds: int = LEASE_SECONDS, check_api: bool = True,
               review_only: bool = False, warm: bool = False,
               check_rates: dict[str, str | None] | None = None,
               secure_cookies: bool = False, forwarded_allow_ips: str | list[str] | None = None,
               clock: Callable[[], float] | None = None) -> FastAPI:
    """The review app on the store at `store_url`.

    With a job config the app reads the job's sources once (to show records) and queues the
    job's latest complete run; without one it shows pair keys only and queues the latest run of
    any job. `records`: a loaded RecordBook (tests share one), or BackgroundRecords, which
    reads the records the review pages need in a child process while the app answers. Without
    a `secret_key` a random one is drawn, so sessions and pair URLs end when the process does.
    With a config (and `check_api`) the token-authenticated check API is mounted at /api/v1
    (linkage/web/check_api.py); `review_only` mounts there instead an answer that says where
    checks are served. `warm`: build the latest run's kept queue (and start reading its
    records) in a thread at once, instead of on the first request.

    Behind a TLS reverse proxy: `secure_cookies` marks the session cookie Secure and sends HSTS;
    `forwarded_allow_ips` (the proxy's addresses, comma-separated or a list; "*" trusts anyone)
    makes the client address and scheme come from X-Forwarded-For / X-Forwarded-Proto when the
    connection is from one of them, and from the connection otherwise. `clock` (wall-clock
    seconds) drives the sign-in back-off, for tests.
    """
    store = Store(store_url)
    if records is None:
        records = RecordBook.from_config(config) if config is not None else RecordBook()
    secret_key = secret_key or secrets.token_urlsafe(32)
    queue = ReviewQueue(store.engine, config.job if config else None, lease_seconds,
                        secret=secret_key)

    app = FastAPI(title="Clerical review", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(csrf_protect)],
                  max_body_size=2**20)  # forms need far less; /api/v1 sets its own limits
    lifetime = timedelta(hours=SESSION_HOURS)
    app.state.review = AppState(store, queue, records, config, Sessions(store.engine, lifetime),
                                LoginGuard(clock) if clock else LoginGuard(),
                                Correspondences(store.engine, secret_key))
    app.add_middleware(SessionMiddleware, secret_key=secret_key,
                       session_cookie="review_session", max_age=int(lifetime.total_seconds()),
                       same_site="strict", https_only=secure_cookies)

    app.add_middleware(SecurityHeaders,
                       headers={**SECURITY_HEADERS, **HSTS} if secure_cookies else SECURITY_HEADERS)
    for lang in i18n.LANGUAGES:  # compiled from the .po files now: a broken one fails here
        i18n.catalogue(lang)
    app.add_middleware(LanguageMiddleware)  # the page language, from the `lang` cookie
    app.add_middleware(ServerTiming)  # outside the others: the whole server time
    if forwarded_allow_ips:
        # Outermost, so the throttle, the audit and the Secure cookie see the real client.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=forwarded_allow_ips)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "Sign in first."}, status_code=401)
        return RedirectResponse("/login", 303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        # Only the user this request already looked up: this runs on the event loop, and a 404
        # for a static file must not wait on the store.
        return render(request, "error.html", status_code=exc.status_code,
                      user=known_user(request), status=exc.status_code, message=exc.detail)

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(household_pages.router)
    app.include_router(supervisor.router)
    if warm:
        def warm_up() -> None:
            try:
                records.follow(queue.warm())
            except Exception:  # noqa: BLE001 - the first request builds the queue instead
                log.exception("review app: building the review queue at start-up failed")

        app.state.warm_up = threading.Thread(target=warm_up, name="review-warm-up", daemon=True)
        app.state.warm_up.start()
    if review_only:
        app.mount("/api/v1", _refusing_checks())
    elif config is not None and check_api:
        # A sub-application: bearer tokens, its own OpenAPI, outside the session/CSRF rules.
        from linkage.web.api_guard import CheckLimits
        from linkage.web.check_api import create_check_app

        app.state.check_api = create_check_app(config, store,
                                               limits=CheckLimits(store.engine, check_rates))
        app.mount("/api/v1", app.state.check_api)
    return app


def _refusing_checks():
    """Every /api/v1 route of a review-only server: 404, saying where checks are served."""
    async def refuse(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        await JSONResponse({"detail": REVIEW_ONLY}, status_code=404)(scope, receive, send)

    return refuse


def check_only_app(config: JobConfig, store_url: str,
                   rates: dict[str, str | None] | None = None,
                   refresh_seconds: float | None = None) -> FastAPI:
    """The check API alone at /api/v1, for a server that does not host the review pages (it
    then holds no copy of the sources beside the master). ``refresh_seconds``: how often the
    master looks for a newer run itself (a worker of linkage/web/workers.py never does)."""
    from linkage.web.api_guard import CheckLimits
    from linkage.web.check_api import create_check_app

    app = FastAPI(title="Enrolment check", docs_url=None, redoc_url=None, openapi_url=None)
    store = Store(store_url)
    extra = {} if refresh_seconds is None else {"refresh_seconds": refresh_seconds}
    app.state.check_api = create_check_app(config, store, limits=CheckLimits(store.engine, rates),
                                           **extra)
    app.mount("/api/v1", app.state.check_api)
    app.add_middleware(SecurityHeaders)
    return app
