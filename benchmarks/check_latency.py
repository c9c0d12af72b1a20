"""Latency of the online duplicate check (POST /api/v1/check) against a real server.

Why: a clerk enrols people at the desk and the check must answer before the next keystroke;
the target is p99 <= 20 ms for single checks against a 1M-person master. The world is
generated once per size (`linkage synth`, reused under --workdir like the other benchmarks),
the job runs once to build the master, then `linkage serve --check-only` starts as a child
process on 127.0.0.1 and an asyncio load generator (aiohttp, keep-alive) sends single checks sampled
from realistic records: registry persons enrolling in the urban scheme (some with typing
errors or no ID), NCMS members renewing, and people the master has never seen.

    .venv/bin/python benchmarks/check_latency.py                    # 20,000 persons, about a minute
    .venv/bin/python benchmarks/check_latency.py --persons 1000000  # the target size
    .venv/bin/python benchmarks/check_latency.py --persons 1000000 --during-run --rate 20

With --during-run it instead keeps checks arriving at --rate while `linkage run` re-runs the
whole job beside the server (its store stage writes the store the server reads tokens from),
and after it while the server builds the new run's master in the background and swaps it in;
latency and errors are printed per phase (run, store, refresh, after the swap). The target:
p99 under 50 ms and no 5xx in every phase.

Prints latency percentiles with checks arriving at random times at --rate per second (open
loop: what a clerk waits, measured from arrival, the target's figure), the saturation
throughput of --clients clients sending back to back (closed loop), one client's latency,
verdicts, the server's index build time and its memory (peak and after the load), and writes
check_latency.json to the workdir.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from harness import LINKAGE, REPO, ensure_world, install_config, report_failure, run_ours


def has_master(root: Path) -> bool:
    """A complete run of this world's job exists (the master can be built without a rerun)."""
    import sqlalchemy as sa

    db = root / "out" / "demo" / "linkage.sqlite"
    if not db.is_file():
        return False
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text(
                "SELECT count(*) FROM runs WHERE status = 'complete'")).scalar())
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def sample_records(data: Path, n: int, seed: int) -> list[dict]:
    """Single-check bodies: 40% registry persons enrolling in the urban scheme (a third with a
    typing error or no ID), 30% NCMS members as entered, 30% people never seen."""
    rng = random.Random(seed)
    police = pd.read_csv(data / "police.csv", dtype=str, keep_default_na=False)
    ncms = pd.read_csv(data / "ncms.csv", dtype=str, keep_default_na=False, encoding="gb18030")
    names = police["姓名"].tolist()
    out = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.4:
            r = police.iloc[rng.randrange(len(police))]
            rec = {"source": "urban", "name": r["姓名"], "id_number": r["公民身份号码"],
                   "birth_date": r["出生日期"].replace("-", ""),
                   "gender": "1" if r["性别"] == "男" else "2",
                   "township": r["苏木乡镇"], "village": r["嘎查村"]}
            error = rng.random()
            if error < 0.12:
                rec["id_number"] = ""
            elif error < 0.24 and len(rec["name"]) >= 2:
                rec["name"] = rec["name"][0] + " " + rec["name"][1:]
            elif error < 0.34 and len(rec["id_number"]) == 18:
                d = rec["id_number"]
                rec["id_number"] = d[:10] + d[11] + d[10] + d[12:]  # two digits swapped
        elif kind < 0.7:
            r = ncms.iloc[rng.randrange(len(ncms))]
            rec = {"source": "ncms", "name": r["成员姓名"], "id_number": r["身份证号"],
                   "birth_date": r["出生日期"], "gender": r["性别"], "household_id": r["家庭编号"],
                   "relation": r["与户主关系"], "township": r["乡镇"], "village": r["村"]}
        else:
            a, b = rng.choice(names), rng.choice(names)
            year, month, day = rng.randint(1940, 2024), rng.randint(1, 12), rng.randint(1, 28)
            body = f"150525{year}{month:02d}{day:02d}{rng.randint(100, 999)}"
            from stdnum.iso7064 import mod_11_2

            rec = {"source": "urban", "name": a[:1] + b[1:] or a,
                   "id_number": body + mod_11_2.calc_check_digit(body),
                   "birth_date": f"{year}-{month:02d}-{day:02d}", "gender": rng.choice("男女")}
        out.append(rec)
    return out


class _Tally:
    """What the checks sent came back with: latency (ms) by record, verdict counts, errors."""

    def __init__(self, n: int) -> None:
        self.latency = np.zeros(n)
        self.verdicts: dict[str, int] = {}
        self.errors: list[str] = []

    async def send(self, http, i: int, record: dict, start: float) -> None:
        """POST one check; its latency counts from ``start`` (perf_counter seconds)."""
        async with http.post("/api/v1/check", json=record) as answer:
            body = await answer.read()
        self.latency[i] = (time.perf_counter() - start) * 1000
        if answer.status != 200:
            self.errors.append(f"{answer.status} {body[:200]!r}")
        else:
            verdict = json.loads(body)["verdict"]
            self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1

    def raise_on_errors(self) -> None:
        if self.errors:
            raise SystemExit(f"{len(self.errors)} requests failed, first: {self.errors[0]}")


def open_loop(url: str, token: str, records: list[dict], rate: float, seed: int
              ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Checks arriving at ``rate`` per second at random (Poisson) times, as clerks' enrolments
    do, sent whether or not earlier ones are answered; (latencies in ms, verdicts).

    Each latency counts from the check's arrival time, so a queue building up in the server
    shows in the figures instead of slowing the arrivals. One asyncio loop sends them all with
    aiohttp (C-accelerated HTTP parsing): a thread per request, or a slower client, would spend
    the machine's CPU on the client's own work and add that to the server's figures.
    """
    import asyncio

    import aiohttp

    arrivals = np.cumsum(np.random.default_rng(seed).exponential(1 / rate, len(records)))
    tally = _Tally(len(records))

    async def one(http, i: int, rec: dict, begin: float) -> None:
        await asyncio.sleep(max(0.0, begin + arrivals[i] - time.perf_counter()))
        await tally.send(http, i, rec, begin + arrivals[i])

    async def main() -> None:
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(url, connector=connector,
                                         headers={"Authorization": f"Bearer {token}"}) as http:
            # The first arrival comes once every request's task exists and sleeps: creating
            # thousands of tasks takes the loop a moment, which is the generator's, not the
            # server's.
            begin = time.perf_counter() + 0.5
            await asyncio.gather(*(one(http, i, rec, begin) for i, rec in enumerate(records)))

    asyncio.run(main())
    tally.raise_on_errors()
    return tally.latency, arrivals, tally.verdicts


PHASES = ("run", "store", "refresh", "after")


def during_run(url: str, token: str, records: list[dict], rate: float, seed: int,
               config: Path, log_path: Path, server_pid: int, settle_s: float = 10.0) -> dict:
    """Checks arriving at ``rate``/s (open loop, latency from arrival) while `linkage run`
    re-runs the job and then while the server refreshes its master; figures per phase.

    Phases: ``run`` (the run's stages before it writes the store), ``store`` (its store stage:
    one write transaction on the store the server also reads), ``refresh`` (the run is done;
    the server notices the newer run and builds its master in the background while the old one
    answers), ``after`` (``settle_s`` seconds on the new master).
    """
    import asyncio

    import aiohttp

    rng = np.random.default_rng(seed)
    state = {"phase": "run", "stop": False, "times": {}, "most_rss_gb": 0.0}
    rows: list[tuple[str, float, int]] = []  # (phase at arrival, latency ms, HTTP status)

    async def one(http, rec: dict, arrived: float, phase: str) -> None:
        try:
            async with http.post("/api/v1/check", json=rec) as answer:
                await answer.read()
                status = answer.status
        except aiohttp.ClientError:
            status = 599
        rows.append((phase, (time.perf_counter() - arrived) * 1000, status))

    async def current_run(http) -> str | None:
        async with http.get("/api/v1/status") as answer:
            return (await answer.json()).get("run_id") if answer.status == 200 else None

    async def watch(http, child: subprocess.Popen, old_run: str) -> None:
        begin = time.perf_counter()
        while True:
            await asyncio.sleep(0.5)
            now = round(time.perf_counter() - begin, 1)
            # the server's processes together (two workers overlap while one replaces the other)
            state["most_rss_gb"] = max(state["most_rss_gb"], memory_of(server_pid)["rss_gb"])
            if state["phase"] == "run" and "] store ..." in log_path.read_text(errors="replace"):
                state["phase"], state["times"]["store"] = "store", now
            if state["phase"] in ("run", "store") and child.poll() is not None:
                if child.returncode != 0:
                    raise SystemExit(f"linkage run failed:\n{log_path.read_text()[-3000:]}")
                state["phase"], state["times"]["refresh"] = "refresh", now
            if state["phase"] == "refresh" and await current_run(http) not in (None, old_run):
                state["phase"], state["times"]["after"] = "after", now
                await asyncio.sleep(settle_s)
                state["stop"] = True
                return

    async def main() -> None:
        async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=64),
                                         headers={"Authorization": f"Bearer {token}"}) as http:
            old_run = await current_run(http)
            with open(log_path, "w") as log:
                child = subprocess.Popen([str(LINKAGE), "run", str(config)], stdout=log,
                                         stderr=subprocess.STDOUT, cwd=REPO)
            watcher = asyncio.create_task(watch(http, child, old_run))
            tasks, i, due = [], 0, time.perf_counter()
            while not state["stop"]:
                due += rng.exponential(1 / rate)
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                tasks.append(asyncio.create_task(one(http, records[i % len(records)], due,
                                                     state["phase"])))
                i += 1
                if watcher.done():
                    watcher.result()  # raises if the run failed
            await asyncio.gather(*tasks)
            child.wait()

    asyncio.run(main())
    out = {"phase_started_at_s": state["times"], "server_most_rss_gb": state["most_rss_gb"]}
    for phase in PHASES:
        lat = np.array([ms for ph, ms, _ in rows if ph == phase])
        codes = [st for ph, _, st in rows if ph == phase]
        if not len(lat):
            continue
        out[phase] = {"checks": len(lat), "p50": round(float(np.percentile(lat, 50)), 2),
                      "p99": round(float(np.percentile(lat, 99)), 2),
                      "max": round(float(lat.max()), 2),
                      "errors_5xx": sum(1 for c in codes if c >= 500),
                      "other_non_200": sum(1 for c in codes if c != 200 and c < 500)}
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_of(pid: int) -> dict:
    """VmHWM (peak) and VmRSS (now) in GB of the server: `serve --check-only` is a small
    supervisor whose worker processes hold the master, so the largest process of the tree
    counts (its peak, and the sum of what all hold now)."""
    peak = rss = 0
    for proc in _tree(pid):
        try:
            text = Path(f"/proc/{proc}/status").read_text()
        except OSError:
            continue
        kb = {k: int(v) for k, v in re.findall(r"^(VmHWM|VmRSS):\s+(\d+) kB", text, re.MULTILINE)}
        peak, rss = max(peak, kb.get("VmHWM", 0)), rss + kb.get("VmRSS", 0)
    return {"peak_rss_gb": round(peak / 2**20, 3), "rss_gb": round(rss / 2**20, 3)}


def _tree(pid: int) -> list[int]:
    """pid and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                pass
    return out


def load(url: str, token: str, records: list[dict], clients: int) -> tuple[np.ndarray, float, dict]:
    """Send every record once from ``clients`` clients; (latencies in ms, wall s, verdicts).

    Each client sends its next check as soon as the last is answered (closed loop: the
    server's saturation throughput, or with one client the latency of an idle server).
    """
    import asyncio

    import aiohttp

    tally = _Tally(len(records))
    todo = iter(range(len(records)))

    async def client(http) -> None:
        for i in todo:  # one shared iterator: each record is sent once, by whichever is free
            await tally.send(http, i, records[i], time.perf_counter())

    async def main() -> float:
        async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=clients),
                                         headers={"Authorization": f"Bearer {token}"}) as http:
            begin = time.perf_counter()
            await asyncio.gather(*(client(http) for _ in range(clients)))
            return time.perf_counter() - begin

    wall = asyncio.run(main())
    tally.raise_on_errors()
    return tally.latency, wall, tally.verdicts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--persons", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/linkage-bench"))
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--clients", type=int, default=4,
                   help="closed-loop clients for the saturation throughput")
    p.add_argument("--rate", type=float, default=25.0,
                   help="open-loop arrivals per second for the latency target (a prefecture's "
                        "desks enrol a few people a second at the busiest)")
    p.add_argument("--during-run", action="store_true",
                   help="measure checks while the job re-runs beside the server and while the "
                        "server swaps in the new run's master (instead of the steady figures)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))

    root = ensure_world(args.workdir, args.persons, args.seed)
    if not has_master(root):
        print(f"running the job on {args.persons:,} persons to build the master ...",
              file=sys.stderr)
        child, summary = run_ours(root, False)
        if summary is None:
            report_failure("linkage run", child)
            return 1
    config = install_config(root, False)
    data = root / "data" / "demo"

    from linkage.core.config import load_config
    from linkage.store import Store
    from linkage.store.tokens import create_token

    store = Store(load_config(config).store)
    # check_full: the scope that computes and sends every candidate's explanation (the
    # heavier answer), and whose records need not each carry a name and an ID or birthdate.
    token = create_token(store.engine, "benchmark", "check_full")[1]
    store.engine.dispose()

    port = free_port()
    log_path = args.workdir / f"check-server-{args.persons}.log"
    started = time.perf_counter()
    with open(log_path, "w") as log:
        # The benchmark's load is far over a token's record limit: lift it.
        server = subprocess.Popen([str(LINKAGE), "serve", str(config), "--check-only",
                                   "--port", str(port), "--check-full-rate", "none"],
                                  stdout=log, stderr=subprocess.STDOUT,
                                  cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        while True:
            try:
                if httpx.get(url + "/api/v1/openapi.json", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                raise SystemExit(f"server exited:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        ready_s = time.perf_counter() - started
        text = log_path.read_text()
        built = re.search(r"built in ([0-9.]+) s", text)
        build_s = float(built.group(1)) if built else None
        memory_ready = memory_of(server.pid)

        records = sample_records(data, args.warmup + args.requests, args.seed)
        load(url, token, records[:args.warmup], args.clients)
        if args.during_run:
            phases = during_run(url, token, records[args.warmup:], args.rate, args.seed, config,
                                args.workdir / f"rerun-{args.persons}.log", server.pid)
            memory = memory_of(server.pid)
            print(f"persons {args.persons:,}; checks at {args.rate:g}/s (open loop) while the "
                  f"job re-runs and the master refreshes (target p99 < 50 ms, no 5xx); phases "
                  f"began at {phases['phase_started_at_s']} s")
            for phase in PHASES:
                if phase in phases:
                    f = phases[phase]
                    print(f"  {phase:8} {f['checks']:6,} checks: p50 {f['p50']} ms, p99 "
                          f"{f['p99']} ms, max {f['max']} ms, 5xx {f['errors_5xx']}, "
                          f"other non-200 {f['other_non_200']}")
            print(f"server memory: largest process peak {memory['peak_rss_gb']} GB, now "
                  f"{memory['rss_gb']} GB; all its processes together at most "
                  f"{phases['server_most_rss_gb']} GB (two workers overlap during a swap)")
            out = args.workdir / "check_latency_during_run.json"
            out.write_text(json.dumps({"persons": args.persons, "rate_per_s": args.rate,
                                       "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                       "server_memory": memory, **phases}, indent=2))
            print(f"results: {out}")
            return 0
        # Open loop at --rate: the latency a clerk sees.
        opened, arrived, verdicts = open_loop(url, token, records[args.warmup:], args.rate,
                                              args.seed)
        latency, wall, _ = load(url, token, records[args.warmup:], args.clients)
        memory = memory_of(server.pid)
        single, _, _ = load(url, token, records[args.warmup:args.warmup + 500], 1)
    finally:
        server.terminate()
        server.wait(30)

    pct = {f"p{q}": round(float(np.percentile(latency, q)), 2) for q in (50, 95, 99)}
    pct["max"] = round(float(latency.max()), 2)
    one = {f"p{q}": round(float(np.percentile(single, q)), 2) for q in (50, 95, 99)}
    arrive = {f"p{q}": round(float(np.percentile(opened, q)), 2) for q in (50, 95, 99)}
    arrive["max"] = round(float(opened.max()), 2)
    # When the slowest checks arrived (s into the open loop): a periodic cause shows as a rhythm.
    slowest = [[round(float(arrived[i]), 2), round(float(opened[i]), 1)]
               for i in sorted(np.argsort(opened)[-5:])]
    result = {
        "benchmark": "check_latency", "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "persons": args.persons, "clients": args.clients, "requests": args.requests,
        "rate_per_s": args.rate, "open_loop_latency_ms": arrive,
        "open_loop_slowest_at_s_ms": slowest,
        "saturation_latency_ms": pct, "one_client_latency_ms": one,
        "throughput_per_s": round(args.requests / wall, 1), "verdicts": verdicts,
        "index_build_s": build_s, "server_ready_s": round(ready_s, 1),
        "server_memory_after_build": memory_ready, "server_memory_after_load": memory,
        "load_average": os.getloadavg(),
    }
    print(f"persons {args.persons:,}; master built in {build_s} s "
          f"(server ready in {ready_s:.1f} s)")
    print(f"{args.requests:,} single checks arriving at {args.rate:g}/s (open loop): "
          f"p50 {arrive['p50']} ms, p95 {arrive['p95']} ms, p99 {arrive['p99']} ms, "
          f"max {arrive['max']} ms  (target p99 <= 20 ms)")
    print("  slowest five (arrival s, ms): " + ", ".join(f"{t} s {ms} ms" for t, ms in slowest))
    print(f"{args.requests:,} single checks from {args.clients} closed-loop clients (saturation): "
          f"p50 {pct['p50']} ms, p95 {pct['p95']} ms, p99 {pct['p99']} ms, max {pct['max']} ms; "
          f"{result['throughput_per_s']} checks/s")
    print(f"one client (500 checks): p50 {one['p50']} ms, p95 {one['p95']} ms, p99 {one['p99']} ms")
    print(f"verdicts {verdicts}")
    print(f"server memory: peak {memory['peak_rss_gb']} GB, now {memory['rss_gb']} GB "
          f"(after build: {memory_ready['rss_gb']} GB); load average {os.getloadavg()[0]:.1f}")
    out = args.workdir / "check_latency.json"
    previous = json.loads(out.read_text()) if out.is_file() else []
    previous = previous if isinstance(previous, list) else [previous]
    out.write_text(json.dumps(previous + [result], indent=2), encoding="utf-8")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
