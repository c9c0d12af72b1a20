"""Jinja2 templates (autoescaped) and the context every page gets: the user, the CSRF token and
`pair_token`, which turns a pair (or a stored pair token) into its URL token."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fastapi import Request
from jinja2 import Environment, FileSystemLoader
from starlette.templating import Jinja2Templates

from linkage.web.session import csrf_token, current_user

HERE = Path(__file__).resolve().parent
FIELD_LABELS = {
    "name": "姓名", "id_number": "身份证号", "birth_date": "出生日期", "gender": "性别",
    "household_id": "户号", "relation": "与户主关系", "township": "乡镇", "village": "村",
    "ethnicity": "民族", "status": "人员状态",
}


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:  # SQLite gives back naive UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                   trim_blocks=True, lstrip_blocks=True)
_env.filters["when"] = _when
_env.filters["number"] = _number
_env.globals["FIELD_LABELS"] = FIELD_LABELS
templates = Jinja2Templates(env=_env)


def render(request: Request, name: str, status_code: int = 200, **context):
    """A page with the signed-in user (or None) and this session's CSRF token in its context."""
    if "user" not in context:
        context["user"] = current_user(request)
    context["csrf_token"] = csrf_token(request)
    context["pair_token"] = request.app.state.review.queue.url_token
    return templates.TemplateResponse(request, name, context, status_code=status_code)
