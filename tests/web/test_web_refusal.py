"""A refused merge on the pair page: the registry records that collide are named, each decision
key says what it will do, and a decision that creates a CONFLICT is stored only once confirmed
(the first post answers with a confirmation form). And a held pair's Continue button has the
focus, so Enter opens it."""
from __future__ import annotations

import re
from dataclasses import replace

import pytest
import sqlalchemy as sa

from linkage.store import decisions
from linkage.web.display import ROLE_SOURCES, SourceName
from linkage.web.i18n import in_language
from linkage.web.records import Record, RecordBook
from linkage.web.refusal import explain, household_note

REGISTRY = ("would put registry records police:GA1 and police:GA2 (two registry persons) in one "
            "entity; 同一人 makes it a CONFLICT")
# The sources as the demo config names them (linkage.web.display.source_names).
NAMES = {"police": SourceName(role_word=ROLE_SOURCES["authority"]),
         "ncms": SourceName(scheme="NCMS", display="新农合")}


def _record(record_id: str, id_norm: str | None, status: str = "valid",
            name: str = "张涛") -> Record:
    return Record("police", record_id, {"name": name}, {"name": "姓名"}, {}, id_norm, status,
                  "2002-11-03", "M")


class Book(RecordBook):
    """A record book holding exactly the given records."""

    def __init__(self, *records: Record):
        super().__init__()
        self.records = {r.key: r for r in records}

    def get(self, source: str, record_id: str) -> Record | None:
        return self.records.get((source, record_id))


def test_two_registry_records_with_different_ids_make_a_conflict_to_confirm():
    why = explain(REGISTRY, Book(_record("GA1", "150502200211032598"),
                                 _record("GA2", "150502200211032571", name="张涛浩")), NAMES)
    assert "户籍:GA1（张涛）" in why.summary and "户籍:GA2（张涛浩）" in why.summary
    assert "户籍记录" in why.summary and "police" not in why.summary
    match = why.effect("match")
    assert match.text.startswith("同一人：会产生冲突（CONFLICT），因为户籍记录 户籍:GA1（张涛）")
    assert "身份证号不同" in match.text
    assert why.needs_confirmation("match")
    assert not why.needs_confirmation("non_match") and not why.needs_confirmation("unsure")
    assert why.effect("non_match").text.startswith("不是同一人：保持分开")
    assert why.effect("unsure").text.startswith("不确定：这对记录留在队列中")
    with in_language("en"):
        english = explain(REGISTRY, Book(_record("GA1", "150502200211032598"),
                                         _record("GA2", "150502200211032571")), NAMES)
    assert english.effect("match").text.startswith(
        "Same person: creates a CONFLICT, because the registry records registry:GA1")
    bare = explain(REGISTRY, Book(_record("GA1", "150502200211032598")))  # no config: as stored
    assert "police:GA1（张涛）" in bare.summary and "police:GA2" in bare.summary


@pytest.mark.parametrize("other, conflict, words", [
    (_record("GA2", "150502200211032598"), False, "身份证号相同"),  # one person registered twice
    (_record("GA2", None, "missing"), False, "唯一有效的身份证号"),  # one valid number: no CONFLICT
    (_record("GA2", "150502200211032571", "bad_check"), False, "唯一有效的身份证号"),
    (None, True, "记录未加载"),  # not loaded: the page cannot tell, so it asks
])
def test_whether_same_person_makes_a_conflict_follows_the_registry_ids(other, conflict, words):
    book = Book(_record("GA1", "150502200211032598"), *([other] if other else []))
    why = explain(REGISTRY, book)
    assert why.needs_confirmation("match") is conflict
    assert words in why.effect("match").text


def test_records_kept_apart_by_a_reviewer_or_the_household_rule_are_named():
    book = Book(_record("GA1", "150502200211032598"))
    reviewer = explain("would join police:GA1 and ncms:N7, kept apart by a reviewer's non-match",
                       book, NAMES)
    assert "户籍:GA1（张涛）" in reviewer.summary and "新农合:N7" in reviewer.summary
    assert "新农合:N7" in reviewer.effect("match").text
    assert "审核员已判定二者不是同一人" in reviewer.summary
    assert not reviewer.needs_confirmation("match")
    household = explain("would join ncms:N1 and ncms:N2, kept apart by the household rule (two "
                        "members of one household)", book, NAMES)
    assert "同一户的两名成员" in household.summary and "家庭规则" in household.summary
    assert "新农合:N1 和 新农合:N2" in household.summary
    cut = explain("would join ncms:N1 and ncms:N2, kept apart by the household rule (two memb…",
                  book, NAMES)  # cut short in the store: still the household rule
    assert "家庭规则" in cut.summary and "two memb…" in cut.summary
    legacy = explain("would put two registry persons (or a reviewer's non-match) in one entity",
                     book)
    assert legacy.needs_confirmation("match")  # it names no records: it may make a CONFLICT


def test_household_notes_name_the_households_by_their_sources_words():
    note = "assigned within ncms:15052309↔police:100001, 3 of 4 members agree, +9.50 bits"
    assert household_note(note, NAMES) == ("在 新农合:15052309↔户籍:100001 中对应：4 名成员中 3 名"
                                           "一致，+9.50 比特")
    with in_language("en"):
        assert household_note("a member is assigned to another within ncms:1↔police:2",
                              NAMES) == ("a member is assigned to another person within "
                                         "NCMS:1↔registry:2")
    assert "ncms:15052309↔police:100001" in household_note(note)  # no config: as stored
    assert household_note("two members of one household", NAMES) == "同一户的两名成员"


class Conflicting(RecordBook):
    """The test run's records, with one registry record's ID number changed: the first refused
    merge of the queue then joins two registry persons with different ID numbers."""

    def __init__(self, base: RecordBook, key: tuple[str, str], id_norm: str):
        self.__dict__.update(base.__dict__)
        self.changed = {key: replace(base.get(*key), id_norm=id_norm)}

    def get(self, source: str, record_id: str) -> Record | None:
        return self.changed.get((source, record_id)) or super().get(source, record_id)


@pytest.fixture
def conflict_app(make_app, store_url, web_run):
    from review_helpers import registry_refusal

    from linkage.store import Store
    from linkage.web.queue import ReviewQueue

    store = Store(store_url)
    pair, first, second = registry_refusal(ReviewQueue(store.engine, web_run.config.job))
    store.engine.dispose()
    real = web_run.records.get(*first).id_norm
    other = real[:14] + ("0000" if real[14:] != "0000" else "1111")
    return make_app(store_url, records=Conflicting(web_run.records, second, other)), pair


def _claim(client) -> str:
    response = client.post("/queue/next", data={"csrf_token": client.csrf})
    assert response.status_code == 303, response.text
    return response.headers["location"].removeprefix("/pair/")


def _stored(app) -> list[tuple[str, str]]:
    with app.state.review.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(decisions.c.reviewer,
                                                         decisions.c.decision)).all()]


def test_same_person_on_a_conflict_is_stored_only_once_confirmed(conflict_app):
    from fastapi.testclient import TestClient
    from review_helpers import login

    app, pair = conflict_app
    alice = TestClient(app, follow_redirects=False)
    alice.csrf = login(alice, "alice")
    token = _claim(alice)
    assert app.state.review.queue.find(token).ref == pair.ref  # refused merges come first
    page = alice.get(f"/pair/{token}").text
    assert 'id="refusal"' in page and "会产生冲突（CONFLICT），因为户籍记录 户籍:" in page
    assert not re.search(r"\b(police|ncms|urban):", page)  # the sources' words, as elsewhere
    assert "将要求您确认" in page and 'aria-describedby="effect-match"' in page

    asked = alice.post(f"/pair/{token}/decide", data={"csrf_token": alice.csrf,
                                                      "decision": "match", "note": "同名同生日"})
    assert asked.status_code == 200 and 'id="confirm"' in asked.text
    assert 'name="confirm" value="yes"' in asked.text and "autofocus" in asked.text
    assert 'value="同名同生日"' in asked.text  # the note survives the confirmation
    assert "户籍记录 户籍:" in asked.text and "police:" not in asked.text
    assert not _stored(app)  # nothing is stored until confirmed
    assert f'name="back" value="/pair/{token}"' in asked.text  # the switch returns to the pair

    bob = TestClient(app, follow_redirects=False)
    bob.csrf = login(bob, "bob")
    stranger = bob.post(f"/pair/{token}/decide", data={"csrf_token": bob.csrf,
                                                       "decision": "match"})
    assert stranger.status_code == 409 and not _stored(app)  # not his pair: no form either

    done = alice.post(f"/pair/{token}/decide", data={"csrf_token": alice.csrf, "decision": "match",
                                                     "note": "同名同生日", "confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"].startswith("/pair/")
    assert _stored(app) == [("alice", "match")]


def test_keeping_a_conflict_apart_needs_no_confirmation(conflict_app):
    from fastapi.testclient import TestClient
    from review_helpers import login

    app, _pair = conflict_app
    alice = TestClient(app, follow_redirects=False)
    alice.csrf = login(alice, "alice")
    token = _claim(alice)
    kept = alice.post(f"/pair/{token}/decide", data={"csrf_token": alice.csrf,
                                                     "decision": "non_match"})
    assert kept.status_code == 303 and _stored(app) == [("alice", "non_match")]


def test_a_held_pair_is_continued_from_a_focused_button(client_for):
    alice = client_for("alice")
    token = _claim(alice)
    page = alice.get("/queue").text
    button = re.search(r'<form method="post" action="/queue/next">.*?</form>', page, re.S).group(0)
    assert 'id="continue"' in button and "autofocus" in button and "<kbd>Enter</kbd>" in button
    assert 'id="start"' not in page
    numbers = {k: int(v) for k, v in re.findall(
        r'<div id="count-(\w+)"[^>]*><b>(\d+)</b>', page)}
    assert numbers["yours"] == 1
    assert sum(v for k, v in numbers.items() if k != "pairs") == numbers["pairs"]
    again = alice.post("/queue/next", data={"csrf_token": alice.csrf})
    assert again.headers["location"] == f"/pair/{token}"  # Enter opens the same pair
