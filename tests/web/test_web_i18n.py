"""The review pages' languages: every message of the templates and the code has a Chinese
translation in the catalogue, pages are Chinese unless English is chosen, and the switch is a
cookie set by a CSRF-checked POST that returns to the page it was pressed on."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from review_helpers import csrf_of

from linkage.web import i18n

WEB = Path(i18n.__file__).resolve().parent
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _used_messages() -> set[str]:
    """Every msgid the templates and the web package's Python use, extracted by babel.cfg."""
    with open(WEB / "babel.cfg", encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(WEB), method_map, options_map, keywords=keywords):
        found.update(message if isinstance(message, tuple) else (message,))
    return found


def _catalogue(lang: str):
    with open(WEB / "translations" / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=lang)


def test_every_message_used_has_a_chinese_translation():
    used = _used_messages()
    assert len(used) > 150  # the templates and the code were found
    zh = _catalogue("zh")
    missing = sorted(m for m in used if m not in zh or not zh[m].string)
    assert not missing, "messages without a Chinese translation (see linkage/web/i18n.py): " \
                        f"{missing}"
    for message in used:  # the same placeholders, or formatting the message fails
        assert sorted(PLACEHOLDER.findall(zh[message].string)) == sorted(
            PLACEHOLDER.findall(message)), message
    with open(WEB / "translations" / "messages.pot", "rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    assert used <= template, "messages.pot is out of date: extract again"
    assert used <= {m.id for m in _catalogue("en") if m.id}


def test_the_catalogue_is_compiled_from_the_po_files_and_chinese_is_the_default():
    assert not list(WEB.glob("translations/**/*.mo"))  # no binary catalogue is kept
    assert i18n.gettext("Same person") == "同一人"
    with i18n.in_language("en"):
        assert i18n.gettext("Same person") == "Same person"
    with i18n.in_language("fr"):  # a language we do not have: Chinese
        assert i18n.gettext("Not the same person") == "不是同一人"
    assert i18n.from_cookie_header("lang=en; other=1") == "en"
    assert i18n.from_cookie_header("lang=xx") == i18n.from_cookie_header(None) == "zh"
    assert i18n.from_cookie_header('lang="') == "zh"  # malformed: no language


ENGLISH_WORDS = re.compile(r"\b(Start reviewing|Queue|Log out|Sign in|Review queue|waiting for "
                           r"you|Why the model|Household of|Other candidates|Decision history|"
                           r"Same person|Not the same person|Unsure|Field)\b")


def _visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def _claim(client) -> str:
    response = client.post("/queue/next", data={"csrf_token": client.csrf})
    assert response.status_code == 303, response.text
    return response.headers["location"].removeprefix("/pair/")


def test_the_pages_are_chinese_by_default(client_for):
    anonymous = client_for()
    login = anonymous.get("/login").text
    assert '<html lang="zh-CN">' in login and "登录" in login and "中文" in login
    alice = client_for("alice")
    queue = alice.get("/queue").text
    assert "审核队列" in queue and "开始审核" in queue
    pair = alice.get(f"/pair/{_claim(alice)}").text
    for words in ("同一人", "不是同一人", "不确定", "模型为何这样评分", "的家庭成员", "字段"):
        assert words in pair, words
    for page in (login, queue, pair):
        assert not ENGLISH_WORDS.search(_visible_text(page)), ENGLISH_WORDS.search(
            _visible_text(page))


def test_the_language_switch_sets_a_cookie_and_returns_to_the_page(client_for):
    alice = client_for("alice")
    token = _claim(alice)
    switched = alice.post("/language", data={"csrf_token": alice.csrf, "lang": "en",
                                             "back": f"/pair/{token}"})
    assert switched.status_code == 303 and switched.headers["location"] == f"/pair/{token}"
    cookie = switched.headers["set-cookie"].lower()
    assert cookie.startswith("lang=en") and "httponly" in cookie and "samesite=strict" in cookie
    page = alice.get(f"/pair/{token}").text
    assert '<html lang="en">' in page
    assert "Why the model scores it so" in page and "Same person" in page
    assert "模型为何这样评分" not in page
    assert 'name="back" value="/pair/' in page  # the switch returns here
    back = alice.post("/language", data={"csrf_token": alice.csrf, "lang": "zh", "back": "/queue"})
    assert back.headers["location"] == "/queue"
    assert "审核队列" in alice.get("/queue").text


@pytest.mark.parametrize("back", ["//evil.example/x", "https://evil.example/", "/\\evil", "x"])
def test_the_language_switch_goes_back_only_within_the_app(client_for, back):
    anonymous = client_for()
    token = csrf_of(anonymous.get("/login").text)
    answer = anonymous.post("/language", data={"csrf_token": token, "lang": "en", "back": back})
    assert answer.status_code == 303 and answer.headers["location"] == "/queue"


def test_the_language_switch_needs_the_csrf_token_and_works_before_sign_in(client_for):
    anonymous = client_for()
    assert anonymous.post("/language", data={"lang": "en"}).status_code == 403
    token = csrf_of(anonymous.get("/login").text)
    answer = anonymous.post("/language", data={"csrf_token": token, "lang": "en",
                                               "back": "/login"})
    assert answer.headers["location"] == "/login"
    page = anonymous.get("/login").text
    assert '<html lang="en">' in page and "Sign in" in page and "Username" in page


def test_python_messages_follow_the_language(client_for):
    alice = client_for("alice")
    assert "没有这对记录" in alice.get(f"/pair/{'f' * 32}").text
    alice.post("/language", data={"csrf_token": alice.csrf, "lang": "en"})
    assert "No such pair." in alice.get(f"/pair/{'f' * 32}").text
    forbidden = alice.get("/supervisor/log")
    assert forbidden.status_code == 403 and "This needs the supervisor role." in forbidden.text
