"""Security rules over every route, found from app.routes (a new route without protection fails
here by itself): sessions and roles for the review app, CSRF on every form, bearer tokens for
/api/v1; search fields and config values are bound, never spliced into SQL; no ID number reaches
a log line or a URL; passwords and API tokens are stored hashed."""
from __future__ import annotations

import inspect
import logging
import re
import threading
import time
import warnings

import httpx
import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from review_helpers import PASSWORD, csrf_of, free_port, login, write_config
from starlette.routing import Mount, Route

from linkage.store import audit_log, decisions, runs, users

ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{14,17}[0-9Xx](?![0-9])")
TYPED_ID = "150521196503120016"  # what a clerk might paste into a search box or a URL
# Routes anyone may open; each must carry no personal data. The language switch is open like the
# sign-in form it serves (it sets one cookie, and is CSRF-checked like every POST).
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("POST", "/language"),
          ("GET", "/api/v1/docs"), ("GET", "/api/v1/openapi.json")}
ROLE_BELOW = {"supervisor": "alice", "admin": "sam"}  # a signed-in user one rank too low
# What a database error spilling into a response would show (search values themselves are echoed
# back, escaped, in the filter box).
SQL_LEAKS = re.compile(r"sqlite3\.|psycopg|OperationalError|ProgrammingError|Traceback|"
                       r"syntax error|\[SQL:")


def _requirement(dependant) -> tuple[str, str] | None:
    """('role', r) for the review app's require(r), ('scope', s) for the API's scoped(s)."""
    for sub in dependant.dependencies:
        call = sub.call
        name = getattr(call, "__qualname__", "")
        if "require.<locals>" in name or "scoped.<locals>" in name:
            nonlocals = inspect.getclosurevars(call).nonlocals
            if "role" in nonlocals:
                return ("role", nonlocals["role"])
            return ("scope", nonlocals["scope"])
        found = _requirement(sub)
        if found:
            return found
    return None


def _sample_path(route: APIRoute, prefix: str) -> str:
    path = route.path
    for param in route.dependant.path_params:
        value = "1" if param.field_info.annotation is int else "0" * 32
        path = re.sub(r"\{" + param.name + r"(:[^}]*)?\}", value, path)
    return prefix + path


def enumerate_routes(app, prefix: str = "") -> list[dict]:
    """Every (method, path) the app answers, mounted sub-applications included."""
    out = []
    for route in getattr(app, "routes", []):
        included = getattr(route, "original_router", None)  # FastAPI >= 0.165 include_router
        if included is not None:
            context = getattr(route, "include_context", None)
            out.extend(enumerate_routes(included, prefix + getattr(context, "prefix", "")))
        elif isinstance(route, Mount):
            if isinstance(route.app, StaticFiles):
                out.append({"method": "GET", "path": prefix + route.path + "/app.css",
                            "template": prefix + route.path, "needs": ("public", "static")})
            else:
                out.extend(enumerate_routes(route.app, prefix + route.path))
        elif isinstance(route, APIRoute):
            for method in sorted(route.methods):
                out.append({"method": method, "path": _sample_path(route, prefix),
                            "template": prefix + route.path,
                            "needs": _requirement(route.dependant)})
        elif isinstance(route, Route):  # plain Starlette routes: the OpenAPI document
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    out.append({"method": method, "path": prefix + route.path,
                                "template": prefix + route.path, "needs": None})
    return out


@pytest.fixture
def routes(app):
    found = enumerate_routes(app)
    for r in found:
        if (r["method"], r["template"]) in PUBLIC:
            r["needs"] = ("public", "")
    return found


def _session_routes(routes, kind=None):
    return [r for r in routes if r["needs"] and r["needs"][0] == "role"
            and (kind is None or r["needs"][1] == kind)]


def _send(client, r, **kw):
    return client.request(r["method"], r["path"], **kw)


def test_every_route_is_public_by_list_or_guarded_by_a_role_or_a_token_scope(routes):
    templates = {(r["method"], r["template"]) for r in routes}
    assert {("GET", "/queue"), ("POST", "/pair/{token}/decide"), ("GET", "/admin/users"),
            ("POST", "/api/v1/check"), ("GET", "/households"), ("GET", "/households/{token}"),
            ("POST", "/households/{token}/decide")} <= templates
    for r in routes:
        assert r["needs"], f"{r['method']} {r['template']} checks no role and is not public"
        if r["template"].startswith("/api/v1") and r["needs"][0] != "public":
            assert r["needs"][0] == "scope", f"{r['template']}: the API uses tokens, not sessions"
        elif r["needs"][0] != "public":
            assert r["needs"][0] == "role", r["template"]
        if r["template"].startswith("/households"):  # reviewed as pairs are: reviewer and up
            assert r["needs"] == ("role", "reviewer"), r["template"]


def test_every_session_route_refuses_the_unauthenticated(routes, client_for):
    anonymous = client_for()
    token = csrf_of(anonymous.get("/login").text)  # a session, but nobody signed in
    for r in _session_routes(routes):
        response = _send(anonymous, r,
                         data={"csrf_token": token} if r["method"] == "POST" else None)
        if r["template"].startswith("/api/"):
            assert response.status_code == 401, r
        else:
            assert (response.status_code, response.headers.get("location")) == (303, "/login"), r


def test_every_session_route_refuses_the_wrong_role(routes, client_for):
    guarded = [r for r in _session_routes(routes) if r["needs"][1] in ROLE_BELOW]
    assert guarded
    clients = {name: client_for(name) for name in set(ROLE_BELOW.values())}
    for r in guarded:
        client = clients[ROLE_BELOW[r["needs"][1]]]
        data = {"csrf_token": client.csrf} if r["method"] == "POST" else None
        assert _send(client, r, data=data).status_code == 403, r


def test_a_disabled_account_loses_its_open_session_at_once(app, routes, client_for):
    alice = client_for("alice")
    assert alice.get("/queue").status_code == 200
    with app.state.review.engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "alice").values(active=False))
    for r in _session_routes(routes, "reviewer"):
        if r["method"] == "GET":
            response = _send(alice, r)
            assert response.status_code in (303, 401), r


def test_every_post_needs_the_session_csrf_token(routes, client_for):
    posts = [r for r in routes if r["method"] in ("POST", "PUT", "PATCH", "DELETE")
             and not r["template"].startswith("/api/v1")]
    assert len(posts) >= 8
    ada = client_for("ada")  # the highest role: only the token can be missing
    for r in posts:
        assert _send(ada, r, data={"decision": "match"}).status_code == 403, r
        forged = {"decision": "match", "csrf_token": "forged"}
        assert _send(ada, r, data=forged).status_code == 403, r
        assert _send(ada, r, headers={"X-CSRF-Token": ""}).status_code == 403, r
    assert ada.get("/queue").status_code == 200  # the refused /logout did nothing


@pytest.fixture
def api_tokens(app):
    from linkage.store.tokens import create_token

    engine = app.state.review.engine
    return {scope: create_token(engine, f"test-{scope}", scope)[1] for scope in ("status", "check")}


def test_every_api_v1_route_needs_a_bearer_token_and_ignores_the_session(routes, client_for,
                                                                         api_tokens):
    api = [r for r in routes if r["needs"] and r["needs"][0] == "scope"]
    assert {r["template"] for r in api} >= {"/api/v1/check", "/api/v1/status"}
    ada = client_for("ada")  # a signed-in admin with a CSRF token: still no access to the API
    for r in api:
        kw = {"json": {}} if r["method"] == "POST" else {}
        bare = _send(client_for(), r, **kw)
        assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer", r
        assert _send(ada, r, headers={"X-CSRF-Token": ada.csrf}, **kw).status_code == 401, r
        forged = {"Authorization": "Bearer lkt_" + "0" * 40}
        assert _send(ada, r, headers=forged, **kw).status_code == 401, r
        if r["needs"][1] != "status":  # a token of too small a scope
            weak = {"Authorization": f"Bearer {api_tokens['status']}"}
            assert _send(ada, r, headers=weak, **kw).status_code == 403, r


def test_public_routes_answer_without_personal_data(routes, client_for):
    anonymous = client_for()
    public = [r for r in routes if r["needs"][0] == "public" and r["method"] == "GET"]
    assert {r["template"] for r in public} >= {"/login", "/static", "/api/v1/openapi.json"}
    for r in public:
        response = _send(anonymous, r)
        assert response.status_code == 200, r
        assert not ID_NUMBER.search(response.text), r


# --------------------------------------------------------------------------- SQL injection

INJECTIONS = ["alice' OR '1'='1", "alice'; DROP TABLE decisions; --", '" OR ""="',
              "alice\\'; --", "%' --", "1; SELECT * FROM users"]


def _decide_two(client):
    response = client.post("/queue/next", data={"csrf_token": client.csrf})
    token = response.headers["location"].removeprefix("/pair/")
    note = "王芳's note; DROP TABLE decisions; -- \"quoted\""
    client.post(f"/pair/{token}/decide", data={"decision": "match", "note": note,
                                               "csrf_token": client.csrf, "confirm": "yes"})
    return note


def _count(app, table):
    with app.state.review.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def test_search_fields_are_bound_not_spliced_into_sql(app, client_for):
    alice, sam = client_for("alice"), client_for("sam")
    note = _decide_two(alice)
    before = (_count(app, decisions), _count(app, audit_log), _count(app, users))
    assert sam.get("/api/decisions", params={"reviewer": "alice"}).json()[0]["reviewer"] == "alice"
    for value in INJECTIONS:
        log = sam.get("/supervisor/log", params={"reviewer": value})
        assert log.status_code == 200 and '<span class="dec dec-' not in log.text, value
        assert sam.get("/api/decisions", params={"reviewer": value}).json() == [], value
        trail = sam.get("/supervisor/audit", params={"actor": value})
        assert trail.status_code == 200 and "没有记录。" in trail.text, value
        assert sam.get("/supervisor/audit", params={"action": value}).status_code == 422, value
        for response in (log, trail):
            assert not SQL_LEAKS.search(response.text), value
    bad_page = sam.get("/supervisor/log", params={"page": "1; DROP TABLE decisions"})
    assert bad_page.status_code == 422 and not SQL_LEAKS.search(bad_page.text)
    after = (_count(app, decisions), _count(app, audit_log), _count(app, users))
    assert after[0] == before[0] and after[2] == before[2] and after[1] >= before[1]
    with app.state.review.engine.connect() as conn:
        assert conn.execute(sa.select(decisions.c.note)).scalar() == note  # stored intact


def test_sign_in_with_an_injected_username_is_refused_and_not_written_down(app, client_for):
    client = client_for()
    for value in ["' OR '1'='1' --", "alice' --", "alice'/*"]:
        token = csrf_of(client.get("/login").text)
        response = client.post("/login", data={"username": value, "password": "x' OR '1'='1",
                                               "csrf_token": token})
        assert response.status_code == 401 and not SQL_LEAKS.search(response.text)
    with app.state.review.engine.connect() as conn:
        actors = set(conn.execute(sa.select(audit_log.c.actor)).scalars())
    assert actors == {"?"}


def test_config_values_with_quotes_and_semicolons_are_stored_as_data(store_url):
    from linkage.store import Store

    store = Store(store_url)
    try:
        job = "demo'; DROP TABLE runs; --"
        run_id = store.begin_run(job)
        store.add_decision(("ncms'; --", "NH'1"), ("police", 'GA"2'), "match", "wang")
        with store.engine.connect() as conn:
            query = sa.select(runs.c.job).where(runs.c.run_id == run_id)
            assert conn.execute(query).scalar() == job
            row = conn.execute(sa.select(decisions)).mappings().all()[-1]
        assert {row["source_l"], row["record_l"], row["record_r"]} >= {"ncms'; --", "NH'1", 'GA"2'}
    finally:
        store.engine.dispose()


# --------------------------------------------------------------------------- IDs in logs, URLs

def _app_records(caplog) -> list[str]:
    """Log lines of the app and the job; the test's own HTTP client (httpx) is not the app."""
    return [f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
            if not r.name.startswith(("httpx", "httpcore"))]


def test_a_whole_job_logs_no_id_number(web_world, tmp_path, caplog, capfd):
    from linkage.cli import main

    config = write_config(web_world, tmp_path, f"sqlite:///{tmp_path}/store.sqlite")
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["run", str(config)]) == 0  # with progress on stderr
        assert main(["export", str(config)]) == 0
    out, err = capfd.readouterr()
    lines = (_app_records(caplog) + [str(w.message) for w in caught]
             + out.splitlines() + err.splitlines())
    assert "records read" in out
    leaks = [line for line in lines if ID_NUMBER.search(line)]
    assert not leaks, leaks[:3]


def test_review_and_check_flows_on_a_live_server_log_no_id_number(app, web_run, caplog,
                                                                 api_tokens, tmp_path):
    """The real uvicorn server with the access-log setup `linkage serve` uses, root at DEBUG."""
    import io

    import uvicorn

    from linkage.web.server import log_config

    buffer = io.StringIO()
    cfg = log_config()
    for handler in cfg["handlers"].values():
        handler.pop("stream", None)
        handler["stream"] = buffer
    caplog.set_level(logging.DEBUG)
    record = web_run.records.get(*app.state.review.queue.candidates()[0].ref.left)
    full_id = record.fields.get("id_number") or TYPED_ID
    locations = []
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=cfg,
                                           access_log=True, log_level="debug"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        with httpx.Client(base_url=url, follow_redirects=False) as alice, \
                httpx.Client(base_url=url, follow_redirects=False) as sam:
            alice.csrf = login(alice, "alice")
            sam.csrf = login(sam, "sam")
            claimed = alice.post("/queue/next", data={"csrf_token": alice.csrf})
            locations.append(claimed.headers["location"])
            token = claimed.headers["location"].removeprefix("/pair/")
            assert alice.get(f"/pair/{token}").status_code == 200
            decided = alice.post(f"/pair/{token}/decide", data={
                "decision": "match", "note": f"ID {full_id} checked", "csrf_token": alice.csrf,
                "confirm": "yes"})
            locations.append(decided.headers["location"])
            revealed = sam.post(f"/pair/{token}/reveal", data={"csrf_token": sam.csrf})
            assert revealed.status_code == 200
            for path in ["/supervisor/log", "/api/decisions", "/supervisor/audit"]:
                listed = sam.get(path, params={"reviewer": full_id, "actor": full_id})
                assert listed.status_code == 200
            assert sam.get(f"/pair/{full_id}").status_code == 422  # an ID pasted into the URL
            headers = {"Authorization": f"Bearer {api_tokens['check']}"}
            checked = sam.post("/api/v1/check", headers=headers,
                               json={"source": "ncms", "name": record.name, "id_number": full_id})
            assert checked.status_code in (200, 503)
            bogus = sam.post("/api/v1/check", headers=headers,
                             json={"source": "ncms", "id_number": full_id, "bogus": full_id})
            assert bogus.status_code == 422
    finally:
        server.should_exit = True
        thread.join(20)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).handlers.clear()
    access = buffer.getvalue()
    assert '"GET /supervisor/log HTTP/1.1" 200' in access  # the access log did run
    lines = access.splitlines() + _app_records(caplog)
    leaks = [line for line in lines if ID_NUMBER.search(line)]
    assert not leaks, leaks[:3]
    assert not any(ID_NUMBER.search(loc) for loc in locations)


# --------------------------------------------------------------------------- secrets at rest

def test_passwords_are_stored_as_argon2_hashes_only(app, client_for):
    engine = app.state.review.engine
    with engine.connect() as conn:
        rows = conn.execute(sa.select(users)).mappings().all()
    assert rows
    for row in rows:
        assert row["password_hash"].startswith("$argon2id$v=19$m=")
        assert not any(PASSWORD in str(v) for v in row.values())
    client = client_for()
    token = csrf_of(client.get("/login").text)
    as_hash = client.post("/login", data={"username": "alice", "password": rows[0]["password_hash"],
                                          "csrf_token": token})
    assert as_hash.status_code == 401  # the hash is not a password
    wrong = client.post("/login", data={"username": "alice", "password": PASSWORD + " ",
                                        "csrf_token": token})
    assert wrong.status_code == 401


def test_api_tokens_are_stored_hashed(app, api_tokens):
    from linkage.store.tokens import api_tokens as table

    with app.state.review.engine.connect() as conn:
        stored = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
    assert len(stored) == 2
    for secret in api_tokens.values():
        assert not any(secret in str(v) for row in stored for v in row.values())
