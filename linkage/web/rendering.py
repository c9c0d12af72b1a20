"""Jinja2 templates (autoescaped, translated through linkage/web/i18n.py) and the context every
page gets: the user, the CSRF token, the language and its switch, `pair_token`, which turns
a pair (or a stored pair token) into its URL token, and `source_names`, the job's sources as
the pages name them.

One Jinja environment serves every page; it is built here with the words for stored codes
from linkage/web/display.py (the tables and their functions are its globals), so no page says
a code its own way.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, pass_context
from starlette.templating import Jinja2Templates

from linkage.web import display, i18n
from linkage.web.session import csrf_token, current_user

HERE = Path(__file__).resolve().parent


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:  # SQLite gives back naive UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _source_names(context) -> display.SourceNames:
    """The page's `source_names` (set by :func:`render`), else the job config's through the
    page's request."""
    names = context.get("source_names")
    if names is not None:
        return names
    request = context.get("request")
    state = getattr(request.app.state, "review", None) if request is not None else None
    return display.source_names(state.config if state is not None else None)


@pass_context
def _source_label(context, source: str) -> str:
    return display.source_label(_source_names(context), source)


@pass_context
def _record_label(context, key) -> str:
    return display.record_label(_source_names(context), key)


_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                   trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
_env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)
_env.filters["when"] = _when
_env.filters["number"] = _number
_env.globals.update(
    LANGUAGES=i18n.LANGUAGES, FIELD_LABELS=display.FIELD_LABELS,
    BAND_LABELS=display.BAND_LABELS, DECISION_LABELS=display.DECISION_LABELS,
    HOUSEHOLD_DECISION_LABELS=display.HOUSEHOLD_DECISION_LABELS,
    CORRESPONDENCE_KINDS=display.CORRESPONDENCE_KINDS,
    ROLE_LABELS=display.ROLE_LABELS, label=display.label, level_label=display.level_label,
    gender_label=display.gender_label, action_label=display.action_label,
    detail_label=display.detail_label, change_label=display.change_label,
    source_label=_source_label, record_label=_record_label)
templates = Jinja2Templates(env=_env)


def render(request: Request, name: str, status_code: int = 200, **context):
    """A page with the signed-in user (or None), this session's CSRF token and the language in
    its context. `here`: where the language switch returns to (the page's own path for a GET;
    a page answering a POST names the page to go back to, else the queue)."""
    if "user" not in context:
        context["user"] = current_user(request)
    context["csrf_token"] = csrf_token(request)
    context.setdefault("here", request.url.path if request.method == "GET" else "/queue")
    context["lang"] = i18n.current()
    context["html_lang"] = i18n.HTML_LANG[context["lang"]]
    context["pair_token"] = request.app.state.review.queue.url_token
    context.setdefault("source_names", display.source_names(request.app.state.review.config))
    return templates.TemplateResponse(request, name, context, status_code=status_code)
