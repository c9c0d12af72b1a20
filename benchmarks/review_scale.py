"""The review app at a prefecture's scale: ~150,000 pairs waiting, a real server, real HTTP.

Why: at a 1M-person run (141,840 pairs waiting) the queue page took seconds, a claim and a
decision over a second each, and the server two minutes and gigabytes before its first answer.
Targets: queue page, claim and decision each <= 200 ms of server time; review pages answering
within 30 s of start; the check master <= 4 GB per million persons.

The world is generated once per size (`linkage synth`, reused under --workdir) and the demo job
runs on it once; the run's stored review pairs are then topped up to --pairs with pairs shaped
as the run writes them (two records of the world from different sources, a probability in the
review band, the run's own reason text and an explanation copied from one of its review
pairs), so a small world gives the full queue quickly. Every invocation starts from a clean
review state (no decisions, leases or kept queue), as a store that a new run has just written.
Then `linkage serve` starts as a child process and one reviewer signs in and works:

    .venv/bin/python benchmarks/review_scale.py                      # 20,000 persons, ~2 minutes
    .venv/bin/python benchmarks/review_scale.py --with-check         # the check master as well
    .venv/bin/python benchmarks/review_scale.py --persons 1000000 --with-check   # the real size
    .venv/bin/python benchmarks/review_scale.py --db postgresql+psycopg://postgres@127.0.0.1/x

Prints: seconds from start to the first answer, to the first queue page, to the pair pages'
records and (with --with-check) to the master; p50/p95 of the queue page, a claim, a pair page
and a decision (each decision also claims the next pair, as the route does) over --requests
requests, measured at the client over loopback (server time plus well under a millisecond);
the server's resident memory (and its peak, children included); with --with-check the check
latency of one client. Writes review_scale.json to the workdir.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from harness import LINKAGE, REPO, ensure_world, install_config

PASSWORD = "review scale 1"
SECRET = "review-scale-benchmark"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LOADING = "仍在读取中"  # the pair page says so while records load (Chinese, the default)


def configure(root: Path, db: str | None) -> Path:
    config = install_config(root, pin_encodings=False)
    if db:
        text = re.sub(r"^store: .*$", f"store: {db}", config.read_text(encoding="utf-8"),
                      flags=re.MULTILINE)
        config.write_text(text, encoding="utf-8")
    return config


def ensure_run(config: Path, store_url: str) -> str:
    """The job's latest complete run, running the job first if the store has none."""
    from linkage.store import Store

    store = Store(store_url)
    try:
        run_id = store.last_complete_run("demo")
    finally:
        store.engine.dispose()
    if run_id is None:
        print(f"running the demo job on {config.parent.parent}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        done = subprocess.run([str(LINKAGE), "run", str(config)], cwd=REPO, check=False,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"linkage run failed:\n{done.stderr[-3000:]}")
        print(f"  run took {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return ensure_run(config, store_url)
    return run_id


def fresh_review_state(store_url: str, run_id: str, pairs: int, seed: int) -> dict:
    """No decisions, leases, sessions or kept queue; the run's review pairs topped up to
    ``pairs`` with pairs shaped as the run stores them. Returns counts."""
    import sqlalchemy as sa

    from linkage.store import Store

    store = Store(store_url)
    engine = store.engine
    with engine.begin() as conn:
        for table in ("decision_reversals", "decisions", "review_leases", "second_reviews",
                      "review_queue", "review_tally", "review_sessions", "audit_log", "users",
                      "api_tokens"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    need = ("band = 'review' OR (reason IS NOT NULL AND reason <> '')")
    with engine.connect() as conn:
        have = conn.execute(sa.text(f"SELECT count(*) FROM scored_pairs WHERE run_id = :r AND "
                                    f"({need})"), {"r": run_id}).scalar()
        template = conn.execute(sa.text(
            "SELECT reason, explanation FROM scored_pairs WHERE run_id = :r AND band = 'review' "
            "LIMIT 1"), {"r": run_id}).first()
        stored = {tuple(r) for r in conn.execute(sa.text(
            "SELECT source_l, record_l, source_r, record_r FROM scored_pairs WHERE run_id = :r"),
            {"r": run_id}).all()}
    members = store.members(run_id)[["source", "record_id"]]  # versions valid in the run
    persons = sum(1 for _ in store.golden_records(run_id))
    reason, explanation = template if template else ("score in the review band", "{}")
    rng = np.random.default_rng(seed)
    added = 0
    rows = []
    sources = sorted(members["source"].unique())
    by_source = {s: members.loc[members["source"] == s, "record_id"].to_numpy() for s in sources}
    while have + added + len(rows) < pairs:
        a, b = rng.choice(len(sources), 2, replace=len(sources) < 2)
        left = (sources[a], str(rng.choice(by_source[sources[a]])))
        right = (sources[b], str(rng.choice(by_source[sources[b]])))
        left, right = (left, right) if left <= right else (right, left)
        if left == right or (*left, *right) in stored:
            continue
        stored.add((*left, *right))
        p = float(rng.uniform(0.02, 0.98))
        rows.append({"run_id": run_id, "source_l": left[0], "record_l": left[1],
                     "source_r": right[0], "record_r": right[1],
                     "weight": float(np.log2(p / (1 - p))), "probability": p, "band": "review",
                     "reason": reason, "explanation": explanation})
        if len(rows) == 20_000:
            added += _insert_pairs(engine, rows)
            rows = []
    added += _insert_pairs(engine, rows)
    with engine.connect() as conn:
        total = conn.execute(sa.text(f"SELECT count(*) FROM scored_pairs WHERE run_id = :r AND "
                                     f"({need})"), {"r": run_id}).scalar()
    engine.dispose()
    return {"run_pairs_for_review": have, "added": added, "pairs_for_review": total,
            "entities": persons, "records": len(members)}


def _insert_pairs(engine, rows: list[dict]) -> int:
    import sqlalchemy as sa

    if not rows:
        return 0
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO scored_pairs (run_id, source_l, record_l, source_r, record_r, weight, "
            "probability, band, reason, explanation) VALUES (:run_id, :source_l, :record_l, "
            ":source_r, :record_r, :weight, :probability, :band, :reason, :explanation)"), rows)
    return len(rows)


def add_reviewer(store_url: str, name: str) -> None:
    from argon2 import PasswordHasher

    from linkage.store import Store
    from linkage.store.accounts import create_user

    store = Store(store_url)
    try:
        create_user(store.engine, name, PASSWORD, "reviewer",
                    hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    finally:
        store.engine.dispose()


def check_token(store_url: str) -> str:
    from linkage.store import Store
    from linkage.store.tokens import create_token

    store = Store(store_url)
    try:
        return create_token(store.engine, "bench", "check_full")[1]
    finally:
        store.engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_gb(pid: int, field: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def tree_rss_gb(pid: int) -> float:
    """The resident memory of a process and its children (the records reader)."""
    total = rss_gb(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(tree_rss_gb(int(c)) for c in children)


class Server:
    def __init__(self, config: Path, review_only: bool, log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        argv = [str(LINKAGE), "serve", str(config), "--port", str(self.port)]
        if review_only:
            argv.append("--review-only")
        self.log = log
        self._out = open(log, "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=self._out, stderr=subprocess.STDOUT,
                                     env={**os.environ, "LINKAGE_SECRET_KEY": SECRET,
                                          "PYTHONUNBUFFERED": "1"})
        self.peak = 0.0

    def since(self) -> float:
        return time.monotonic() - self.started

    def sample(self) -> None:
        self.peak = max(self.peak, tree_rss_gb(self.proc.pid))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def wait_for(server: Server, probe, timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.sample()
        if server.proc.poll() is not None:
            raise SystemExit(f"linkage serve exited ({server.proc.returncode}) waiting for "
                             f"{what}:\n{server.log.read_text()[-3000:]}")
        try:
            if probe():
                return round(server.since(), 2)
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    raise SystemExit(f"timed out after {timeout} s waiting for {what}")


def sign_in(client, name: str) -> str:
    page = client.get("/login")
    token = CSRF.search(page.text).group(1)
    done = client.post("/login", data={"username": name, "password": PASSWORD,
                                       "csrf_token": token})
    if done.status_code != 303:
        raise SystemExit(f"sign-in failed: {done.status_code} {done.text[:300]}")
    return CSRF.search(client.get("/queue").text).group(1)


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1000, out


def percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1),
            "max_ms": round(float(a.max()), 1), "n": len(ms)}


def review_work(client, csrf: str, n: int, seed: int) -> dict:
    """n queue pages; n claims (each after giving the held pair back, so the claim walks the
    queue from its head); n pair pages and n decisions (match, non-match, unsure in turn: an
    'unsure' pair stays waiting for others, so this reviewer's later claims skip it)."""
    rng = random.Random(seed)
    times: dict[str, list[float]] = {"queue_page": [], "claim": [], "pair_page": [],
                                     "decision": []}
    for _ in range(n):
        ms, r = timed(lambda: client.get("/queue"))
        assert r.status_code == 200, r.status_code
        times["queue_page"].append(ms)
    location = None
    for i in range(n):
        if location:
            client.post(location + "/release", data={"csrf_token": csrf})
        ms, r = timed(lambda: client.post("/queue/next", data={"csrf_token": csrf}))
        assert r.status_code == 303 and r.headers["location"].startswith("/pair/"), r.text[:300]
        times["claim"].append(ms)
        location = r.headers["location"]
        ms, page = timed(lambda: client.get(location))
        assert page.status_code == 200, page.status_code
        times["pair_page"].append(ms)
        decision = ("match", "non_match", "unsure")[rng.randrange(3) if i % 5 else 2]
        ms, r = timed(lambda: client.post(location + "/decide",
                                          data={"csrf_token": csrf, "decision": decision}))
        if r.status_code == 200 and 'id="confirm-yes"' in r.text:
            # 同一人 that creates a CONFLICT asks first: the reviewer confirms (both posts count)
            more, r = timed(lambda: client.post(location + "/decide", data={
                "csrf_token": csrf, "decision": decision, "confirm": "yes"}))
            ms += more
        assert r.status_code == 303, (r.status_code, r.text[:300])
        times["decision"].append(ms)
        location = r.headers["location"] if r.headers["location"].startswith("/pair/") else None
    stats = client.get("/api/queue").json()
    return {**{k: percentiles(v) for k, v in times.items()}, "queue_after": stats}


def check_latency(base: str, token: str, data: Path, n: int = 200) -> dict:
    import httpx

    police = pd.read_csv(data / "police.csv", dtype=str, keep_default_na=False, nrows=5000)
    rows = police.sample(n, replace=True, random_state=3)
    headers = {"Authorization": f"Bearer {token}"}
    ms = []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for _, r in rows.iterrows():
            body = {"source": "urban", "name": r["姓名"], "id_number": r["公民身份号码"]}
            t, answer = timed(lambda: client.post("/api/v1/check", json=body))
            if answer.status_code != 200:
                raise SystemExit(f"check answered {answer.status_code}: {answer.text[:300]}")
            ms.append(t)
    return percentiles(ms[10:])  # the first few warm the server's caches


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--persons", type=int, default=20_000)
    p.add_argument("--pairs", type=int, default=150_000, help="pairs waiting for review")
    p.add_argument("--db", default=None, help="store URL (default: the world's SQLite file)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/linkage-bench"))
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--with-check", action="store_true",
                   help="serve the check API too (its master built in the background) and "
                        "measure it; default --review-only")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()

    import httpx

    root = ensure_world(args.workdir, args.persons, args.seed)
    config = configure(root, args.db)
    store_url = args.db or f"sqlite:///{root / 'out' / 'demo' / 'linkage.sqlite'}"
    run_id = ensure_run(config, store_url)
    t = time.perf_counter()
    state = fresh_review_state(store_url, run_id, args.pairs, args.seed)
    state["prepare_s"] = round(time.perf_counter() - t, 1)
    add_reviewer(store_url, "bench1")
    token = check_token(store_url) if args.with_check else None
    print(f"store: {state}", file=sys.stderr, flush=True)

    log = args.workdir / f"review-server-{args.persons}.log"
    server = Server(config, review_only=not args.with_check, log=log)
    result: dict = {"persons": args.persons, "store": store_url.split(":")[0], **state,
                    "mode": "with-check" if args.with_check else "review-only"}
    try:
        with httpx.Client(base_url=server.base, follow_redirects=False, timeout=120) as client:
            result["first_answer_s"] = wait_for(
                server, lambda: client.get("/login", timeout=2).status_code == 200, 600,
                "the first answer")
            csrf = sign_in(client, "bench1")
            result["first_queue_page_s"] = round(server.since(), 2)
            print(f"first answer after {result['first_answer_s']} s, first queue page after "
                  f"{result['first_queue_page_s']} s", file=sys.stderr, flush=True)

            def records_ready() -> bool:
                r = client.post("/queue/next", data={"csrf_token": csrf})
                page = client.get(r.headers["location"])
                client.post(r.headers["location"] + "/release", data={"csrf_token": csrf})
                return page.status_code == 200 and LOADING not in page.text

            result["records_ready_s"] = wait_for(server, records_ready, 1800, "the records")
            print(f"records after {result['records_ready_s']} s", file=sys.stderr, flush=True)
            if args.with_check:
                result["master_ready_s"] = wait_for(
                    server, lambda: "check API: master of run" in log.read_text(), 3600,
                    "the check master")
            server.sample()
            result["rss_ready_gb"] = round(rss_gb(server.proc.pid), 2)
            result.update(review_work(client, csrf, args.requests, args.seed))
            if args.with_check:
                result["check"] = check_latency(server.base, token, root / "data" / "demo")
            server.sample()
            result["rss_after_gb"] = round(rss_gb(server.proc.pid), 2)
            result["rss_peak_tree_gb"] = round(server.peak, 2)
            result["rss_hwm_gb"] = round(rss_gb(server.proc.pid, "VmHWM"), 2)
    finally:
        server.stop()
    out = args.workdir / "review_scale.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
