"""The check API served by a worker process that is replaced when a newer run completes.

Building a 1M-person master takes about two minutes of CPU and allocates millions of objects.
Done in a thread of the serving process it holds the interpreter lock and the garbage
collector for seconds at a time, and every clerk waits behind it (measured: checks took 1.3 s
at p50 and up to a minute while the master refreshed). So ``linkage serve --check-only``
runs a small supervisor instead:

* the supervisor binds the listening socket once and starts a worker process with it; the
  worker builds the master of the latest complete run, says it is ready, and serves;
* every ``refresh_seconds`` the supervisor asks the store for the job's latest complete run;
  when it is newer, it starts a second worker on the same socket, which builds the new master
  while the first one answers every check;
* once the new worker is ready, both accept connections for a moment; then the old worker
  drains: it stops listening and answers every request with ``Connection: close`` for
  ``DRAIN_S``, so busy clients move to the new worker on their next check instead of sending
  it down a kept-alive connection the old worker is about to close (seen: a check lost with
  "server disconnected" in a swap); then it is stopped gracefully (it finishes what it is
  answering and closes its connections). No check waits for a build, and no process ever holds
  two masters.

A worker that dies is started again; a new worker that fails to build keeps the old one
serving (the supervisor logs why and tries again at the next look). Each worker keeps its own
token cache and record limits: a swap starts the limits' windows afresh, once per run.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

READY_TIMEOUT_S = 3600.0  # a prefecture's master builds in minutes; a hung build is stopped
STOP_TIMEOUT_S = 30.0  # graceful shutdown of a replaced worker before it is killed
DRAIN_S = 1.0  # a replaced worker's answers say Connection: close this long before it stops
DRAIN_SIGNAL = signal.SIGUSR1


class Worker:
    """One serving process: started on the shared socket, ready once its master is built."""

    def __init__(self, proc: subprocess.Popen, ready_fd: int, lifeline_fd: int):
        self.proc = proc
        self._ready_fd = ready_fd
        self._lifeline_fd = lifeline_fd  # closing it tells the worker its supervisor is gone
        self.run_id: str | None = None

    @classmethod
    def start(cls, config_path: Path, store_url: str, sock: socket.socket,
              rates: dict | None) -> Worker:
        ready_r, ready_w = os.pipe()
        life_r, life_w = os.pipe()
        argv = [sys.executable, "-m", "linkage.web.workers", str(config_path),
                "--store", store_url, "--fd", str(sock.fileno()), "--ready-fd", str(ready_w),
                "--lifeline-fd", str(life_r), "--rates", json.dumps(rates or None)]
        proc = subprocess.Popen(argv, pass_fds=(sock.fileno(), ready_w, life_r))
        os.close(ready_w)
        os.close(life_r)
        return cls(proc, ready_r, life_w)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> bool:
        """True once the worker serves (its run id noted), False if it died or hung."""
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self._ready_fd], [], [], 1.0)
            if readable:
                chunk = os.read(self._ready_fd, 4096)
                if not chunk:  # the worker closed the pipe without a word: it died
                    break
                line += chunk
                if line.endswith(b"\n"):
                    os.close(self._ready_fd)
                    self._ready_fd = -1
                    word = line.decode().split()
                    self.run_id = word[1] if len(word) > 1 and word[1] != "-" else None
                    return True
            if self.proc.poll() is not None:
                break
        self.stop()
        return False

    def stop(self, drain: bool = False) -> None:
        """Graceful stop (SIGTERM: uvicorn finishes in-flight requests), then kill if need be;
        with ``drain``, first DRAIN_S of answers that close their connections."""
        if drain and self.proc.poll() is None:
            self.proc.send_signal(DRAIN_SIGNAL)
            time.sleep(DRAIN_S)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._ready_fd, self._lifeline_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._ready_fd = self._lifeline_fd = -1


def supervise(config, host: str, port: int, rates: dict | None,
              refresh_seconds: float = 60.0, store_url: str | None = None) -> None:
    """Serve the check API on host:port from replaceable workers until interrupted."""
    from linkage.store import Store

    store_url = store_url or config.store
    sock = socket.create_server((host, port))  # SO_REUSEADDR: a restart rebinds at once
    sock.set_inheritable(True)

    def interrupted(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    store = Store(store_url)
    worker = None
    try:
        worker = _started(config, store_url, sock, rates)
        while True:
            time.sleep(refresh_seconds)
            if worker is None or worker.proc.poll() is not None:
                print("check API: the worker stopped; starting another", file=sys.stderr)
                worker = _started(config, store_url, sock, rates)
                continue
            try:
                latest = store.last_complete_run(config.job)
            except Exception as exc:  # noqa: BLE001 - a busy or unreachable store: look again
                print(f"check API: could not ask the store for a newer run ({exc})",
                      file=sys.stderr)
                continue
            if latest is None or latest == worker.run_id:
                continue
            print(f"check API: run {latest} completed; building its master in a new worker "
                  f"while run {worker.run_id} answers", file=sys.stderr)
            replacement = _started(config, store_url, sock, rates)
            if replacement is None:
                print("check API: the new worker failed; run "
                      f"{worker.run_id} keeps answering", file=sys.stderr)
                continue
            worker.stop(drain=True)
            worker = replacement
            print(f"check API: now answering from run {worker.run_id}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        if worker is not None:
            worker.stop()
        store.close()
        sock.close()


def _started(config, store_url: str, sock: socket.socket, rates: dict | None
             ) -> Worker | None:
    worker = Worker.start(Path(config.path), store_url, sock, rates)
    return worker if worker.wait_ready() else None


def _worker_main(argv: list[str] | None = None) -> int:
    """A worker: build the master, say so on the ready pipe, serve on the inherited socket."""
    import argparse

    import uvicorn

    from linkage.core.config import load_config
    from linkage.web.access_log import log_config
    from linkage.web.app import check_only_app
    from linkage.web.check_api import preload

    p = argparse.ArgumentParser(description="a check-API worker (started by linkage serve)")
    p.add_argument("config", type=Path)
    p.add_argument("--store", required=True)
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--ready-fd", type=int, required=True)
    p.add_argument("--lifeline-fd", type=int, required=True)
    p.add_argument("--rates", default="null")
    args = p.parse_args(argv)
    config = load_config(args.config)
    # The supervisor looks for newer runs; this worker never rebuilds its master in place.
    app = check_only_app(config, args.store, json.loads(args.rates),
                         refresh_seconds=float("inf"))
    preload(app.state.check_api)
    master = app.state.check_api.state.holder.loaded
    if master is not None:
        _warm(master)
    draining = _Draining(app)
    server = uvicorn.Server(uvicorn.Config(draining, fd=args.fd, log_config=log_config(),
                                           proxy_headers=False))

    def drain(*_) -> None:  # the supervisor replaces this worker: stop listening, close as we go
        draining.on.set()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not serving yet, or no longer: nothing listens to close
            return
        loop.call_soon_threadsafe(lambda: [s.close() for s in server.servers])

    def orphaned() -> None:  # the supervisor is gone (its end of the lifeline closed)
        while os.read(args.lifeline_fd, 1):
            pass
        server.should_exit = True

    def announce() -> None:  # ready once uvicorn accepts, so no connection waits on a swap
        while not server.started and not server.should_exit:
            time.sleep(0.01)
        with os.fdopen(args.ready_fd, "w") as ready:
            ready.write(f"ready {master.run_id if master is not None else '-'}\n")

    signal.signal(DRAIN_SIGNAL, drain)
    threading.Thread(target=orphaned, name="lifeline", daemon=True).start()
    threading.Thread(target=announce, name="announce", daemon=True).start()
    server.run()
    # Leave without the interpreter's teardown: freeing a master's millions of objects one by
    # one takes seconds of CPU, which the worker that replaced this one needs for its checks.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class _Draining:
    """The worker's ASGI app; once ``on`` is set, every answer says ``Connection: close``
    (uvicorn then closes the connection after it), so the client reconnects to the worker
    that replaces this one."""

    def __init__(self, app):
        self.app, self.on = app, threading.Event()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def closing(message):
            if message["type"] == "http.response.start" and self.on.is_set():
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        return await self.app(scope, receive, closing)


def _warm(master, checks: int = 16) -> None:
    """A few checks of known persons before the worker says it is ready: the first checks of
    a fresh process otherwise pay for caches built on first use and for cold pages of the
    master, and they would be the first a swap hands the new worker."""
    from linkage.online.check import check_records

    n = len(master.entity_ids)
    source = master.sources[0]
    for code in range(0, n, max(1, n // checks)):
        golden = master.golden_row(code)
        record = {f: golden.get(f) for f in ("name", "id_number", "birth_date")
                  if f in master.fields and isinstance(golden.get(f), str)}
        if record.get("name") or record.get("id_number"):
            check_records(master, [{"source": source, **record}])


if __name__ == "__main__":
    sys.exit(_worker_main())
