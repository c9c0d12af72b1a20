"""A decision the review server has acknowledged survives the server being killed (SIGKILL of
the real `linkage serve` process), on SQLite and PostgreSQL."""
import os
import signal

import httpx
import pytest
import sqlalchemy as sa
from review_helpers import login, pair_url_token, server_process, write_config

from linkage.store import audit_log, decisions, review_leases
from linkage.web.queue import pair_ref

pytestmark = pytest.mark.slow


def _decided(url: str) -> dict[str, tuple[str, str, bool]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(decisions)).mappings().all()
            audited = set(conn.execute(sa.select(audit_log.c.pair_token)
                                       .where(audit_log.c.action == "decide")).scalars())
            leased = set(conn.execute(sa.select(review_leases.c.pair_token)).scalars())
    finally:
        engine.dispose()
    out, stored = {}, set()
    for r in rows:
        ref = pair_ref((r["source_l"], r["record_l"]), (r["source_r"], r["record_r"]))
        out[pair_url_token(ref)] = (r["reviewer"], r["decision"], r["active"])
        stored.add(ref.token)
        assert ref.token in audited
    assert not leased & stored  # a decided pair's lease went with the decision
    return out  # by the pair's URL token


def test_an_acknowledged_decision_survives_killing_the_server(store_url, web_world, tmp_path):
    config = write_config(web_world, tmp_path, store_url)
    acknowledged = {}
    with server_process(config) as (base, proc):
        with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as alice:
            csrf = login(alice, "alice")
            response = alice.post("/queue/next", data={"csrf_token": csrf})
            for decision in ("match", "non_match", "match"):
                location = response.headers["location"]
                assert location.startswith("/pair/")
                assert alice.get(location).status_code == 200
                # confirm=yes: a 同一人 that makes a CONFLICT is stored only once confirmed
                # (the queue may open with a refused merge), and confirmed here at once.
                response = alice.post(f"{location}/decide",
                                      data={"decision": decision, "csrf_token": csrf,
                                            "confirm": "yes"})
                assert response.status_code == 303  # the acknowledgement
                acknowledged[location.removeprefix("/pair/")] = decision
        os.kill(proc.pid, signal.SIGKILL)  # at once after the last acknowledgement
        proc.wait(30)

    assert _decided(store_url) == {t: ("alice", d, True) for t, d in acknowledged.items()}

    with server_process(config) as (base, proc):
        with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as sam, \
                httpx.Client(base_url=base, follow_redirects=False, timeout=60) as bob:
            login(sam, "sam")
            logged = {d["pair"]: d["decision"] for d in sam.get("/api/decisions").json()}
            assert logged == acknowledged
            csrf = login(bob, "bob")
            location = bob.post("/queue/next", data={"csrf_token": csrf}).headers["location"]
            assert location.removeprefix("/pair/") not in acknowledged  # decided: not offered
            stats = bob.get("/api/queue").json()
            assert stats["decided"] == len(acknowledged)
            # alice still holds the pair she was handed with her last acknowledgement (a lease
            # outlives the server too, until it expires)
            assert stats["waiting_for_you"] == stats["pairs"] - len(acknowledged) - 1
