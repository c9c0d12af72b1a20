"""Stored codes in the page's words: the model's levels, gender, sources (insurance by scheme,
the registry by its role: 户籍), bands, decisions, roles, audit actions and decision states are
Chinese by default and English on request, from linkage/web/display.py; an unknown code is
shown as it is, and the codes themselves stay in the store and the APIs."""
from __future__ import annotations

import html as html_lib
import re

import pytest

import matchers
from linkage.store import audit
from linkage.web import display, pairview
from linkage.web.i18n import in_language
from linkage.web.pairview import _value_row
from linkage.web.records import Record


def _visible_text(page: str) -> str:
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", page, flags=re.S)
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", page))


def _claim(client) -> str:
    response = client.post("/queue/next", data={"csrf_token": client.csrf})
    assert response.status_code == 303, response.text
    return response.headers["location"].removeprefix("/pair/")


def _english(client) -> None:
    client.post("/language", data={"csrf_token": client.csrf, "lang": "en"})


def _levels_shown(page: str) -> dict[str, tuple[str, str]]:
    """Field label -> (stored level code, the words shown) of the "why" table's rows."""
    rows = re.findall(r'<th scope="row">([^<]*?) <span class="level" data-level="([^"]*)">'
                      r"([^<]*)</span>", page)
    return {html_lib.unescape(f): (code, html_lib.unescape(words)) for f, code, words in rows}


@pytest.mark.parametrize("call, zh, en", [
    (lambda: display.level_label("name", "exact"), "相同", "identical"),
    (lambda: display.level_label("name", "pinyin"), "同音字", "homophones"),  # 王丽 / 王莉
    (lambda: display.level_label("birth_date", "swapped"), "月日颠倒", "day and month swapped"),
    (lambda: display.level_label("name", "swapped"), "名字两字颠倒",
     "given-name characters swapped"),
    (lambda: display.level_label("id_number", "check_digit_only"), "仅校验码不同",
     "only the check character differs"),
    (lambda: display.level_label("place", "jaro_winkler_high"), "拼写很相近",
     "spelling very alike"),
    (lambda: display.level_label("gender", "missing"), "一方缺失", "missing on a side"),
    (lambda: display.level_label("name", "different"), "不同", "different"),
    (lambda: display.gender_label("F"), "女", "female"),
    (lambda: display.gender_label("M"), "男", "male"),
    (lambda: display.action_label("view_pair"), "查看记录对", "opened a pair"),
    (lambda: display.action_label("request_second_review"), "要求复核",
     "asked for a second review"),
    (lambda: display.change_label("revoked"), "吊销", "revoked"),
    (lambda: display.detail_label("first_reviewer"), "初审人", "first reviewer"),
])
def test_codes_are_words_in_chinese_unless_english_is_asked(call, zh, en):
    assert call() == zh
    with in_language("en"):
        assert call() == en


def test_unknown_codes_are_shown_as_they_are():
    assert display.level_label("name", "jaro_winkler_0.97") == "jaro_winkler_0.97"
    assert display.gender_label("未知") == "未知" and display.gender_label(None) == ""
    assert display.action_label("export_roster") == "export_roster"
    assert display.detail_label("window") == "window"


def test_every_stored_code_the_pages_show_has_words():
    assert set(display.ACTIONS) == set(audit.ACTIONS)
    factories = matchers.registered()
    for kind, factory in factories.items():
        try:
            comparison = factory()
        except TypeError:  # the generic matchers need a column
            comparison = factory("surname")
        for label in (*comparison.labels, "missing"):
            key = (comparison.name, label)
            assert label in display.LEVELS or key in display.COMPARISON_LEVELS, (kind, label)


def test_sources_show_their_scheme_names_and_the_registry_its_role(web_run):
    names = display.source_names(web_run.config)
    assert display.source_label(names, "ncms") == "新农合"
    assert display.record_label(names, ("urban", "U00123")) == "城镇居民:U00123"
    assert display.record_label(names, "ncms:NC000045") == "新农合:NC000045"
    assert display.source_label(names, "police") == "户籍"  # role authority: no scheme name
    assert display.record_label(names, ("police", "GA0001")) == "户籍:GA0001"
    with in_language("en"):
        assert display.source_label(names, "ncms") == "NCMS"  # the scheme code
        assert display.record_label(names, "urban:U00123") == "URBAN:U00123"
        assert display.record_label(names, "police:GA0001") == "registry:GA0001"
    assert display.source_label(names, "civil") == "civil"  # not in the config: as it is
    assert display.record_label(names, "GA0001") == "GA0001"  # no source: as it is
    assert display.source_label(display.source_names(None), "police") == "police"  # no config


def test_sources_sharing_a_role_word_keep_their_names_beside_it(web_run):
    from dataclasses import replace

    config = web_run.config
    police = next(s for s in config.sources if s.role == "authority")
    other = replace(police, name="police_2019")
    civil = replace(police, name="civil", role="other")
    names = display.source_names(replace(config, sources=(*config.sources, other, civil)))
    assert display.source_label(names, "police") == "户籍（police）"
    assert display.record_label(names, ("police_2019", "GA1")) == "户籍（police_2019）:GA1"
    # role `other`: its word, and always its name (the word alone does not say which list)
    assert display.source_label(names, "civil") == "其他来源（civil）"
    assert display.record_label(names, ("civil", "C7")) == "其他来源（civil）:C7"
    assert display.source_label(names, "ncms") == "新农合"
    with in_language("en"):
        assert display.source_label(names, "police_2019") == "registry (police_2019)"
        assert display.source_label(names, "civil") == "other source (civil)"


@pytest.mark.parametrize("table, code, zh, en", [
    (display.BAND_LABELS, "review", "待审核档", "review band"),
    (display.DECISION_LABELS, "non_match", "不是同一人", "Not the same person"),
    (display.ROLE_LABELS, "supervisor", "主管", "supervisor"),
    (display.FIELD_LABELS, "id_number", "身份证号", "ID number"),
])
def test_bands_decisions_roles_and_fields_are_words_from_the_same_tables(table, code, zh, en):
    from linkage.web.rendering import templates

    said = display.label(table, code)
    assert said == zh
    with in_language("en"):
        assert display.label(table, code) == en
    assert display.label(table, None) == "—" and display.label(table, "", "x") == "x"
    assert display.label(table, "weird") == "weird"
    env = templates.env.globals  # the templates use these very tables and functions
    assert env["label"] is display.label and env["level_label"] is display.level_label
    for name in ("FIELD_LABELS", "BAND_LABELS", "DECISION_LABELS", "ROLE_LABELS"):
        assert env[name] is getattr(display, name)


def _record(source: str, typed: str, gender: str) -> Record:
    return Record(source, "1", {"name": "王丽", "gender": typed}, {"gender": "性别"}, {},
                  None, None, "", gender)


def test_the_gender_row_shows_words_and_what_was_typed():
    ncms, urban = _record("ncms", "女", "F"), _record("urban", "2", "F")
    row = _value_row("gender", ncms, urban)
    assert [s.text for s in row.left] == ["女"] and [s.text for s in row.right] == ["女"]
    assert not row.differs and row.notes == ("", "原始录入：2")
    with in_language("en"):
        row = _value_row("gender", ncms, _record("urban", "1", "M"))
    assert [s.text for s in row.left] == ["female"] and [s.text for s in row.right] == ["male"]
    assert row.differs and row.notes == ("as typed: 女", "as typed: 1")


def test_the_pair_page_names_levels_gender_and_sources_in_chinese_then_english(app, client_for):
    alice = client_for("alice")
    queue, records = app.state.review.queue, app.state.review.records
    for _ in range(len(queue.candidates())):  # insurance records (新农合, 城镇居民) among the
        token = _claim(alice)                    # pair's records and its other candidates
        pair = queue.find(token)
        others = [o.record for side in pairview.build(queue, records, pair).others for o in side]
        if {pair.ref.left[0], pair.ref.right[0]} & {"ncms", "urban"} and any(
                o.startswith(("ncms:", "urban:")) for o in others):
            break
        alice.post(f"/pair/{token}/decide", data={"csrf_token": alice.csrf, "decision": "unsure"})
    page = alice.get(f"/pair/{token}").text
    shown = _levels_shown(page)
    stored = {name: v["level"] for name, v in pair.explanation.items() if isinstance(v, dict)}
    assert len(shown) == len(stored) >= 4
    with in_language("zh"):
        expected = {display.level_label(name, level) for name, level in stored.items()}
    assert {words for _code, words in shown.values()} == expected
    text = _visible_text(page)
    for code in stored.values():
        assert not re.search(rf"\b{re.escape(code)}\b", text), code  # no raw level code
    zh_sources = {"ncms": "新农合", "urban": "城镇居民", "police": "户籍"}
    for source, _record_id in (pair.ref.left, pair.ref.right):
        assert f'<span class="src">{zh_sources[source]}</span>' in page
    below = text.split("模型为何这样评分")[-1]  # households and candidates: sources by name too
    for source in zh_sources:
        assert f'<span class="src">{source}</span>' not in page
        assert not re.search(rf"\b{source}\b", below), source
    names = display.source_names(app.state.review.config)
    with in_language("zh"):
        assert all(display.record_label(names, o) in below for o in others), others
    members = [m for k in (pair.ref.left, pair.ref.right) for m in records.household(*k)]
    if any(m.gender for m in members):
        assert "<td>男</td>" in page or "<td>女</td>" in page
    assert "<td>M</td>" not in page and "<td>F</td>" not in page

    _english(alice)
    page = alice.get(f"/pair/{token}").text
    with in_language("en"):
        expected = {display.level_label(name, level) for name, level in stored.items()}
    assert {words for _code, words in _levels_shown(page).values()} == expected
    assert "相同" not in _levels_shown(page).get("Name", ("", ""))[1]
    en_sources = {"ncms": "NCMS", "urban": "URBAN", "police": "registry"}
    for source, _record_id in (pair.ref.left, pair.ref.right):
        assert f'<span class="src">{en_sources[source]}</span>' in page
    if any(m.gender for m in members):
        assert "<td>male</td>" in page or "<td>female</td>" in page


def test_the_queue_names_bands_in_chinese_then_english(client_for):
    alice = client_for("alice")
    text = _visible_text(alice.get("/queue").text)
    assert "待审核档" in text and not re.search(r"\breview\b", text)
    _english(alice)
    assert "review band" in _visible_text(alice.get("/queue").text)


def test_history_log_and_audit_trail_name_decisions_states_and_actions(app, client_for):
    alice, sam = client_for("alice"), client_for("sam")
    token = _claim(alice)
    pair = app.state.review.queue.find(token)
    alice.get(f"/pair/{token}")
    decided = alice.post(f"/pair/{token}/decide", data={
        "csrf_token": alice.csrf, "decision": "match", "note": "同村，村名改过",
        "confirm": "yes"})
    assert decided.status_code == 303, decided.text

    history = sam.get(f"/pair/{token}").text
    part = history[history.index("决定记录"):]
    assert "同一人" in part and "有效" in part
    log = _visible_text(sam.get("/supervisor/log").text)
    labels = {"ncms": "新农合:", "urban": "城镇居民:", "police": "户籍:"}
    for source, record_id in (pair.ref.left, pair.ref.right):
        assert f"{labels[source]}{record_id}" in log
    assert not re.search(r"\b(police|ncms|urban):", log)
    trail = sam.get("/supervisor/audit").text
    text = _visible_text(trail)
    for words in ("查看记录对", "已决定", "登录", "决定=同一人", "审计日志"):
        assert words in text, words
    for code in ("view_pair", "decide", "login", "non_match", "second_review=False"):
        assert not re.search(rf"(?<![\w=]){re.escape(code)}\b", text), code
    assert 'data-action="view_pair"' in trail  # the code stays for machines and filters
    assert '<option value="reveal_id" >显示完整身份证号</option>' in trail

    _english(sam)
    history = _visible_text(sam.get(f"/pair/{token}").text)
    assert "Decision history" in history and "Same person" in history and "active" in history
    text = _visible_text(sam.get("/supervisor/audit").text)
    for words in ("opened a pair", "decided", "signed in", "decision=Same person",
                  "second review=no"):
        assert words in text, words
    filtered = _visible_text(sam.get("/supervisor/audit", params={"action": "decide"}).text)
    assert "decided" in filtered and "opened a pair" not in filtered.split("Detail")[-1]
