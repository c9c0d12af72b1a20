"""Twenty reviewers on one queue at once, through the real `linkage serve` process (SQLite and
PostgreSQL): no pair is handed to two of them, every acknowledged decision is stored exactly
once, and a second review a supervisor asks for still reaches exactly one other reviewer."""
import random
import threading
from collections import Counter

import httpx
import pytest
import sqlalchemy as sa
from review_helpers import (
    FAST_HASHER,
    PASSWORD,
    login,
    pair_url_token,
    server_process,
    write_config,
)

from linkage.store import audit_log, decisions, runs, scored_pairs, second_reviews
from linkage.store.accounts import create_user
from linkage.web.queue import pair_ref

pytestmark = pytest.mark.slow
REVIEWERS = [f"rev{i:02d}" for i in range(1, 21)]
EXTRA_PAIRS = 100  # scored matches sent to review too, so each reviewer gets several pairs


def _prepare(url: str) -> int:
    """Twenty reviewer accounts, and a queue of real pairs long enough to share; its length."""
    engine = sa.create_engine(url)
    try:
        for name in REVIEWERS:
            create_user(engine, name, PASSWORD, "reviewer", hasher=FAST_HASHER)
        with engine.begin() as conn:
            run_id = conn.execute(sa.select(runs.c.run_id).where(runs.c.status == "complete")
                                  ).scalar_one()
            matched = conn.execute(sa.select(scored_pairs.c.source_l, scored_pairs.c.record_l,
                                             scored_pairs.c.source_r, scored_pairs.c.record_r)
                                   .where(scored_pairs.c.run_id == run_id,
                                          scored_pairs.c.band == "match",
                                          sa.func.coalesce(scored_pairs.c.reason, "") == "")
                                   .order_by(scored_pairs.c.source_l, scored_pairs.c.record_l,
                                             scored_pairs.c.source_r, scored_pairs.c.record_r)
                                   .limit(EXTRA_PAIRS)).all()
            for sl, rl, sr, rr in matched:
                conn.execute(scored_pairs.update().where(
                    scored_pairs.c.run_id == run_id, scored_pairs.c.source_l == sl,
                    scored_pairs.c.record_l == rl, scored_pairs.c.source_r == sr,
                    scored_pairs.c.record_r == rr).values(band="review"))
            return conn.execute(sa.select(sa.func.count()).select_from(scored_pairs).where(
                scored_pairs.c.run_id == run_id,
                sa.or_(scored_pairs.c.band == "review",
                       sa.func.coalesce(scored_pairs.c.reason, "") != ""))).scalar()
    finally:
        engine.dispose()


def _all_at_once(base: str, work) -> None:
    """Each reviewer signs in with a session of their own, then all start `work` together."""
    start = threading.Barrier(len(REVIEWERS))

    def run(name: str) -> None:
        with httpx.Client(base_url=base, follow_redirects=False, timeout=120) as client:
            client.csrf = login(client, name)
            start.wait()
            work(name, client)

    threads = [threading.Thread(target=run, args=(name,)) for name in REVIEWERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads)


def test_twenty_reviewers_on_one_queue_lose_nothing_and_never_share_a_pair(store_url, web_world,
                                                                         tmp_path):
    total = _prepare(store_url)
    config = write_config(web_world, tmp_path, store_url)
    handed: dict[str, list[str]] = {name: [] for name in REVIEWERS}
    acknowledged: dict[str, list[str]] = {name: [] for name in REVIEWERS}
    failures: list[str] = []

    def review(name: str, client: httpx.Client) -> None:
        rng = random.Random(name)
        response = client.post("/queue/next", data={"csrf_token": client.csrf})
        for _ in range(total + 1):  # bounded: a reviewer cannot get more than every pair
            location = response.headers.get("location", "")
            if not location.startswith("/pair/"):
                if location != "/queue?notice=empty":
                    failures.append(f"{name}: next answered {response.status_code} {location}")
                break
            token = location.removeprefix("/pair/")
            handed[name].append(token)
            if client.get(location).status_code != 200:
                failures.append(f"{name} could not open {location}")
                break
            response = client.post(f"{location}/decide", data={
                "decision": rng.choice(["match", "non_match"]), "csrf_token": client.csrf,
                "confirm": "yes"})  # a 同一人 that makes a CONFLICT, confirmed at once
            if response.status_code != 303:
                failures.append(f"{name}: decide answered {response.status_code}")
                break
            acknowledged[name].append(token)

    with server_process(config) as (base, _):
        _all_at_once(base, review)
        assert not failures
        tokens = [t for got in handed.values() for t in got]
        assert len(tokens) == len(set(tokens)) == total  # every pair handed out exactly once
        assert sum(1 for got in handed.values() if got) > 10  # the work really was shared
        stored = _decisions(store_url)
        assert len(stored) == sum(map(len, acknowledged.values())) == total  # none lost
        assert all(active for _, _, active in stored)  # none replaced by another reviewer
        assert {t: r for t, r, _ in stored} == {t: n for n, got in acknowledged.items()
                                                for t in got}
        assert Counter(_audited(store_url)) == Counter(
            {n: len(got) for n, got in acknowledged.items() if got})

        # A supervisor sends one decided pair back: exactly one other reviewer takes it.
        with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as sam:
            csrf = login(sam, "sam")
            first = sam.get("/api/decisions").json()[0]
            response = sam.post(f"/supervisor/decisions/{first['decision_id']}/second-review",
                                data={"csrf_token": csrf})
            assert response.status_code == 303
        second: dict[str, str] = {}

        def review_again(name: str, client: httpx.Client) -> None:
            location = client.post("/queue/next",
                                   data={"csrf_token": client.csrf}).headers["location"]
            if location.startswith("/pair/"):
                second[name] = location.removeprefix("/pair/")
                response = client.post(f"{location}/decide", data={
                    "decision": "non_match", "csrf_token": client.csrf})
                if response.status_code != 303:
                    failures.append(f"{name}: second review answered {response.status_code}")

        _all_at_once(base, review_again)
        assert not failures
        [(again_by, token)] = second.items()
        assert token == first["pair"] and again_by != first["reviewer"]
        history = [(r, active) for t, r, active in _decisions(store_url) if t == token]
        assert history == [(first["reviewer"], False), (again_by, True)]
        assert len(_decisions(store_url)) == total + 1
        engine = sa.create_engine(store_url)
        with engine.connect() as conn:
            assert conn.execute(sa.select(second_reviews.c.closed_by)).scalars().all() == [
                again_by]
        engine.dispose()


def _decisions(url: str) -> list[tuple[str, str, bool]]:
    """(pair URL token, reviewer, active) of every stored decision, oldest first."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(decisions).order_by(decisions.c.decision_id)).mappings()
            return [(pair_url_token(pair_ref((r["source_l"], r["record_l"]),
                                             (r["source_r"], r["record_r"]))),
                     r["reviewer"], bool(r["active"])) for r in rows]
    finally:
        engine.dispose()


def _audited(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(audit_log.c.actor)
                                .where(audit_log.c.action == "decide")).scalars().all()
    finally:
        engine.dispose()
