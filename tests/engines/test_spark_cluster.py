"""The Spark engine on a real Spark standalone cluster: a master and two one-core workers started
on this machine with the pyspark package's ``spark-class``, and the demo job run against them.

Standardisation and clustering run on the executors (separate JVMs and Python workers, which
import the project from the virtualenv's interpreter); the results equal the local engine's.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linkage.core import cluster as core
from linkage.core.config import load_config
from linkage.jobs.run import run
from linkage.store import Store
from matchers.base import as_objects, is_compacted

pytest.importorskip("pyspark")
pytest.importorskip("pyarrow")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (os.environ.get("JAVA_HOME") or shutil.which("java")),
                       reason="a Spark standalone cluster needs Java (none on PATH or JAVA_HOME)"),
]

WORKERS = 2
START_TIMEOUT = 120  # seconds for the master to answer and both workers to register
WORKER_MEMORY = "1g"  # what a worker offers; its executor takes EXECUTOR_MEMORY of it
EXECUTOR_MEMORY = "512m"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Standalone:
    """A Spark standalone master and workers on 127.0.0.1, each a process group of its own, so
    that stopping a worker also stops the executors and Python workers it started."""

    def __init__(self, folder: Path):
        import pyspark

        self.home = Path(pyspark.__file__).parent
        self.folder = folder
        self.port, self.ui = _free_port(), _free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.env = os.environ | {
            "SPARK_HOME": str(self.home), "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_NO_DAEMONIZE": "1", "PYSPARK_PYTHON": sys.executable,
            # No REST submission server: it would take port 6066, shared by the machine.
            "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
        }
        if not os.environ.get("JAVA_HOME"):
            java = Path(shutil.which("java")).resolve()
            self.env["JAVA_HOME"] = str(java.parent.parent)

    def start(self) -> None:
        self._spawn("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(self.port), "--webui-port", str(self.ui))
        self._wait(lambda state: True, "the master to answer")
        for i in range(WORKERS):
            work = self.folder / f"worker{i}"
            work.mkdir()
            self._spawn(f"worker{i}", "org.apache.spark.deploy.worker.Worker", "--host",
                        "127.0.0.1", "--cores", "1", "--memory", WORKER_MEMORY, "--webui-port",
                        "0", "--work-dir", str(work), self.url)
        self._wait(lambda state: state["aliveworkers"] == WORKERS,
                   f"{WORKERS} workers to register")

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers (and their executors) before the master
            self._signal(proc, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n" + "\n".join(
            p.read_text(errors="replace").splitlines()[-20:])
            for p in sorted(self.folder.glob("*.log")))

    def _spawn(self, name: str, main_class: str, *args: str) -> None:
        with open(self.folder / f"{name}.log", "wb") as log:
            self.procs.append(subprocess.Popen(
                [str(self.home / "bin" / "spark-class"), main_class, *args], cwd=self.folder,
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"a Spark process exited while waiting for {what}\n"
                                   + self.logs())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.ui}/json/", timeout=2) as r:
                    if ready(json.load(r)):
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"timed out after {START_TIMEOUT} s waiting for {what}\n"
                           + self.logs())

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)  # the group started for this process only
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    cluster = Standalone(tmp_path_factory.mktemp("standalone"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def settings(standalone) -> dict:
    """The job config's ``spark`` mapping for the standalone cluster."""
    return {
        "master": standalone.url,
        "spark.pyspark.python": sys.executable,  # the venv: it imports linkage (editable)
        "spark.executor.memory": EXECUTOR_MEMORY,
        "spark.executor.cores": 1,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.sql.shuffle.partitions": 4,
        "spark.ui.enabled": False,
    }


@pytest.fixture(scope="module")
def spark(settings):
    from pyspark.sql import SparkSession

    from linkage.engines.spark.session import spark_session

    active = SparkSession.getActiveSession()
    if active is not None:  # a local-mode session of an earlier module would be reused
        active.stop()
    previous = os.environ.get("PYSPARK_PYTHON")
    session = spark_session(settings)
    try:
        assert session.sparkContext.master == settings["master"]
        _wait_for_executors(session)
        yield session
    finally:
        session.stop()
        if previous is None:
            os.environ.pop("PYSPARK_PYTHON", None)
        else:
            os.environ["PYSPARK_PYTHON"] = previous


def _wait_for_executors(session, timeout: float = 60) -> None:
    """Until both workers' executors have registered with the driver (the driver counts too)."""
    status = session.sparkContext._jsc.sc().getExecutorMemoryStatus()
    deadline = time.monotonic() + timeout
    while status.size() < WORKERS + 1 and time.monotonic() < deadline:
        time.sleep(0.5)
        status = session.sparkContext._jsc.sc().getExecutorMemoryStatus()
    assert status.size() == WORKERS + 1, "the executors did not register"


def _task_folders(session) -> set[str]:
    """Where Python tasks ran: a worker starts each executor in a folder of its work dir
    (worker0/app-…/0), and the Python workers inherit it."""
    rdd = session.sparkContext.parallelize(range(8), 8)
    return set(rdd.mapPartitions(lambda _: iter([os.getcwd()])).collect())


def test_python_tasks_run_on_both_workers_executors(spark, standalone):
    folders = {Path(f).relative_to(standalone.folder).parts[0] for f in _task_folders(spark)}
    assert folders == {f"worker{i}" for i in range(WORKERS)}


def test_standardisation_on_the_executors_equals_local(small_world, spark):
    from linkage.core.standardise import standardise_records
    from linkage.engines.spark import standardise
    from linkage.jobs.ingest import ingest

    config = load_config(small_world / "configs" / "demo.yaml")
    fields = {f for s in config.sources for f in s.fields}
    raw = ingest(config.sources).records
    pd.testing.assert_frame_equal(standardise.standardise_records(spark, raw, fields),
                                  standardise_records(raw, fields).reset_index(drop=True))


def _graph(seed: int, n: int = 400, m: int = 300):
    """Random match edges with few distinct weights (ties), authority records, reviewers'
    merges and non-matches: sparse, as match edges are, yet many components need rebuilding."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = a != b
    left, right = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    order = np.lexsort((right, left))  # pairs in position order, as the engines give them
    left, right = left[order], right[order]
    weight = rng.choice([4.0, 7.5, 9.0], len(left))
    return dict(n=n, left=left, right=right, weight=weight, authority=rng.random(n) < 0.25,
                must_link=(rng.integers(0, n, 12), rng.integers(0, n, 12)),
                cannot_link=(rng.integers(0, n, 30), rng.integers(0, n, 30)))


def test_clustering_in_spark_equals_local_clustering(spark):
    """With exclusive records too (``linkage add``'s); the demo job below clusters without."""
    from linkage.engines.spark import cluster

    graph = _graph(2)
    graph["exclusive"] = np.random.default_rng(12).random(graph["n"]) < 0.05
    expected = core.cluster(**graph)
    got = cluster.cluster(spark, **graph)
    assert len(expected.refused) > 5  # the greedy ran, and refused edges of tied weights
    np.testing.assert_array_equal(got.labels, expected.labels)
    np.testing.assert_array_equal(got.refused, expected.refused)


def test_clustering_without_edges(spark):
    from linkage.engines.spark import cluster

    got = cluster.cluster(spark, 5, np.empty(0, int), np.empty(0, int), np.empty(0),
                          np.zeros(5, bool))
    np.testing.assert_array_equal(got.labels, np.arange(5))
    assert len(got.refused) == 0


def _decisions(truth: pd.DataFrame) -> list:
    """Reviewers' decisions that make the constrained clustering work: a non-match on a person's
    police and NCMS records (the urban record can still join them), a match of two registry
    persons (two authority records in one component) and a match of two strangers' NCMS and
    urban records (a pair no blocking rule makes)."""
    def key(row):
        return (row["source"], row["record_id"])

    people = [g for _, g in truth.groupby("person_id")]
    three = next(g for g in people if {"police", "ncms", "urban"} <= set(g["source"]))
    others = truth[truth["person_id"] != three["person_id"].iloc[0]]
    police = others[others["source"] == "police"]
    ncms = others[others["source"] == "ncms"]
    urban = others[(others["source"] == "urban")
                   & (others["person_id"] != ncms["person_id"].iloc[0])]
    first = {s: three[three["source"] == s].iloc[0] for s in ("police", "ncms")}
    return [(key(first["police"]), key(first["ncms"]), "non_match"),
            (key(police.iloc[0]), key(police.iloc[1]), "match"),
            (key(ncms.iloc[0]), key(urban.iloc[-1]), "match")]


def _entities(clusters: pd.DataFrame) -> set:
    return {frozenset(zip(g["source"], g["record_id"])) for _, g in clusters.groupby("entity_id")}


@pytest.fixture(scope="module")
def demo_on_both(small_world, tmp_path_factory, spark, settings):
    truth = pd.read_csv(small_world / "data" / "demo" / "truth.csv", dtype=str)
    results, seconds = {}, {}
    for engine in ("local", "spark"):
        tmp = tmp_path_factory.mktemp(f"demo-{engine}")
        config = load_config(small_world / "configs" / "demo.yaml", {
            "engine": engine, "spark": settings,
            "output": str(tmp / "out"), "store": f"sqlite:///{tmp / 'store.sqlite'}"})
        store = Store(config.store)
        for a, b, decision in _decisions(truth):
            store.add_decision(a, b, decision, "tester")
        store.engine.dispose()
        start = time.perf_counter()
        results[engine] = run(config)
        seconds[engine] = time.perf_counter() - start
    print(f"demo job: local {seconds['local']:.1f} s, standalone Spark {seconds['spark']:.1f} s")
    return results


def test_demo_job_on_the_cluster_gives_the_local_entities(demo_on_both, spark):
    local, spark_run = demo_on_both["local"], demo_on_both["spark"]
    assert spark_run.summary["engine"] == "spark"
    assert _entities(spark_run.clusters) == _entities(local.clusters)
    ids = local.clusters.merge(spark_run.clusters, on=["source", "record_id"])
    assert len(ids) == len(local.clusters)
    assert (ids["entity_id_x"] == ids["entity_id_y"]).all()
    # the local engine holds text columns of few values as categories (memory); same values
    pd.testing.assert_frame_equal(spark_run.records, _plain(local.records))
    for key in ("blocking", "bands", "entities"):
        assert spark_run.summary[key] == local.summary[key], key
    pd.testing.assert_frame_equal(spark_run.review, local.review)
    # The decisions put constraints to work: clustering refused edges, in the same order.
    refused = local.review[local.review["reason"].astype(str).str.startswith("would ")]
    assert len(refused)


def _plain(records: pd.DataFrame) -> pd.DataFrame:
    """The records with compacted columns (categories, Arrow text) back as plain text (None
    where missing)."""
    out = records.copy()
    for col in out.columns:
        if is_compacted(out[col]):
            out[col] = pd.Series(as_objects(out[col]), index=out.index, dtype=object)
    return out
