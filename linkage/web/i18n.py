"""The review pages' languages: Chinese first (the reviewers are county clerks), English on
request, from one message catalogue (``translations/``, gettext .po files).

Messages are written in English in the code and templates (the msgids) and translated in
``translations/zh/LC_MESSAGES/messages.po``; the English catalogue is the msgids themselves.
The .po files are compiled with Babel when the app is made, so no binary .mo file is kept in the
repository. A request's language comes from the ``lang`` cookie (set by ``POST /language``),
Chinese without one; :class:`LanguageMiddleware` makes it the language of everything the
request renders or raises, templates (Jinja2's i18n extension) and Python messages alike.

To refresh the catalogue after changing messages (babel.cfg names the files):

    .venv/bin/pybabel extract -F linkage/web/babel.cfg -k N_ --no-location --sort-output \
        --project hukou-linkage --version 0.1.0 -o linkage/web/translations/messages.pot linkage/web
    .venv/bin/pybabel update --no-fuzzy-matching -w 100 \
        -i linkage/web/translations/messages.pot -d linkage/web/translations

then translate the new entries of the zh catalogue (tests/web/test_web_i18n.py fails while one
is missing). The flags keep the files' headers and line width; a fuzzy guess would pass for a
translation in the .po file but is left out of the compiled catalogue.
"""
from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from http.cookies import SimpleCookie
from io import BytesIO
from pathlib import Path

from babel.messages import mofile, pofile

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
LANGUAGES = {"zh": "中文", "en": "English"}  # code -> the switch's label, in its own language
HTML_LANG = {"zh": "zh-CN", "en": "en"}
DEFAULT = "zh"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

_current: ContextVar[str] = ContextVar("review_language", default=DEFAULT)


def N_(message: str) -> str:
    """Mark a message for the catalogue where it is defined; it is translated where shown."""
    return message


@cache
def catalogue(lang: str) -> _gettext.NullTranslations:
    """The compiled catalogue of ``lang`` (compiled from its .po file once per process)."""
    path = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return _gettext.NullTranslations()
    with open(path, "rb") as f:
        catalog = pofile.read_po(f, locale=lang)
    buffer = BytesIO()
    mofile.write_mo(buffer, catalog)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def current() -> str:
    """The language of the request being answered."""
    return _current.get()


def use(lang: str) -> None:
    """Make ``lang`` the language of the rest of this request (a known code, else Chinese)."""
    _current.set(lang if lang in LANGUAGES else DEFAULT)


@contextmanager
def in_language(lang: str) -> Iterator[None]:
    """Messages in ``lang`` inside the block (outside a request: tests, scripts)."""
    token = _current.set(lang if lang in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    return catalogue(current()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return catalogue(current()).ngettext(singular, plural, n)


_ = gettext


def from_cookie_header(header: str | None) -> str:
    """The language a Cookie header asks for (Chinese when it asks for none we have)."""
    if not header:
        return DEFAULT
    try:
        morsel = SimpleCookie(header).get(COOKIE)
    except Exception:  # noqa: BLE001 - a malformed cookie header is no language
        return DEFAULT
    return morsel.value if morsel is not None and morsel.value in LANGUAGES else DEFAULT


class LanguageMiddleware:
    """ASGI middleware: the request's language from its cookie, for templates and messages.

    A context variable set here is seen by the route (run in the thread pool, which copies the
    context), its dependencies and the error handlers.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            cookie = None
            for name, value in scope.get("headers", ()):
                if name == b"cookie":
                    cookie = value.decode("latin-1")
                    break
            token = _current.set(from_cookie_header(cookie))
            try:
                await self.app(scope, receive, send)
            finally:
                _current.reset(token)
            return
        await self.app(scope, receive, send)
