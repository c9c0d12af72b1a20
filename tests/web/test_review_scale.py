"""The review app at scale, for correctness: the kept queue and its counts agree with a recount
from the decisions themselves through claims, decisions, lease expiry, reversal and second
reviews; the check routes say 503 with Retry-After while the master builds in the background;
a review-only server never builds the master and says where checks are served; the records
read in the background are the records the full read gives for every pair a reviewer sees.
(Timings are the benchmark's business: benchmarks/review_scale.py.)"""
import multiprocessing
import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from review_helpers import SECRET, login

from linkage.store import (
    Store,
    decision_reversals,
    decisions,
    review_leases,
    review_queue,
    review_tally,
    scored_pairs,
    second_reviews,
)
from linkage.store.review import STICKY, pair_ref
from linkage.web import oversight
from linkage.web.queue import ReviewQueue

REVIEWERS = ("alice", "bob", "carol", "dan")


def recount(engine, run_id: str, reviewer: str) -> dict:
    """The queue page's numbers recounted from scored pairs, decisions, requests and leases,
    as the app counted them before it kept a queue (every pair of the run, in memory)."""
    now = datetime.now(timezone.utc)
    with engine.connect() as conn:
        need = sa.or_(scored_pairs.c.band == "review",
                      sa.and_(scored_pairs.c.reason.is_not(None), scored_pairs.c.reason != ""))
        pairs = {pair_ref((a, b), (c, d)).token for a, b, c, d in conn.execute(sa.select(
            scored_pairs.c.source_l, scored_pairs.c.record_l, scored_pairs.c.source_r,
            scored_pairs.c.record_r).where(scored_pairs.c.run_id == run_id, need)).all()}
        cols = (decisions.c.source_l, decisions.c.record_l, decisions.c.source_r,
                decisions.c.record_r)
        decided = {pair_ref((a, b), (c, d)).token for a, b, c, d in conn.execute(
            sa.select(*cols).where(decisions.c.active, decisions.c.decision.in_(STICKY))).all()}
        mine = {pair_ref((a, b), (c, d)).token for a, b, c, d in conn.execute(
            sa.select(*cols).where(decisions.c.reviewer == reviewer)).all()}
        reopened = set(conn.execute(sa.select(second_reviews.c.pair_token).where(
            second_reviews.c.closed_at.is_(None))).scalars())
        leases = dict(conn.execute(sa.select(review_leases.c.pair_token, review_leases.c.reviewer)
                                   .where(review_leases.c.expires_at >= now)).all())
        own = conn.execute(sa.select(sa.func.count()).select_from(decisions).where(
            decisions.c.reviewer == reviewer, decisions.c.decision_id.not_in(
                sa.select(decision_reversals.c.decision_id)))).scalar()
    settled = {t for t in pairs if t in decided and t not in reopened}
    return {"pairs": len(pairs), "decided": len(settled),
            "waiting_for_you": sum(1 for t in pairs if t not in settled and t not in mine
                                   and leases.get(t, reviewer) == reviewer),
            "in_review": sum(1 for t in pairs if t in leases), "your_decisions": own}


def assert_counts_agree(q: ReviewQueue) -> None:
    run_id = q.latest_run()
    for reviewer in REVIEWERS:
        stats = q.stats(reviewer)
        assert stats.pop("run_id") == run_id
        assert stats == recount(q.engine, run_id, reviewer), reviewer
    with q.engine.connect() as conn:
        kept = conn.execute(sa.select(review_tally.c.pairs, review_tally.c.decided)
                            .where(review_tally.c.run_id == run_id)).one()
        rows = conn.execute(sa.select(sa.func.count(), sa.func.sum(
            sa.case((review_queue.c.waiting, 0), else_=1))).where(
            review_queue.c.run_id == run_id)).one()
    assert tuple(kept) == (rows[0], rows[1] or 0)


def expire_leases(engine) -> None:
    with engine.begin() as conn:
        conn.execute(review_leases.update().values(
            expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))


def decision_of(engine, ref, reviewer: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(decisions.c.decision_id)).where(
            decisions.c.source_l == ref.left[0], decisions.c.record_l == ref.left[1],
            decisions.c.source_r == ref.right[0], decisions.c.record_r == ref.right[1],
            decisions.c.reviewer == reviewer)).scalar()


def test_kept_counts_equal_the_recount_through_a_reviewing_day(store_url, web_run):
    store = Store(store_url)
    q = ReviewQueue(store.engine, "demo", secret=SECRET)
    assert_counts_agree(q)
    a, b = q.claim_next("alice"), q.claim_next("bob")
    assert a.ref != b.ref
    assert_counts_agree(q)
    q.decide("alice", a, "match")
    q.decide("bob", b, "unsure")  # still waiting, but never again for bob
    assert_counts_agree(q)
    assert b.ref.token not in {p.ref.token for p in q.waiting("bob", limit=100)}
    assert b.ref.token in {p.ref.token for p in q.waiting("carol", limit=100)}

    c = q.claim_next("carol")
    expire_leases(store.engine)  # carol went for lunch
    assert_counts_agree(q)
    assert q.claim_next("dan").ref == c.ref  # her pair is free again, and first in line
    d = q.claim_next("dan")
    q.decide("dan", d, "non_match")
    assert_counts_agree(q)

    assert oversight.reverse(store.engine, decision_of(store.engine, a.ref, "alice"), "sam")
    assert_counts_agree(q)  # undone: alice's pair waits again (for anyone but alice)
    assert oversight.request_second_review(store.engine, decision_of(store.engine, d.ref, "dan"),
                                           "sam")
    assert_counts_agree(q)
    second = q.claim_next("carol")
    assert second.ref == d.ref and second.second_review  # second reviews come first
    q.decide("carol", second, "non_match")
    assert_counts_agree(q)

    waiting = q.claim_next("alice")
    q.release_all("alice")
    store.add_decision(waiting.ref.left, waiting.ref.right, "match", "wang")  # `linkage decide`
    assert_counts_agree(q)

    before = {r: q.stats(r) for r in REVIEWERS}
    with store.engine.begin() as conn:  # the kept queue thrown away: rebuilt from the rows
        conn.execute(review_queue.delete())
        conn.execute(review_tally.delete())
    rebuilt = ReviewQueue(store.engine, "demo", secret=SECRET)
    assert {r: rebuilt.stats(r) for r in REVIEWERS} == before
    assert [p.ref for p in rebuilt.candidates()] == [p.ref for p in q.candidates()]
    store.engine.dispose()


def test_a_pair_reopened_outside_the_run_joins_its_queue_first(store_url):
    """A supervisor may send back a pair the latest run did not leave for review (decided
    before, scored in the match band since): it joins the run's queue at the head, and stays
    counted there (settled) once a second reviewer decides it."""
    store = Store(store_url)
    q = ReviewQueue(store.engine, "demo", secret=SECRET)
    run_id = q.latest_run()
    q.stats("alice")  # the queue is built
    left, right = ("police", "not-in-run-1"), ("ncms", "not-in-run-2")
    decision = store.add_decision(left, right, "match", "wang")
    assert oversight.request_second_review(store.engine, decision, "sam")
    for reviewer in REVIEWERS:  # the recount knows the run's own pairs only
        stats, again = q.stats(reviewer), recount(q.engine, run_id, reviewer)
        assert (stats["pairs"], stats["waiting_for_you"], stats["decided"]) == (
            again["pairs"] + 1, again["waiting_for_you"] + 1, again["decided"])
    first = q.claim_next("alice")
    assert first.ref == pair_ref(left, right) and first.second_review
    assert q.find(q.url_token(first.ref)).ref == first.ref
    q.decide("alice", first, "match")
    for reviewer in REVIEWERS:
        stats, again = q.stats(reviewer), recount(q.engine, run_id, reviewer)
        assert (stats["pairs"], stats["waiting_for_you"], stats["decided"]) == (
            again["pairs"] + 1, again["waiting_for_you"], again["decided"] + 1)
    store.engine.dispose()


# --- the check master in the background, and review-only servers -----------------------------

@pytest.fixture
def whole_url(backend_url, web_run):
    from review_helpers import add_users, copy_run

    copy_run(web_run.db, backend_url, whole=True)
    add_users(backend_url)
    return backend_url


def test_check_routes_answer_503_with_retry_after_while_the_master_builds(
        make_app, whole_url, web_run, monkeypatch):
    from linkage.store.tokens import create_token
    from linkage.web import check_api

    gate = threading.Event()
    real = check_api.load_master

    def slow_build(*args, **kwargs):
        gate.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(check_api, "load_master", slow_build)
    app = make_app(whole_url)
    token = create_token(app.state.review.store.engine, "desk", "check_full")[1]
    record = {"source": "urban", "name": "王丽", "birth_date": "1965-03-12"}
    with TestClient(app, follow_redirects=False) as client:
        check_api.build_in_background(app.state.check_api)
        busy = client.post("/api/v1/check", json=record,
                           headers={"Authorization": f"Bearer {token}"})
        assert busy.status_code == 503
        assert int(busy.headers["retry-after"]) > 0
        assert "being built" in busy.json()["detail"]
        status = client.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert status.status_code == 503 and "retry-after" in status.headers
        csrf = login(client, "alice")  # the review pages answer meanwhile
        assert client.get("/queue").status_code == 200
        claimed = client.post("/queue/next", data={"csrf_token": csrf})
        assert claimed.headers["location"].startswith("/pair/")
        gate.set()
        holder = app.state.check_api.state.holder
        for _ in range(600):
            if holder.loaded is not None:
                break
            threading.Event().wait(0.1)
        answer = client.post("/api/v1/check", json=record,
                             headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["run_id"] == web_run.run_id


def test_a_review_only_app_serves_review_pages_and_refuses_checks(make_app, whole_url):
    app = make_app(whole_url, review_only=True)
    assert not hasattr(app.state, "check_api")  # no master, ever
    with TestClient(app, follow_redirects=False) as client:
        for method, path in (("post", "/api/v1/check"), ("get", "/api/v1/status"),
                             ("post", "/api/v1/check/batch")):
            answer = getattr(client, method)(path, headers={"Authorization": "Bearer lkt_x_y"})
            assert answer.status_code == 404
            assert "review pages only" in answer.json()["detail"]
            assert "--check-only" in answer.json()["detail"]
        csrf = login(client, "alice")
        claimed = client.post("/queue/next", data={"csrf_token": csrf})
        page = client.get(claimed.headers["location"])
        assert page.status_code == 200 and "源记录未加载" not in page.text


def test_serve_review_only_never_builds_the_master(whole_url, web_run, tmp_path, monkeypatch):
    from review_helpers import write_config

    from linkage.cli import main

    def no_master(*args, **kwargs):
        raise AssertionError("a review-only server built the check master")

    seen = {}
    monkeypatch.setattr("linkage.web.check_api.load_master", no_master)
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: seen.update(app=app))
    config = write_config(web_run.world, tmp_path, whole_url)
    assert main(["serve", str(config), "--review-only"]) == 0
    app = seen["app"]
    assert not hasattr(app.state, "check_api")
    app.state.warm_up.join(60)  # the queue is built at start-up
    assert app.state.review.queue.stats("alice")["pairs"] > 0
    with TestClient(app, follow_redirects=False) as client:
        assert client.post("/api/v1/check", json={}).status_code == 404
    assert app.state.review.records.wait(120)  # read in a child process meanwhile
    app.state.review.store.engine.dispose()
    assert main(["serve", str(config), "--review-only", "--check-only"]) == 2


# --- the records the review pages show, read in the background ------------------------------

def test_records_read_for_review_are_those_a_full_read_gives(store_url, web_run):
    from linkage.web.records import BackgroundRecords, RecordBook, review_records

    q = ReviewQueue(Store(store_url).engine, "demo", secret=SECRET)
    frame, columns = review_records(web_run.config, store_url, web_run.run_id)
    book, full = RecordBook(frame, columns), web_run.records
    assert 0 < len(book) < len(full)  # only what the pages show
    pairs = q.candidates()
    assert pairs
    for pair in pairs:
        for key in (pair.ref.left, pair.ref.right):
            assert book.get(*key) == full.get(*key)
            assert [m.key for m in book.household(*key)] == [m.key for m in full.household(*key)]
        for other in q.other_pairs(pair.ref.left, pair.ref.token):
            partner = other.ref.right if other.ref.left == pair.ref.left else other.ref.left
            assert book.get(*partner) == full.get(*partner)
    # The members of both households of every correspondence that needs a look (a 1:1 whose
    # every member agrees is not read).
    from linkage.store import correspondences

    tiers = (correspondences.LOOK, correspondences.LEFT_OVER)
    shown = correspondences.households_to_show(q.engine, web_run.run_id, tiers)
    assert shown
    for label in shown:
        source, household = label.split(":", 1)
        assert ([m.key for m in book.household_members(source, household)]
                == [m.key for m in full.household_members(source, household)] != [])

    background = BackgroundRecords(web_run.config, store_url)
    assert not background.loaded and not background.loading
    background.follow(web_run.run_id)
    assert background.wait(120), background.error
    key = pairs[0].ref.left
    assert background.get(*key) == full.get(*key) and not background.loading
    assert not multiprocessing.active_children()  # the reader process is gone
    q.engine.dispose()
