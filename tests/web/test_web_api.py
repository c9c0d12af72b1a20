"""Every route of the review app through its HTTP interface, with roles, CSRF and privacy rules,
on SQLite and on the real PostgreSQL server."""
import re

import pytest
import sqlalchemy as sa
from review_helpers import PASSWORD, csrf_of

from linkage.store import audit_log, decisions, review_leases

TOKEN = "0" * 32
PAGES = ["/", "/queue", f"/pair/{TOKEN}", "/supervisor/log", "/supervisor/agreement",
         "/supervisor/audit", "/admin/users"]
JSON = ["/api/me", "/api/queue", "/api/decisions", "/api/agreement"]
POSTS = ["/queue/next", f"/pair/{TOKEN}/decide", f"/pair/{TOKEN}/reveal", f"/pair/{TOKEN}/release",
         "/supervisor/decisions/1/reverse", "/supervisor/decisions/1/second-review"]
SUPERVISOR_GETS = ["/supervisor/log", "/supervisor/agreement", "/supervisor/audit"]
LONG_DIGITS = re.compile(r"\d{15,}")


def _engine(app):
    return app.state.review.engine


def _rows(app, table, *where):
    with _engine(app).connect() as conn:
        return conn.execute(sa.select(table).where(*where)).mappings().all()


def _claim(client) -> str:
    response = client.post("/queue/next", data={"csrf_token": client.csrf})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/pair/"), location
    return location.removeprefix("/pair/")


def _decide(client, token, decision, note=""):
    return client.post(f"/pair/{token}/decide",
                       data={"decision": decision, "note": note, "csrf_token": client.csrf,
                             "confirm": "yes"})  # a 同一人 that makes a CONFLICT, confirmed


def _full_ids(app, token):
    """Both records' ID numbers (as typed and normalised) of a pair, to prove none leaks."""
    state = app.state.review
    pair = state.queue.find(token)
    out = set()
    for key in (pair.ref.left, pair.ref.right):
        record = state.records.get(*key)
        out |= {v for v in (record.fields.get("id_number"), record.id_norm) if v and len(v) >= 15}
    return out


def test_without_a_session_pages_redirect_to_login_and_json_answers_401(client_for):
    anonymous = client_for()
    for path in PAGES:
        response = anonymous.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/login", path
    for path in JSON:
        assert anonymous.get(path).status_code == 401, path
    token = csrf_of(anonymous.get("/login").text)  # a session, but nobody signed in
    for path in POSTS:
        response = anonymous.post(path, data={"csrf_token": token, "decision": "match"})
        assert response.status_code == 303 and response.headers["location"] == "/login", path


def test_every_post_without_the_right_csrf_token_is_refused(app, client_for):
    fresh = client_for()
    fresh.get("/login")
    assert fresh.post("/login", data={"username": "sam", "password": PASSWORD}).status_code == 403
    sam = client_for("sam")
    for path in [*POSTS, "/logout"]:
        assert sam.post(path, data={"decision": "match"}).status_code == 403, path
        assert sam.post(path, data={"decision": "match", "csrf_token": "forged"}).status_code == 403
    assert sam.post("/queue/next", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert sam.post("/queue/next", headers={"X-CSRF-Token": sam.csrf}).status_code == 303
    assert not _rows(app, decisions)
    assert sam.get("/queue").status_code == 200  # still signed in: the refused logout did nothing


def test_a_reviewer_is_refused_on_supervisor_and_admin_routes(app, client_for):
    alice, sam, ada = client_for("alice"), client_for("sam"), client_for("ada")
    token = _claim(alice)
    for path in [*SUPERVISOR_GETS, "/admin/users"]:
        assert alice.get(path).status_code == 403, path
        assert sam.get(path).status_code == (403 if path.startswith("/admin") else 200), path
        assert ada.get(path).status_code == 200, path
    assert alice.get("/api/decisions").status_code == 403
    assert alice.get("/api/decisions").json()["detail"]
    assert alice.get("/api/agreement").status_code == 403
    for path in [f"/pair/{token}/reveal", "/supervisor/decisions/1/reverse",
                 "/supervisor/decisions/1/second-review"]:
        assert alice.post(path, data={"csrf_token": alice.csrf}).status_code == 403, path
    assert not _rows(app, audit_log, audit_log.c.action == "reveal_id")
    assert alice.get("/api/me").json() == {"username": "alice", "role": "reviewer"}


def test_sign_in_and_out_with_a_hardened_session_cookie(app, client_for):
    client = client_for()
    token = csrf_of(client.get("/login").text)
    wrong = client.post("/login", data={"username": "alice", "password": "nope-nope",
                                        "csrf_token": token})
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
    unknown = client.post("/login", data={"username": "150521196503120016", "password": "x" * 9,
                                          "csrf_token": token})
    assert unknown.status_code == 401
    ok = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                     "csrf_token": token})
    assert ok.status_code == 303 and ok.headers["location"] == "/queue"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    new_token = csrf_of(client.get("/queue").text)
    assert new_token != token  # a fresh session at sign-in
    out = client.post("/logout", data={"csrf_token": new_token})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/queue").status_code == 303
    actions = [(r["actor"], r["action"]) for r in _rows(app, audit_log)]
    assert actions == [("alice", "login_failed"), ("?", "login_failed"), ("alice", "login"),
                       ("alice", "logout")]


def test_the_queue_page_and_its_json(app, web_run, client_for):
    alice = client_for("alice")
    page = alice.get("/queue")
    assert page.status_code == 200 and "开始审核" in page.text
    stats = alice.get("/api/queue").json()
    review_pairs = len(app.state.review.queue.candidates())
    assert review_pairs > 10
    assert stats == {"run_id": web_run.run_id, "pairs": review_pairs,
                     "waiting_for_you": review_pairs, "in_review": 0, "decided": 0,
                     "your_decisions": 0}


def test_a_decision_is_stored_audited_and_the_next_pair_opens(app, client_for):
    alice = client_for("alice")
    first = _claim(alice)
    page = alice.get(f"/pair/{first}")
    assert page.status_code == 200
    pair = app.state.review.queue.find(first)
    for source, record_id in (pair.ref.left, pair.ref.right):
        assert record_id in page.text
    response = _decide(alice, first, "match", "same person, village renamed")
    assert response.status_code == 303
    second = response.headers["location"].removeprefix("/pair/")
    assert re.fullmatch(r"[0-9a-f]{32}", second) and second != first
    [row] = _rows(app, decisions)
    assert (row["reviewer"], row["decision"], row["note"], row["active"]) == (
        "alice", "match", "same person, village renamed", True)
    assert row["score"] == pytest.approx(pair.probability)
    assert ((row["source_l"], row["record_l"]), (row["source_r"], row["record_r"])) == (
        pair.ref.left, pair.ref.right)
    [entry] = _rows(app, audit_log, audit_log.c.action == "decide")
    assert (entry["actor"], entry["pair_token"], entry["decision_id"]) == (
        "alice", pair.ref.token, row["decision_id"])  # rows keep the store token, not the URL's
    leases = {r["pair_token"]: r["reviewer"] for r in _rows(app, review_leases)}
    assert leases == {app.state.review.queue.find(second).ref.token: "alice"}
    assert alice.get("/api/queue").json()["your_decisions"] == 1
    assert _decide(alice, second, "maybe").status_code == 422


def test_the_pair_page_shows_both_records_reasons_households_and_candidates(app, client_for):
    alice = client_for("alice")
    queue = app.state.review.queue
    records = app.state.review.records
    # Take pairs until one has a household on both sides (police and NCMS both record one).
    for _ in range(len(queue.candidates())):
        token = _claim(alice)
        pair = queue.find(token)
        if all(records.get(*k).fields.get("household_id") for k in (pair.ref.left, pair.ref.right)):
            break
        _decide(alice, token, "unsure")
    html = alice.get(f"/pair/{token}").text
    left, right = records.get(*pair.ref.left), records.get(*pair.ref.right)
    assert left.name in html and right.name in html
    for column in [*left.columns.values(), *right.columns.values()]:
        assert column in html  # every source field is labelled with the source's column
    assert html.count("<rect ") == len(pair.explanation)  # one bar per weight
    assert "的家庭成员" in html and "的其他候选" in html
    for member in records.household(*pair.ref.left):
        assert member.name in html
    text = re.sub(r"<[^>]+>", "", html)
    assert 'class="idnum"' in html and re.search(r"\d{2}\*{16}", text)  # the province only
    for full in _full_ids(app, token):
        assert full not in html


def test_a_reviewer_sees_and_decides_only_the_pair_they_hold(app, client_for):
    alice, bob, sam = client_for("alice"), client_for("bob"), client_for("sam")
    token = _claim(alice)
    assert _claim(alice) == token  # asking again keeps the same pair
    gone = bob.get(f"/pair/{token}")
    assert gone.status_code == 303 and gone.headers["location"] == "/queue?notice=gone"
    assert _claim(bob) != token
    conflict = _decide(bob, token, "non_match")
    assert conflict.status_code == 409 and "未保存" in conflict.text
    assert sam.get(f"/pair/{token}").status_code == 200  # supervisors may look at any pair
    assert sam.get(f"/pair/{'f' * 32}").status_code == 404
    assert alice.get("/pair/not-a-token").status_code == 422
    assert not _rows(app, decisions)
    views = _rows(app, audit_log, audit_log.c.action == "view_pair")
    stored = app.state.review.queue.find(token).ref.token
    assert {(v["actor"], v["pair_token"]) for v in views} >= {("sam", stored)}


def test_released_pairs_go_back_to_the_queue(app, client_for):
    alice, bob = client_for("alice"), client_for("bob")
    token = _claim(alice)
    response = alice.post(f"/pair/{token}/release", data={"csrf_token": alice.csrf})
    assert response.headers["location"] == "/queue?notice=released"
    assert _claim(bob) == token


def test_revealing_full_id_numbers_is_for_supervisors_and_audited(app, client_for):
    alice, sam = client_for("alice"), client_for("sam")
    token = _claim(alice)
    masked = sam.get(f"/pair/{token}").text
    full = _full_ids(app, token)
    assert full and not any(f in masked for f in full)
    assert "显示完整身份证号" in masked
    assert "显示完整身份证号" not in alice.get(f"/pair/{token}").text
    assert alice.post(f"/pair/{token}/reveal", data={"csrf_token": alice.csrf}).status_code == 403
    shown = sam.post(f"/pair/{token}/reveal", data={"csrf_token": sam.csrf})
    assert shown.status_code == 200
    assert all(f in shown.text for f in full)
    [entry] = _rows(app, audit_log, audit_log.c.action == "reveal_id")
    stored = app.state.review.queue.find(token).ref.token
    assert (entry["actor"], entry["pair_token"]) == ("sam", stored)
    assert not any(f in (entry["detail"] or "") for f in full)


def test_supervisors_filter_the_log_reverse_and_measure_agreement(app, client_for):
    alice, bob, carol, sam = (client_for(u) for u in ("alice", "bob", "carol", "sam"))
    a1 = _claim(alice)
    a2 = _decide(alice, a1, "match").headers["location"].removeprefix("/pair/")
    _decide(alice, a2, "non_match")
    b1 = _claim(bob)
    _decide(bob, b1, "match")
    log = sam.get("/supervisor/log", params={"reviewer": "alice"}).text
    assert log.count('<span class="dec dec-') == 2 and "bob" not in log.split('id="log"')[1]
    api = sam.get("/api/decisions", params={"reviewer": "bob"}).json()
    assert [(d["reviewer"], d["pair"], d["decision"]) for d in api] == [("bob", b1, "match")]

    # Reverse alice's non-match: inactive, audited, back in the queue for others but not alice.
    [a2_row] = [d for d in sam.get("/api/decisions").json() if d["pair"] == a2]
    response = sam.post(f"/supervisor/decisions/{a2_row['decision_id']}/reverse",
                        data={"csrf_token": sam.csrf, "note": "wrong village", "reviewer": "alice"})
    assert response.headers["location"] == "/supervisor/log?notice=reversed&reviewer=alice"
    [again] = [d for d in sam.get("/api/decisions").json() if d["pair"] == a2]
    assert again["reversed"] and not again["active"]
    assert _rows(app, audit_log, audit_log.c.action == "reverse_decision")[0]["actor"] == "sam"
    queue = app.state.review.queue
    assert a2 in [queue.url_token(p.ref) for p in queue.waiting("carol")]
    assert a2 not in [queue.url_token(p.ref) for p in queue.waiting("alice")]
    twice = sam.post(f"/supervisor/decisions/{a2_row['decision_id']}/reverse",
                     data={"csrf_token": sam.csrf})
    assert twice.headers["location"] == "/supervisor/log?notice=refused"

    # Send bob's match back: carol gets it first, disagrees; the agreement table shows it.
    [b1_row] = sam.get("/api/decisions", params={"reviewer": "bob"}).json()
    sam.post(f"/supervisor/decisions/{b1_row['decision_id']}/second-review",
             data={"csrf_token": sam.csrf})
    assert _claim(carol) == b1
    assert "复核" in carol.get(f"/pair/{b1}").text
    _decide(carol, b1, "non_match")
    # alice's match is sent back too; dan agrees with her.
    [a1_row] = [d for d in sam.get("/api/decisions").json() if d["pair"] == a1]
    sam.post(f"/supervisor/decisions/{a1_row['decision_id']}/second-review",
             data={"csrf_token": sam.csrf})
    dan = client_for("dan")
    assert _claim(dan) == a1
    _decide(dan, a1, "match")
    agreement = sam.get("/api/agreement").json()
    rates = {r["reviewer"]: (r["pairs"], r["agreed"]) for r in agreement["reviewers"]}
    assert rates == {"alice": (1, 1), "bob": (1, 0), "carol": (1, 0), "dan": (1, 1)}
    assert agreement["disagreements"] == [{"pair": b1, "decisions": {"bob": "match",
                                                                      "carol": "non_match"}}]
    page = sam.get("/supervisor/agreement").text
    assert "100%" in page and "0%" in page and b1 in page
    audit_page = sam.get("/supervisor/audit", params={"action": "request_second_review"}).text
    assert audit_page.count("request_second_review") >= 2
    assert sam.get("/supervisor/audit", params={"action": "bogus"}).status_code == 422


def test_no_url_or_page_link_carries_an_id_number(app, client_for):
    alice, sam = client_for("alice"), client_for("sam")
    token = _claim(alice)
    _decide(alice, token, "match")
    pages = [sam.get(p).text for p in ["/queue", *SUPERVISOR_GETS]]
    pages.append(sam.get(f"/pair/{token}").text)
    links = [link for html in pages for link in re.findall(r'(?:href|action)="([^"]*)"', html)]
    assert links and not any(LONG_DIGITS.search(link) for link in links)
    for row in _rows(app, audit_log):  # nor does the audit trail
        assert not LONG_DIGITS.search(f"{row['detail']} {row['record_l']} {row['record_r']}")


def test_pages_carry_strict_security_headers(client_for):
    response = client_for("alice").get("/queue")
    headers = response.headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"


def test_static_assets_are_local(client_for):
    anonymous = client_for()
    css = anonymous.get("/static/app.css")
    assert css.status_code == 200 and "Noto Sans CJK SC" in css.text
    assert anonymous.get("/static/review.js").status_code == 200
    assert "http" not in anonymous.get("/login").text.replace('lang="zh-CN"', "")


def test_without_a_config_the_app_shows_pair_keys_only(store_url):
    from fastapi.testclient import TestClient
    from review_helpers import login

    from linkage.web import create_app

    app = create_app(store_url, secret_key="x")
    try:
        with TestClient(app, follow_redirects=False) as client:
            client.csrf = login(client, "alice")
            token = _claim(client)
            page = client.get(f"/pair/{token}").text
            assert "源记录未加载" in page
            pair = app.state.review.queue.find(token)
            assert pair.ref.left[1] in page
    finally:
        app.state.review.store.engine.dispose()


def test_the_pair_page_says_what_the_household_step_did(app, client_for):
    """The household note of a pair's explanation is shown above the decision, as text."""
    import json

    from linkage.store import scored_pairs

    note = "assigned within ncms:15052309<b>↔police:100001, 3 of 4 members agree, +9.50 bits"
    said = '"household_note": ' + json.dumps(note, ensure_ascii=False) + ', "prior":'
    with app.state.review.engine.begin() as conn:  # before the queue first reads the run
        conn.execute(scored_pairs.update().values(explanation=sa.func.replace(
            scored_pairs.c.explanation, '"prior":', said)))
    alice = client_for("alice")
    page = alice.get(f"/pair/{_claim(alice)}").text
    assert "4 名成员中 3 名一致，+9.50 比特" in page
    assert "15052309&lt;b&gt;" in page and "15052309<b>" not in page
