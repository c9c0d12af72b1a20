"""`linkage serve`: the review app under uvicorn, with access logs that never show a query string.

No route takes personal data in its URL (pairs are opaque tokens), and the access log drops
query strings anyway, so a filter value typed into a search box cannot end up in a log file.
"""
from __future__ import annotations

import copy
import logging
import os
import sys

import uvicorn

from linkage.core.config import JobConfig


class DropQueryString(logging.Filter):
    """Cut the query string from uvicorn's access-log lines (args: client, method, path, ...),
    and mask ID numbers in the path (someone may paste an ID into the URL bar), in every form
    the ID reader accepts (see linkage.jobs.ingest.mask_ids)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], masked_path(args[2].split("?", 1)[0]), *args[3:])
        return True


def masked_path(path: str) -> str:
    """``path`` with its ID numbers masked, looking under each layer of percent-encoding
    (uvicorn logs the path re-encoded once; a client may have encoded it twice, %2520). A path
    that held one is logged decoded as far as it was masked; any other path as it came."""
    from urllib.parse import unquote

    from linkage.jobs.ingest import mask_ids

    text, found = path, False
    for _ in range(4):
        masked = mask_ids(text)
        found |= masked != text
        text = unquote(masked)
        if text == masked:
            break
    return text if found else path


def log_config() -> dict:
    """uvicorn's own logging setup plus the query-string filter on the access handler."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["drop_query"] = {"()": DropQueryString}
    config["handlers"]["access"].setdefault("filters", []).append("drop_query")
    return config


def serve(config: JobConfig, host: str = "127.0.0.1", port: int = 8000,
          secret_key: str | None = None, store_url: str | None = None,
          check_only: bool = False, rates: dict[str, str | None] | None = None,
          behind_proxy: str | None = None) -> None:
    """Run the app on the job's store until interrupted (only the check API if `check_only`);
    `rates`: the check API's per-token record limits by scope; `behind_proxy`: the TLS reverse
    proxy's addresses (Secure cookies, and forwarded headers believed from them only)."""
    from linkage.web.app import check_only_app, create_app
    from linkage.web.check_api import preload

    if check_only:
        app = check_only_app(config, store_url or config.store, rates)
    else:
        secret_key = secret_key or os.environ.get("LINKAGE_SECRET_KEY")
        if not secret_key:
            print("note: LINKAGE_SECRET_KEY is not set; sessions end when the server stops",
                  file=sys.stderr)
        app = create_app(store_url or config.store, config, secret_key, check_rates=rates,
                         secure_cookies=bool(behind_proxy), forwarded_allow_ips=behind_proxy)
    preload(app.state.check_api)
    uvicorn.run(app, host=host, port=port, log_config=log_config(), proxy_headers=False)
