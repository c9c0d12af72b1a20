"""A ``Server-Timing`` header on every answer of the review app: how long the server took,
read by the browser (Navigation Timing, the developer tools) and by the review-session
benchmark, without a log line per request."""
from __future__ import annotations

import time

from starlette.datastructures import MutableHeaders


class ServerTiming:
    """ASGI middleware: ``Server-Timing: app;dur=<ms>``, from the request's arrival to the start
    of its answer (a page is rendered before its answer starts, so its rendering counts)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_timing(message) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000.0
                MutableHeaders(scope=message).append("Server-Timing", f"app;dur={took:.1f}")
            await send(message)

        await self.app(scope, receive, send_with_timing)
