"""Attacks on the review app, each performed and shown to fail (on SQLite and PostgreSQL where
the store is involved): deciding a pair one was not given, a cookie that outlives its logout,
guessing passwords fast, rebuilding a masked ID number from its own page, and cookies and client
addresses behind a TLS proxy."""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from base64 import b64decode
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from review_helpers import PASSWORD, USERS, csrf_of, live_server, login, write_config

from linkage.cli import main
from linkage.store import accounts, audit_log, decisions, review_leases, review_sessions
from linkage.web.login_guard import MAX_LOCK, LoginGuard
from linkage.web.queue import pair_ref


def _rows(app, table, *where):
    with app.state.review.engine.connect() as conn:
        return conn.execute(sa.select(table).where(*where)).mappings().all()


def _claim(client) -> str:
    location = client.post("/queue/next", data={"csrf_token": client.csrf}).headers["location"]
    assert location.startswith("/pair/"), location
    return location.removeprefix("/pair/")


def _decide(client, token: str, decision: str = "match"):
    return client.post(f"/pair/{token}/decide",
                       data={"decision": decision, "csrf_token": client.csrf,
                             "confirm": "yes"})  # a 同一人 that makes a CONFLICT, confirmed


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------ deciding a pair

def test_a_reviewer_cannot_decide_a_pair_not_handed_to_them(app, client_for):
    alice, bob, sam = client_for("alice"), client_for("bob"), client_for("sam")
    queue = app.state.review.queue
    held = _claim(alice)
    other = next(p for p in queue.waiting("bob") if queue.url_token(p.ref) != held)

    # The old attack: the token was a plain hash of the record ids every pair page shows.
    left, right = other.ref.left, other.ref.right
    guessed = hashlib.sha256("\x1f".join((*left, *right)).encode()).hexdigest()[:32]
    assert guessed == pair_ref(left, right).token != queue.url_token(other.ref)
    assert _decide(bob, guessed).status_code == 404

    # Even with a pair's real address (seen over a shoulder, in a log): no lease, no decision.
    free = _decide(bob, queue.url_token(other.ref), "non_match")
    assert free.status_code == 409 and "不归您审核" in free.text
    taken = _decide(bob, held, "non_match")  # alice holds it
    assert taken.status_code == 409 and "另一位审核员正在审核" in taken.text
    with app.state.review.engine.begin() as conn:  # alice's lease runs out; nobody takes it
        conn.execute(review_leases.update().values(
            expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    late = _decide(alice, held)
    assert late.status_code == 409 and "不归您审核" in late.text
    assert not _rows(app, decisions)
    assert not _rows(app, audit_log, audit_log.c.action == "decide")

    # A supervisor may settle any pair nobody holds; the audit row says it was without a lease.
    assert _decide(sam, queue.url_token(other.ref), "non_match").status_code == 303
    [row] = _rows(app, decisions)
    assert (row["reviewer"], row["decision"]) == ("sam", "non_match")
    [entry] = _rows(app, audit_log, audit_log.c.action == "decide")
    assert entry["actor"] == "sam" and json.loads(entry["detail"])["without_lease"] is True

    # The lease holder's own flow is unchanged: claim, decide, the next pair opens.
    fresh = _claim(bob)
    response = _decide(bob, fresh)
    assert response.status_code == 303 and response.headers["location"].startswith("/pair/")
    [mine] = _rows(app, audit_log, audit_log.c.action == "decide", audit_log.c.actor == "bob")
    assert "without_lease" not in json.loads(mine["detail"])


def test_pair_addresses_are_keyed_with_the_server_secret(make_app, store_url, web_run):
    from linkage.web import create_app

    one = make_app(store_url)
    two = create_app(store_url, web_run.config, "another-secret", records=web_run.records)
    try:
        ref = one.state.review.queue.candidates()[0].ref
        a, b = one.state.review.queue.url_token(ref), two.state.review.queue.url_token(ref)
        assert re.fullmatch(r"[0-9a-f]{32}", a) and a != b != ref.token
        assert one.state.review.queue.find(a).ref == ref and one.state.review.queue.find(b) is None
    finally:
        two.state.review.store.engine.dispose()


# ------------------------------------------------------------------------------ sessions

def _cookie_session(client) -> dict:
    value = client.cookies["review_session"]
    return json.loads(b64decode(value.split(".")[0]))


def test_logging_out_ends_the_session_and_an_old_cookie_is_refused(app, make_app, store_url,
                                                                  client_for):
    alice = client_for("alice")
    stolen = dict(alice.cookies)  # a copy of the cookie, as an attacker might have kept
    sid = _cookie_session(alice)["sid"]
    [row] = _rows(app, review_sessions)
    assert row["session_sha256"] == hashlib.sha256(sid.encode()).hexdigest()  # only a digest
    assert not any(sid in str(v) for v in row.values())
    assert alice.post("/logout", data={"csrf_token": alice.csrf}).status_code == 303

    replay = TestClient(app, follow_redirects=False, cookies=stolen)
    assert replay.get("/queue").headers.get("location") == "/login"
    assert replay.get("/api/me").status_code == 401
    # Another server process on the same store (same secret) refuses it too: the store says so.
    other = TestClient(make_app(store_url), follow_redirects=False, cookies=stolen)
    assert other.get("/api/me").status_code == 401
    assert _rows(app, review_sessions)[0]["ended_at"] is not None
    replay.close()
    other.close()


def test_disabling_and_new_passwords_end_every_session_of_the_user(app, client_for, web_world,
                                                                   store_url, tmp_path,
                                                                   monkeypatch, capsys):
    config = str(write_config(web_world, tmp_path, store_url))
    first, second = client_for("alice"), client_for("alice")
    assert first.get("/api/me").status_code == second.get("/api/me").status_code == 200

    assert main(["users", "disable", config, "--username", "alice"]) == 0
    assert first.get("/api/me").status_code == second.get("/api/me").status_code == 401
    assert main(["users", "enable", config, "--username", "alice"]) == 0
    assert first.get("/api/me").status_code == 401  # enabling does not revive old sessions
    third = client_for("alice")

    monkeypatch.setenv("LINKAGE_PASSWORD", "a new grassland teapot 7")
    assert main(["users", "passwd", config, "--username", "alice"]) == 0
    assert third.get("/api/me").status_code == 401
    fourth = client_for()
    token = csrf_of(fourth.get("/login").text)
    assert fourth.post("/login", data={"username": "alice", "password": PASSWORD,
                                       "csrf_token": token}).status_code == 401
    login(fourth, "alice", "a new grassland teapot 7")

    assert main(["users", "role", config, "--username", "alice", "--role", "supervisor"]) == 0
    assert fourth.get("/api/me").json() == {"username": "alice", "role": "supervisor"}
    assert main(["users", "disable", config, "--username", "nobody"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err


def test_passwords_never_come_from_the_command_line(web_world, tmp_path, backend_url,
                                                    monkeypatch, capsys):
    config = str(write_config(web_world, tmp_path, backend_url))
    with pytest.raises(SystemExit):
        main(["users", "add", config, "--username", "wang", "--role", "reviewer",
              "--password", "a fine long passphrase 9"])
    monkeypatch.delenv("LINKAGE_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["a fine long passphrase 9", "a fine long passphrase 9"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["users", "add", config, "--username", "wang", "--role", "reviewer"]) == 0
    assert "wang (reviewer) created" in capsys.readouterr().out


@pytest.mark.parametrize("username, password, why", [
    ("alice", "password123", "very common"),
    ("alice", "aaaaaaaaaaaaaaaa", "Repeats"),       # long, and still refused
    ("wangfang", "wangfang1990", "strength"),       # the user's own name
    ("alice", "linkage2024", "strength"),           # the application's name
])
def test_weak_passwords_are_refused_by_a_strength_check_that_says_why(username, password, why):
    with pytest.raises(accounts.AccountError, match=why) as info:
        accounts.check_password(username, password)
    assert "too easy to guess" in str(info.value)
    accounts.check_password(username, "correct horse battery 1")  # a passphrase passes


def test_a_store_busy_with_a_run_does_not_freeze_static_files(make_app, web_run, template_db,
                                                               tmp_path):
    """A run holding SQLite's write lock may slow pages (they read the store in the thread
    pool), but the event loop never waits on the store: static files and missing ones answer."""
    import shutil

    db = tmp_path / "busy.sqlite"
    shutil.copy(template_db, db)
    app = make_app(f"sqlite:///{db}")
    with live_server(app) as base, httpx.Client(base_url=base, follow_redirects=False,
                                                timeout=30) as client:
        client.csrf = login(client, "alice")
        holder = sa.create_engine(f"sqlite:///{db}")
        conn = holder.connect()
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        try:
            page = threading.Thread(target=client.get, args=("/queue",), daemon=True)
            page.start()  # waits on the lock in a worker thread
            time.sleep(0.2)
            for path, status in (("/static/app.css", 200), ("/static/missing.css", 404)):
                started = time.monotonic()
                assert client.get(path).status_code == status
                assert time.monotonic() - started < 1.0, path
        finally:
            conn.exec_driver_sql("ROLLBACK")
            conn.close()
            holder.dispose()
        page.join(30)


# ------------------------------------------------------------------------------ throttling

SPRAYED = [name for name in USERS if name != "alice"]  # known names hash fast in tests


def _spray(client, n: int) -> list[int]:
    """n wrong passwords spread over the other accounts (none gets five)."""
    return [_try(client, SPRAYED[i % len(SPRAYED)], "Password1").status_code for i in range(n)]


def _try(client, username, password):
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token})


def test_forty_wrong_passwords_lock_the_account_until_the_back_off_ends(make_app, store_url):
    clock = Clock()
    app = make_app(store_url, clock=clock)
    client = TestClient(app, follow_redirects=False)
    codes = [_try(client, "alice", f"guess number {i}").status_code for i in range(40)]
    assert codes == [401] * 5 + [429] * 35  # refused before any hash once locked
    right = _try(client, "alice", PASSWORD)
    assert right.status_code == 429 and "之后" in right.text and "UTC" in right.text
    assert int(right.headers["retry-after"]) == 2
    failed = _rows(app, audit_log, audit_log.c.action == "login_failed")
    assert len(failed) == 5 and json.loads(failed[-1]["detail"])["locked_seconds"] == 2

    clock.now += 2.5  # the back-off has passed
    assert _try(client, "alice", "one more guess").status_code == 401  # and doubles: 4 s
    clock.now += 3
    assert _try(client, "alice", PASSWORD).status_code == 429
    clock.now += 1.5
    assert _try(client, "alice", PASSWORD).status_code == 303
    client.close()


def test_the_back_off_doubles_up_to_a_quarter_of_an_hour_and_success_resets_it():
    clock = Clock()
    guard = LoginGuard(clock)
    locks = [guard.failed("alice", "10.0.0.9") for _ in range(16)]
    assert locks[:4] == [0, 0, 0, 0] and locks[4:8] == [2, 4, 8, 16] and locks[-1] == MAX_LOCK
    assert guard.retry_at("alice", "10.0.0.8") == clock.now + MAX_LOCK
    assert guard.retry_at("bob", "10.0.0.8") is None  # another account, another address
    guard.succeeded("alice")
    assert guard.retry_at("alice", "10.0.0.8") is None


def test_a_client_address_guessing_many_accounts_is_locked_out_of_all(make_app, store_url):
    app = make_app(store_url, clock=Clock())
    sprayer = TestClient(app, follow_redirects=False, client=("198.51.100.7", 5000))
    assert _spray(sprayer, 24) == [401] * 20 + [429] * 4
    assert _try(sprayer, "alice", PASSWORD).status_code == 429
    office = TestClient(app, follow_redirects=False, client=("192.0.2.10", 5000))
    assert _try(office, "alice", PASSWORD).status_code == 303  # elsewhere, alice still signs in
    sprayer.close()
    office.close()


def test_parallel_sign_ins_hash_at_most_two_passwords_at_once(make_app, store_url, monkeypatch):
    running, peak, lock = [0], [0], threading.Lock()
    real = accounts.HASHER

    class SlowHasher:
        """The real hasher, slow as argon2 is under load, counting hashes in flight."""

        def verify(self, digest, password):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                time.sleep(0.3)
                return real.verify(digest, password)
            finally:
                with lock:
                    running[0] -= 1

    accounts._dummy_hash()  # made once per process, before the race
    monkeypatch.setattr(accounts, "HASHER", SlowHasher())
    app = make_app(store_url)
    answers: list[tuple[int, float, str | None]] = []

    def attempt(i: int, base: str, start: threading.Barrier) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            token = csrf_of(client.get("/login").text)
            start.wait()
            began = time.monotonic()
            response = client.post("/login", data={"username": f"nobody{i}", "password": "x",
                                                   "csrf_token": token})
            answers.append((response.status_code, time.monotonic() - began,
                            response.headers.get("retry-after")))

    with live_server(app) as base:
        start = threading.Barrier(16)
        threads = [threading.Thread(target=attempt, args=(i, base, start)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert len(answers) == 16 and peak[0] <= 2
    turned_away = [a for a in answers if a[0] == 503]
    assert turned_away and all(a[2] == "1" and a[1] < 2.0 for a in turned_away)
    assert {a[0] for a in answers} <= {401, 503}


# ------------------------------------------------------------------------------ masked IDs

def _completions(shown: str, birth: str, gender: str, regions: frozenset[str]) -> int:
    """How many 18-character ID numbers agree with everything a pair page shows of one record:
    the visible characters of the masked number, its birth date and gender, the table of real
    region codes and the check-character rule (GB 11643)."""
    from stdnum.cn import ric

    def fits(part: str, value: str) -> bool:
        return all(s in ("*", c) for s, c in zip(part, value))

    date = birth.replace("-", "")
    if len(shown) != 18 or len(date) != 8 or not fits(shown[6:14], date):
        return 0
    count = 0
    for region in (r for r in regions if fits(shown[:6], r)):
        for n in range(1000):
            seq = f"{n:03d}"
            if gender and (int(seq[2]) % 2 == 1) != (gender in ("M", "男")):
                continue
            if fits(shown[14:17], seq) and (shown[17] == "*" or shown[17] == ric.calc_check_digit(
                    region + date + seq + "?")):  # it reads the first 17 characters
                count += 1
    return count


class _CompareTable(HTMLParser):
    """The rows of a pair page's comparison table: (field label, left text, right text)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in, self._cell = False, None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and ("class", "compare") in attrs:
            self._in = True
        elif self._in and tag == "tr":
            self.rows.append([])
        elif self._in and tag in ("th", "td") and self.rows:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._in = False
        elif self._in and tag in ("th", "td") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_a_masked_id_cannot_be_rebuilt_from_its_own_pair_page(app, client_for):
    from stdnum.cn import ric

    from matchers.resident_id import region_codes

    regions = region_codes()
    alice = client_for("alice")
    records = app.state.review.records
    attacked = rebuilt = 0
    for _ in range(10):
        token = _claim(alice)
        table = _CompareTable()
        table.feed(alice.get(f"/pair/{token}").text)
        rows = {r[0].split()[0]: r[1:] for r in table.rows if len(r) == 3}
        pair = app.state.review.queue.find(token)
        for side, key in enumerate((pair.ref.left, pair.ref.right)):
            full = records.get(*key).id_norm or ""
            shown = rows.get("身份证号", ["", ""])[side][:18]
            birth = re.match(r"\d{4}-\d{2}-\d{2}", rows.get("出生日期", ["", ""])[side] or "")
            gender = (rows.get("性别", ["", ""])[side] or " ")[0]
            if len(full) != 18 or not birth or full[6:14] != birth.group(0).replace("-", ""):
                continue  # the attack needs the page's birth date to be the number's
            attacked += 1
            assert full not in shown and shown[:2] == full[:2] and set(shown[2:]) == {"*"}
            assert _completions(shown, birth.group(0), gender, regions) >= 10_000
            # The mask this replaces (prefecture and last four shown) left one or two answers
            # for a well-formed number (a typo'd one may have none: the attack just fails then).
            old = _completions(full[:4] + "*" * 10 + full[-4:], birth.group(0), gender, regions)
            if ric.is_valid(full) and full[:6] in regions and (
                    int(full[16]) % 2 == 1) == (gender in ("M", "男")):
                assert 1 <= old <= 3
                rebuilt += 1
        _decide(alice, token, "unsure")
    assert attacked >= 5 and rebuilt >= 3


def test_where_two_masked_numbers_differ_is_still_shown():
    from linkage.web.display import mask_id_pair

    left, right = mask_id_pair("150521196503120016", "150521196503120061")
    assert "".join(c.char for c in left) == "15" + "*" * 16
    assert [i for i, c in enumerate(left) if c.differs] == [16, 17]
    assert all(c.masked for c in right[2:])


# ------------------------------------------------------------------------------- TLS proxy

def test_behind_a_tls_proxy_cookies_are_secure_and_only_the_proxy_is_believed(make_app,
                                                                              store_url):
    app = make_app(store_url, secure_cookies=True, forwarded_allow_ips="10.0.0.1",
                   clock=Clock())
    proxy = TestClient(app, base_url="https://review.example", follow_redirects=False,
                       client=("10.0.0.1", 40000),
                       headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
    page = proxy.get("/login")
    assert page.headers["strict-transport-security"].startswith("max-age=")
    token = csrf_of(page.text)
    signed_in = proxy.post("/login", data={"username": "alice", "password": PASSWORD,
                                           "csrf_token": token})
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"].lower()
    assert "; secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert proxy.get("/api/me").status_code == 200
    [entry] = _rows(app, audit_log, audit_log.c.action == "login")
    assert json.loads(entry["detail"])["address"] == "203.0.113.7"  # the client, not the proxy

    # Anyone else's X-Forwarded-For is ignored: it cannot dodge the per-address lock.
    direct = TestClient(app, base_url="https://review.example", follow_redirects=False,
                        client=("198.51.100.9", 40000))
    codes = []
    for i in range(21):
        direct.headers["X-Forwarded-For"] = f"192.0.2.{i}"
        name, password = (SPRAYED[i % len(SPRAYED)], "Password1") if i < 20 else ("alice", PASSWORD)
        codes.append(_try(direct, name, password).status_code)
    assert codes == [401] * 20 + [429]
    addresses = {json.loads(r["detail"])["address"]
                 for r in _rows(app, audit_log, audit_log.c.action == "login_failed")}
    assert addresses == {"198.51.100.9"}
    proxy.close()
    direct.close()


def test_served_directly_cookies_are_not_secure_and_forwarded_headers_are_ignored(app):
    client = TestClient(app, follow_redirects=False,
                        headers={"X-Forwarded-For": "203.0.113.7"})
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 303 and "secure" not in response.headers["set-cookie"].lower()
    assert "strict-transport-security" not in response.headers
    [entry] = _rows(app, audit_log, audit_log.c.action == "login")
    assert json.loads(entry["detail"])["address"] == "testclient"
    client.close()
