"""Helpers the review-app tests share (plain functions; fixtures live in conftest.py)."""
from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher
from demo_config import write_demo_config

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "out" / "artifacts"
PG_URL = os.environ.get("LINKAGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Cheap hashes keep sign-in fast in tests; verification reads the cost from the hash itself.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse 1"
SECRET = "test-secret"  # the secret key of the test apps and servers
USERS = {"alice": "reviewer", "bob": "reviewer", "carol": "reviewer", "dan": "reviewer",
         "sam": "supervisor", "ada": "admin"}


def write_config(world: Path, tmp: Path, store_url: str) -> Path:
    """The demo config over the small world, with an output folder and store of its own.

    The u-probabilities are estimated from 50,000 random pairs instead of 500,000: a tenth of
    the training time, and the same review pairs to within one on this world.
    """
    return write_demo_config(world / "configs" / f"demo-{tmp.name}.yaml", tmp / "out", store_url,
                             fast_training=True)


def copy_run(source_db: Path, url: str, whole: bool = False) -> None:
    """Copy the session run (runs, scored pairs and household correspondences: all the app
    reads; `whole`: its entities and golden records too) into the store at url."""
    from linkage.store import (
        Store,
        entity_members,
        golden,
        household_correspondences,
        runs,
        scored_pairs,
    )

    src = sa.create_engine(f"sqlite:///{source_db}")
    dst = Store(url).engine
    try:
        with src.connect() as a, dst.begin() as b:
            for table in (runs, scored_pairs, household_correspondences,
                          *((entity_members, golden) if whole else ())):
                rows = [dict(r) for r in a.execute(sa.select(table)).mappings()]
                if rows:
                    b.execute(table.insert(), rows)
    finally:
        src.dispose()
        dst.dispose()


def add_users(url: str) -> None:
    from linkage.store import Store
    from linkage.store.accounts import create_user

    engine = Store(url).engine
    try:
        for name, role in USERS.items():
            create_user(engine, name, PASSWORD, role, hasher=FAST_HASHER)
    finally:
        engine.dispose()


def pair_url_token(ref) -> str:
    """The URL token a test app or server (secret SECRET) gives a queue.PairRef."""
    from linkage.web.queue import url_token

    return url_token(SECRET.encode("utf-8"), ref.token)


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def login(client, username: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    token = csrf_of(client.get("/login").text)
    for _ in range(20):  # many sign-ins at once may find both hash slots busy: wait as told
        response = client.post("/login", data={"username": username, "password": password,
                                               "csrf_token": token})
        if response.status_code != 503:
            break
        time.sleep(float(response.headers.get("retry-after", 1)))
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/queue").text)


def wait_until_serving(http, proc, log_path: Path, path: str = "/api/v1/openapi.json",
                       timeout: float = 120.0) -> None:
    """Poll ``path`` until the server process answers 200; fail with its log if it dies or
    does not answer in time."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if http.get(path).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.25)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app):
    """The app under a real uvicorn server on a free loopback port, in a thread."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


def save_artifact(path: Path) -> Path:
    """Copy a test artefact to out/artifacts/ (ignored by git) for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / path.name
    shutil.copy(path, target)
    return target


@contextmanager
def server_process(config: Path, secret: str = SECRET):
    """`linkage serve CONFIG` as a real process on a free port; yields (base URL, process).

    The process is killed when the block ends (if the test has not killed it already)."""
    import signal
    import subprocess
    import sys

    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "linkage.cli", "serve", str(config), "--port", str(port)],
        env={**os.environ, "LINKAGE_SECRET_KEY": secret}, cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"linkage serve exited with {proc.returncode}")
            try:
                if httpx.get(base + "/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("linkage serve did not start")
            time.sleep(0.1)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(30)


REGISTRY_REFUSAL = re.compile(r"would put registry records (\S+?):(\S+) and (\S+?):(\S+) ")


def registry_refusal(queue):
    """(pair, first, second): the first pair of the queue whose refused merge names two
    registry records, and those records' keys."""
    for pair in queue.candidates():
        found = REGISTRY_REFUSAL.match(pair.reason)
        if found and pair.refused_merge:
            return pair, (found.group(1), found.group(2)), (found.group(3), found.group(4))
    raise AssertionError("the test run has no refused merge of two registry records")


def world_with_another_id(world: Path, target: Path, record_id: str) -> Path:
    """A copy of the world's data in which the police record ``record_id`` carries another valid
    ID number (same birth date and gender): a refused merge naming it then joins two registry
    persons with different ID numbers, a CONFLICT if a reviewer says 同一人."""
    import csv

    from stdnum.iso7064 import mod_11_2

    shutil.copytree(world / "data", target / "data")
    (target / "configs").mkdir(parents=True, exist_ok=True)
    path = target / "data" / "demo" / "police.csv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    column = rows[0].index("公民身份号码")
    [row] = [r for r in rows[1:] if r[0] == record_id]
    old = row[column]
    body = old[:14] + str((int(old[14]) + 1) % 10) + old[15:17]
    row[column] = body + mod_11_2.calc_check_digit(body)
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return target
