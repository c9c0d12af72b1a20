"""Decisions taken in the review app are what the next `linkage run` applies."""
import shutil

from fastapi.testclient import TestClient
from review_helpers import add_users, copy_run, login, write_config

from linkage.core.config import load_config
from linkage.jobs.run import run
from linkage.store import Store


def _entities(store: Store, run_id: str) -> dict[tuple[str, str], str]:
    members = store.members(run_id)
    return dict(zip(zip(members["source"], members["record_id"]), members["entity_id"]))


def test_the_next_run_merges_and_splits_as_reviewers_decided(web_run, tmp_path, make_app,
                                                             backend_url):
    if backend_url.startswith("sqlite:///"):
        shutil.copy(web_run.db, backend_url.removeprefix("sqlite:///"))
    else:
        copy_run(web_run.db, backend_url, whole=True)  # the whole first run, entities included
    add_users(backend_url)
    config = load_config(write_config(web_run.world, tmp_path, backend_url))
    store = Store(config.store)
    before = _entities(store, web_run.run_id)
    app = make_app(config.store)
    queue = app.state.review.queue
    # pairs of the review band (a refused merge's 同一人 makes a CONFLICT, not a merge)
    apart = [p for p in queue.candidates()
             if before[p.ref.left] != before[p.ref.right] and not p.refused_merge]
    merge, keep_apart = apart[0], apart[1]
    alice, bob, sam = (TestClient(app, follow_redirects=False) for _ in range(3))
    tokens = {c: login(c, name) for c, name in ((alice, "alice"), (bob, "bob"), (sam, "sam"))}

    def decide(client, pair, decision):
        response = client.post(f"/pair/{queue.url_token(pair.ref)}/decide",
                               data={"decision": decision, "csrf_token": tokens[client]})
        assert response.status_code == 303

    for pair, decision in ((merge, "match"), (keep_apart, "non_match")):
        assert queue._take(pair.ref, "alice")  # handed to alice (the queue would pick others)
        decide(alice, pair, decision)
    second = run(config)
    after = _entities(store, second.run_id)
    assert after[merge.ref.left] == after[merge.ref.right]  # merged as decided
    assert after[keep_apart.ref.left] != after[keep_apart.ref.right]
    assert queue.latest_run() == second.run_id  # the app follows the new run
    waiting = {p.ref.token for p in queue.candidates()}
    assert merge.ref.token not in waiting and keep_apart.ref.token not in waiting

    # A supervisor sends the merge back; a second reviewer splits it; the next run splits it.
    [row] = [d for d in sam.get("/api/decisions").json()
             if d["pair"] == queue.url_token(merge.ref)]
    sam.post(f"/supervisor/decisions/{row['decision_id']}/second-review",
             data={"csrf_token": tokens[sam]})
    assert bob.post("/queue/next", data={"csrf_token": tokens[bob]}).headers["location"] == (
        f"/pair/{queue.url_token(merge.ref)}")
    decide(bob, merge, "non_match")
    third = run(config)
    final = _entities(store, third.run_id)
    assert final[merge.ref.left] != final[merge.ref.right]
    for client in (alice, bob, sam):
        client.close()
    store.engine.dispose()
