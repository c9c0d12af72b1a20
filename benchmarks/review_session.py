"""A reviewers' session on the demo: 50 decisions against a real `linkage serve`, with the
server's time per decision from the app's own Server-Timing header.

Why: a reviewer decides one pair after another with one key each; what they wait for after a
key is the decision's POST (store it, claim the next pair) and the next pair's page. Target:
those two together <= 300 ms of server time per decision on the demo (5,000 persons).

The demo world has about 30 pairs for review, fewer than a session: reviewers take turns
(bench1, bench2, ...), each deciding every pair the queue hands them with 不确定 / 不是同一人 /
不确定 / 同一人 in turn, until 50 decisions are made (不确定 leaves a pair waiting for the
next reviewer). A 同一人 that would create a CONFLICT is confirmed, and both posts count. The
store starts with no decisions (benchmarks/review_scale.py's fresh_review_state); the server
runs --review-only, so the check API's master is not built meanwhile.

    .venv/bin/python benchmarks/review_session.py                     # the demo, ~1 minute
    .venv/bin/python benchmarks/review_session.py --persons 20000 --decisions 200

Prints the server ms per decision (median, p90, max; the POST and the page apart) and the
wall time at the client over loopback, and whether the target holds; writes
review_session.json to the workdir. Exit status 1 when the target is missed.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

from harness import ensure_world
from review_scale import LOADING as RECORDS_LOADING
from review_scale import (
    Server,
    add_reviewer,
    configure,
    ensure_run,
    fresh_review_state,
    sign_in,
    timed,
    wait_for,
)

TARGET_MS = 300.0
KEYS = ("unsure", "non_match", "unsure", "match")
SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


def server_ms(response) -> float:
    return float(SERVER_TIMING.search(response.headers["server-timing"]).group(1))


def decide(client, csrf: str, location: str, decision: str) -> tuple[dict, str | None]:
    """One decision as the browser makes it (confirmed when the server asks); its server and
    client times, and where the server sends the reviewer next."""
    data = {"csrf_token": csrf, "decision": decision}
    wall, answer = timed(lambda: client.post(location + "/decide", data=data))
    post = server_ms(answer)
    if answer.status_code == 200 and 'id="confirm"' in answer.text:
        more, answer = timed(lambda: client.post(location + "/decide",
                                                 data={**data, "confirm": "yes"}))
        wall, post = wall + more, post + server_ms(answer)
    if answer.status_code != 303:
        raise SystemExit(f"decision answered {answer.status_code}: {answer.text[:300]}")
    target = answer.headers["location"]
    more, page = timed(lambda: client.get(target))
    if page.status_code != 200:
        raise SystemExit(f"{target} answered {page.status_code}")
    times = {"post_ms": post, "page_ms": server_ms(page), "wall_ms": wall + more}
    return times, target if target.startswith("/pair/") else None


def session(base: str, decisions: int, reviewers: int) -> list[dict]:
    import httpx

    times: list[dict] = []
    for n in range(1, reviewers + 1):
        with httpx.Client(base_url=base, follow_redirects=False, timeout=60) as client:
            csrf = sign_in(client, f"bench{n}")
            claim = client.post("/queue/next", data={"csrf_token": csrf})
            location = claim.headers["location"]
            location = location if location.startswith("/pair/") else None
            if location:
                client.get(location)  # the first pair's page, as the reviewer opens it
            i = 0
            while location and len(times) < decisions:
                took, location = decide(client, csrf, location, KEYS[i % len(KEYS)])
                times.append(took)
                i += 1
        if len(times) >= decisions:
            return times
    raise SystemExit(f"only {len(times)} decisions with {reviewers} reviewers: the queue is "
                     "too short (try --persons larger)")


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"median_ms": round(statistics.median(ordered), 1),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
            "max_ms": round(ordered[-1], 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--persons", type=int, default=5_000, help="the demo's size by default")
    p.add_argument("--decisions", type=int, default=50)
    p.add_argument("--reviewers", type=int, default=8, help="at most this many take turns")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/linkage-bench"))
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()

    import httpx

    root = ensure_world(args.workdir, args.persons, args.seed)
    config = configure(root, None)
    store_url = f"sqlite:///{root / 'out' / 'demo' / 'linkage.sqlite'}"
    run_id = ensure_run(config, store_url)
    state = fresh_review_state(store_url, run_id, 0, args.seed)  # the run's own pairs only
    for n in range(1, args.reviewers + 1):
        add_reviewer(store_url, f"bench{n}")
    server = Server(config, review_only=True,
                    log=args.workdir / f"review-session-{args.persons}.log")
    try:
        with httpx.Client(base_url=server.base, follow_redirects=False, timeout=60) as client:
            wait_for(server, lambda: client.get("/login", timeout=2).status_code == 200, 300,
                     "the first answer")
            csrf = sign_in(client, "bench1")

            def records_ready() -> bool:
                claim = client.post("/queue/next", data={"csrf_token": csrf})
                page = client.get(claim.headers["location"])
                client.post(claim.headers["location"] + "/release", data={"csrf_token": csrf})
                return page.status_code == 200 and RECORDS_LOADING not in page.text

            wait_for(server, records_ready, 600, "the pair pages' records")
        times = session(server.base, args.decisions, args.reviewers)
    finally:
        server.stop()

    per_decision = [t["post_ms"] + t["page_ms"] for t in times]
    result = {"persons": args.persons, "run_id": run_id,
              "pairs_for_review": state["pairs_for_review"], "decisions": len(times),
              "server_per_decision": summary(per_decision),
              "server_post": summary([t["post_ms"] for t in times]),
              "server_next_page": summary([t["page_ms"] for t in times]),
              "client_wall_per_decision": summary([t["wall_ms"] for t in times]),
              "target_ms": TARGET_MS, "target_met": max(per_decision) <= TARGET_MS}
    (args.workdir / "review_session.json").write_text(json.dumps(result, indent=2),
                                                      encoding="utf-8")
    s = result["server_per_decision"]
    print(f"review session on {args.persons:,} persons ({result['pairs_for_review']} pairs for "
          f"review): {len(times)} decisions")
    print(f"  server ms per decision (POST + next page): median {s['median_ms']}, "
          f"p90 {s['p90_ms']}, max {s['max_ms']}")
    print(f"  POST {result['server_post']}; next page {result['server_next_page']}")
    print(f"  client wall per decision {result['client_wall_per_decision']}")
    print(f"  target <= {TARGET_MS:.0f} ms per decision: "
          f"{'met' if result['target_met'] else 'MISSED'}")
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
