"""ASGI middleware in front of the check API: the bearer token is checked before anything reads
the request body.

FastAPI reads and parses a body before it solves a route's dependencies, so a token checked in
a dependency comes too late: an anonymous caller could make the server read and parse hundreds
of megabytes before its 401. Here the ``Authorization`` header is checked first, and an
unauthorised request is answered without a byte of its body read. The body's size is bounded
by the apps' and routes' ``max_body_size`` (FastAPI's own limit: 413 by Content-Length at the
first read, and by the bytes streamed so far, so a chunked body cannot grow past it either).

A check costs the gate a hash and a dictionary lookup (:meth:`TokenVerifier.cached`); only a
token memory cannot vouch for is read from the store, in a worker thread, so the event loop
never waits on the store. A busy store is answered 503 with Retry-After, never 500.
"""
from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from linkage.store.tokens import MISS, StoreBusy, TokenVerifier

SCOPE_KEY = "api_token"  # in scope["state"]: the verified ApiToken, for the routes' scope check
UNAUTHORISED = "A valid API token is needed: Authorization: Bearer lkt_..."
BUSY = "The store is busy (a run may be writing its results); try again shortly."


class TokenGate:
    """Refuse (401) requests to ``app`` without a live bearer token, except to ``public``
    paths (relative to the app's mount point); put the token in ``scope["state"]``."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier,
                 public: tuple[str, ...] = ()) -> None:
        self.app = app
        self.verifier = verifier
        self.public = frozenset(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _route_path(scope) in self.public:
            await self.app(scope, receive, send)
            return
        presented = _bearer(scope)
        try:
            token = self.verifier.cached(presented) if presented else None
            if token is MISS:
                token = await run_in_threadpool(self.verifier.verify, presented)
        except StoreBusy as exc:
            await _answer(send, 503, BUSY, [(b"retry-after", str(exc.retry_after).encode())])
            return
        if token is None:
            await _answer(send, 401, UNAUTHORISED, [(b"www-authenticate", b"Bearer")])
            return
        scope.setdefault("state", {})[SCOPE_KEY] = token
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path below the app's mount point (Starlette keeps the full path in scope['path'])."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            return credentials.strip() if scheme.lower() == "bearer" else None
    return None


async def _answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})
