"""`linkage serve`: the review app under uvicorn, with access logs that never show a query string.

No route takes personal data in its URL (pairs are opaque tokens), and the access log drops
query strings anyway, so a filter value typed into a search box cannot end up in a log file.
"""
from __future__ import annotations

import os
import sys

import uvicorn

from linkage.core.config import JobConfig
from linkage.web.access_log import DropQueryString, log_config, masked_path

__all__ = ["DropQueryString", "log_config", "masked_path", "serve"]


def serve(config: JobConfig, host: str = "127.0.0.1", port: int = 8000,
          secret_key: str | None = None, store_url: str | None = None,
          check_only: bool = False, rates: dict[str, str | None] | None = None,
          behind_proxy: str | None = None, refresh_seconds: float = 60.0,
          review_only: bool = False) -> None:
    """Run the app on the job's store until interrupted (only the check API if `check_only`,
    only the review pages if `review_only`); `rates`: the check API's per-token record limits
    by scope; `behind_proxy`: the TLS reverse proxy's addresses (Secure cookies, and forwarded
    headers believed from them only).

    The review pages answer within seconds of start at any scale: the queue comes from the
    store, the records they show are read in a child process, and the check master (unless
    `review_only`) is built in a thread while the pages answer (its routes say 503 with
    Retry-After until then). A prefecture's master costs the serving process seconds of
    interpreter lock while it builds; run `--review-only` and `--check-only` as two servers
    there."""
    if check_only and review_only:
        raise ValueError("--check-only and --review-only exclude each other")
    if check_only:
        # Served by a worker process that a new one replaces when a newer run completes, so
        # no check ever waits for a master to be built (linkage/web/workers.py).
        from linkage.web.workers import supervise

        supervise(config, host, port, rates, refresh_seconds, store_url or config.store)
        return
    from linkage.web.app import create_app
    from linkage.web.check_api import build_in_background
    from linkage.web.records import BackgroundRecords

    secret_key = secret_key or os.environ.get("LINKAGE_SECRET_KEY")
    if not secret_key:
        print("note: LINKAGE_SECRET_KEY is not set; sessions end when the server stops",
              file=sys.stderr)
    url = store_url or config.store
    app = create_app(url, config, secret_key, records=BackgroundRecords(config, url),
                     check_rates=rates, review_only=review_only, warm=True,
                     secure_cookies=bool(behind_proxy), forwarded_allow_ips=behind_proxy)
    if not review_only:
        # After the queue: building both at once would share the interpreter lock and hold
        # the first queue page back by as long as the master takes.
        build_in_background(app.state.check_api, after=app.state.warm_up)
    uvicorn.run(app, host=host, port=port, log_config=log_config(), proxy_headers=False)
