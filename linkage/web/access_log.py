"""The access log of `linkage serve`: never a query string, never an ID number in a path.

No route takes personal data in its URL (pairs are opaque tokens), and the access log drops
query strings anyway, so a filter value typed into a search box cannot end up in a log file.
"""
from __future__ import annotations

import copy
import logging

import uvicorn


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
