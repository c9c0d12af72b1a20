"""The review queue on its own: order, atomic leases, expiry, and what a decision changes."""
import threading
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa

from linkage.store import Store, decisions, review_leases, second_reviews
from linkage.web import oversight
from linkage.web.queue import LeaseConflict, PairClosed, ReviewQueue, pair_ref

REFUSED = "would put two registry persons (or a reviewer's non-match) in one entity"


@pytest.fixture
def synthetic_queue(backend_url):
    """A store whose latest run has five hand-made pairs (and an older run with another)."""
    store = Store(backend_url)

    def run(pairs):
        run_id = store.begin_run("demo")
        frame = pd.DataFrame(pairs, columns=["source_l", "record_l", "source_r", "record_r",
                                             "probability", "band", "reason"])
        frame["weight"] = 0.0
        frame["explanation"] = '{"name": {"level": "exact", "weight": 3.0}}'
        empty = pd.DataFrame(columns=["source", "record_id", "entity_id"])
        gold = pd.DataFrame(columns=["entity_id", "status", "name", "id_number", "birth_date",
                                     "gender"])
        store.finish_run(run_id, {}, {}, empty, gold, frame)

    run([("a", "old", "b", "old", 0.5, "review", "score in the review band")])
    run([
        ("a", "1", "b", "1", 0.80, "review", "score in the review band"),
        ("a", "2", "b", "2", 0.52, "review", "score in the review band"),
        ("a", "3", "b", "3", 0.995, "match", REFUSED),
        ("a", "4", "b", "4", 0.45, "review", "score in the review band"),
        ("a", "5", "b", "5", 0.999, "match", ""),  # a plain match: not for review
    ])
    yield ReviewQueue(store.engine, "demo")
    store.engine.dispose()


def _ids(pairs):
    return [p.ref.left[1] for p in pairs]


def test_refused_merges_first_then_nearest_the_threshold_area(synthetic_queue):
    assert _ids(synthetic_queue.candidates()) == ["3", "2", "4", "1"]
    assert synthetic_queue.candidates()[0].refused_merge


def test_each_pair_goes_to_one_reviewer_until_decided(synthetic_queue):
    q = synthetic_queue
    got = {name: q.claim_next(name) for name in ("alice", "bob", "carol", "dan")}
    assert _ids(got.values()) == ["3", "2", "4", "1"]
    assert q.claim_next("erin") is None
    assert q.claim_next("alice").ref == got["alice"].ref  # asking again keeps the pair
    q.decide("alice", got["alice"], "non_match")
    assert q.claim_next("alice") is None  # nothing left that alice has not decided
    with pytest.raises(LeaseConflict) as info:
        q.decide("erin", got["bob"], "match")
    assert info.value.holder == "bob"


def test_an_expired_lease_frees_the_pair_and_a_late_decision_is_refused(synthetic_queue):
    q = synthetic_queue
    first = q.claim_next("alice")
    with q.engine.begin() as conn:
        conn.execute(review_leases.update().values(
            expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    assert not q.holds("alice", first.ref.token)
    assert q.claim_next("bob").ref == first.ref
    q.decide("bob", first, "match")
    with pytest.raises(PairClosed):
        q.decide("alice", first, "non_match")  # alice's lease ran out and bob decided
    q.decide("sam", first, "non_match", override=True)  # a supervisor may settle it
    with q.engine.connect() as conn:
        active = conn.execute(sa.select(decisions.c.reviewer).where(decisions.c.active)).all()
    assert active == [("sam",)]


def test_concurrent_claims_of_one_pair_have_exactly_one_winner(synthetic_queue):
    q = synthetic_queue
    target = q.candidates()[0].ref
    barrier = threading.Barrier(8)
    wins = []

    def grab(name):
        barrier.wait()
        if q._take(target, name):
            wins.append(name)

    threads = [threading.Thread(target=grab, args=(f"r{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert q.holder(target.token) == wins[0]


def test_unsure_skips_without_undoing_a_decision_under_second_review(synthetic_queue):
    q = synthetic_queue
    pair = q.claim_next("alice")
    first = q.decide("alice", pair, "match")
    assert pair.ref.token not in [p.ref.token for p in q.waiting("bob")]
    assert oversight.request_second_review(q.engine, first, "sam")
    assert not oversight.request_second_review(q.engine, first, "sam")  # one open at a time
    assert q.claim_next("bob").ref == pair.ref  # second reviews come first
    q.decide("bob", pair, "unsure")
    with q.engine.connect() as conn:
        rows = conn.execute(sa.select(decisions.c.reviewer, decisions.c.decision,
                                      decisions.c.active).order_by(decisions.c.decision_id)).all()
        still_open = conn.execute(sa.select(second_reviews.c.closed_at)).scalar() is None
    assert rows == [("alice", "match", True), ("bob", "unsure", False)]
    assert still_open and q.claim_next("carol").ref == pair.ref
    q.decide("carol", pair, "match")
    assert pair.ref.token not in [p.ref.token for p in q.waiting("dan")]
    table, disagreements = oversight.agreement(q.engine)
    assert [(a.reviewer, a.pairs, a.agreed, a.rate) for a in table] == [
        ("alice", 1, 1, 1.0), ("carol", 1, 1, 1.0)]
    assert disagreements == []


def test_a_pair_decided_long_ago_is_found_by_its_token(synthetic_queue, backend_url):
    q = synthetic_queue
    old = pair_ref(("b", "old"), ("a", "old"))
    assert old.left == ("a", "old")  # canonical order, as the store keeps pairs
    store = Store(backend_url)
    store.add_decision(old.left, old.right, "match", "cli-user")  # as `linkage decide` does
    store.engine.dispose()
    found = q.find(q.url_token(old))
    assert found is not None and found.probability == 0.5  # scores from the run that had it
    assert q.find("f" * 32) is None


def _parts(q: ReviewQueue, reviewer: str) -> dict:
    c = q.counts(reviewer)
    assert sum(c.parts) == c.pairs, (reviewer, c)  # every pair in exactly one part
    return {"waiting": c.waiting_for_you, "yours": c.yours_now, "others": c.with_others,
            "left": c.left_for_others, "decided": c.decided}


def test_the_queue_counts_put_every_pair_in_one_part(synthetic_queue):
    """Held pairs count once (not as waiting and in review), and a pair a reviewer left as
    unsure waits for the others, not for them, and is not decided."""
    q = synthetic_queue
    assert _parts(q, "alice") == {"waiting": 4, "yours": 0, "others": 0, "left": 0, "decided": 0}
    a = q.claim_next("alice")
    assert _parts(q, "alice") == {"waiting": 3, "yours": 1, "others": 0, "left": 0, "decided": 0}
    assert _parts(q, "bob") == {"waiting": 3, "yours": 0, "others": 1, "left": 0, "decided": 0}
    q.decide("alice", a, "unsure")
    assert _parts(q, "alice") == {"waiting": 3, "yours": 0, "others": 0, "left": 1, "decided": 0}
    assert _parts(q, "bob") == {"waiting": 4, "yours": 0, "others": 0, "left": 0, "decided": 0}
    assert q.claim_next("bob").ref == a.ref  # held by bob: counted as his, not as left
    assert _parts(q, "alice") == {"waiting": 3, "yours": 0, "others": 1, "left": 0, "decided": 0}
    q.decide("carol", q.claim_next("carol"), "match")
    q.claim_next("carol")
    q.release_all("bob")
    assert _parts(q, "alice") == {"waiting": 1, "yours": 0, "others": 1, "left": 1, "decided": 1}
    assert _parts(q, "bob") == {"waiting": 2, "yours": 0, "others": 1, "left": 0, "decided": 1}
    assert _parts(q, "carol") == {"waiting": 2, "yours": 1, "others": 0, "left": 0, "decided": 1}
    assert q.counts("alice").your_decisions == 1  # unsure included, and said so on the page
