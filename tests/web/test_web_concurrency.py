"""Several reviewers on one queue at once, through a real uvicorn server: no pair is handed to
two of them, and every decision they send is stored (SQLite and PostgreSQL)."""
import random
import threading
from collections import Counter

import httpx
import sqlalchemy as sa
from review_helpers import live_server, login

from linkage.store import audit_log, decisions
from linkage.web.queue import pair_ref

REVIEWERS = ("alice", "bob", "carol", "dan")


def test_reviewers_working_one_queue_at_once_never_share_a_pair(app):
    total = len(app.state.review.queue.candidates())
    handed: dict[str, list[str]] = {name: [] for name in REVIEWERS}
    failures: list[str] = []
    start = threading.Barrier(len(REVIEWERS))

    def work(name: str, base: str) -> None:
        rng = random.Random(name)
        with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as client:
            client.csrf = login(client, name)
            start.wait()
            response = client.post("/queue/next", data={"csrf_token": client.csrf})
            for _ in range(total + 1):  # bounded: a reviewer cannot get more than every pair
                location = response.headers.get("location", "")
                if not location.startswith("/pair/"):
                    break
                handed[name].append(location.removeprefix("/pair/"))
                if client.get(location).status_code != 200:
                    failures.append(f"{name} could not open {location}")
                    break
                response = client.post(f"{location}/decide", data={
                    "decision": rng.choice(["match", "non_match"]), "csrf_token": client.csrf})
                if response.status_code != 303:
                    failures.append(f"{name}: decide answered {response.status_code}")
                    break

    with live_server(app) as base:
        threads = [threading.Thread(target=work, args=(name, base)) for name in REVIEWERS]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert not failures
    tokens = [t for got in handed.values() for t in got]
    assert len(tokens) == len(set(tokens)) == total  # every pair handed out exactly once
    assert sum(1 for got in handed.values() if got) > 1  # and the work really was shared
    with app.state.review.engine.connect() as conn:
        rows = conn.execute(sa.select(decisions)).mappings().all()
        audited = conn.execute(sa.select(audit_log.c.pair_token, audit_log.c.actor)
                               .where(audit_log.c.action == "decide")).all()
    stored = {pair_ref((r["source_l"], r["record_l"]), (r["source_r"], r["record_r"])).token:
              r["reviewer"] for r in rows}
    assert len(rows) == total and all(r["active"] for r in rows)  # no decision lost or replaced
    assert stored == {t: name for name, got in handed.items() for t in got}
    assert Counter(actor for _, actor in audited) == Counter(
        {name: len(got) for name, got in handed.items() if got})
    assert app.state.review.queue.claim_next("erin") is None
