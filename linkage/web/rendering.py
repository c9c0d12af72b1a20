"""Jinja2 templates (autoescaped, translated through linkage/web/i18n.py) and the context every
page gets: the user, the CSRF token, the language and its switch, and `pair_token`, which turns
a pair (or a stored pair token) into its URL token."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fastapi import Request
from jinja2 import Environment, FileSystemLoader
from starlette.templating import Jinja2Templates

from linkage.web import i18n
from linkage.web.i18n import N_
from linkage.web.session import csrf_token, current_user

HERE = Path(__file__).resolve().parent
# Translated where shown ({{ _(FIELD_LABELS[f]) }}): 姓名, 身份证号 … in Chinese.
FIELD_LABELS = {
    "name": N_("Name"), "id_number": N_("ID number"), "birth_date": N_("Date of birth"),
    "gender": N_("Gender"), "household_id": N_("Household number"),
    "relation": N_("Relation to head"), "township": N_("Township"), "village": N_("Village"),
    "ethnicity": N_("Ethnicity"), "status": N_("Registry status"), "address": N_("Address"),
    # the model's terms beside the fields (linkage.core.model's explanation)
    "place": N_("Place"), "household": N_("Household"), "prior": N_("Prior"),
}
# What a band, a decision or a role is called on the pages (the stored codes stay as they are).
BAND_LABELS = {"match": N_("match band"), "review": N_("review band"),
               "non_match": N_("non-match band")}
DECISION_LABELS = {"match": N_("Same person"), "non_match": N_("Not the same person"),
                   "unsure": N_("Unsure")}
ROLE_LABELS = {"reviewer": N_("reviewer"), "supervisor": N_("supervisor"), "admin": N_("admin")}


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:  # SQLite gives back naive UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def label(table: dict[str, str], code: str | None, empty: str = "—") -> str:
    """A stored code (band, decision, role) in the page's language; unknown codes as they are."""
    if not code:
        return empty
    return i18n.gettext(table[code]) if code in table else code


_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                   trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
_env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)
_env.filters["when"] = _when
_env.filters["number"] = _number
_env.globals.update(FIELD_LABELS=FIELD_LABELS, BAND_LABELS=BAND_LABELS,
                   DECISION_LABELS=DECISION_LABELS, ROLE_LABELS=ROLE_LABELS,
                   LANGUAGES=i18n.LANGUAGES, label=label)
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
    return templates.TemplateResponse(request, name, context, status_code=status_code)
