"""The Spark session a job runs in, built from the config's ``spark`` mapping.

``master`` picks the cluster (the config's, else the one ``spark-submit`` or
``PYSPARK_SUBMIT_ARGS`` names, else ``local[2]``); every other key is passed to Spark as
configuration. In local mode the Python workers run on this interpreter, so they import the
same packages; on a cluster ``spark.pyspark.python`` (or ``PYSPARK_PYTHON``) names the
executors' interpreter. A session that is already
active (a notebook, a test, ``spark-submit``'s own) is reused as it is.
"""
from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

DEFAULT_MASTER = "local[2]"
LOCAL_SHUFFLE_PARTITIONS = 8  # Spark's 200 is for clusters; tiny tasks cost more than they do
LOCAL_DRIVER_MEMORY = "4g"
ARROW_BATCH_ROWS = 50_000  # pairs per pandas chunk handed to the comparers


def spark_session(settings: dict[str, Any], progress: bool = False):
    """The active session, or a new one for ``settings`` (the job config's ``spark`` key)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "engine 'spark' needs pyspark and pyarrow: pip install 'hukou-linkage[spark]'"
        ) from exc

    spark = SparkSession.getActiveSession()
    if spark is None:
        _find_java()
        master = _master(settings)
        local = master.startswith("local")
        if settings.get("spark.pyspark.python"):
            # Spark documents this key for the executors' Python, but a session started from
            # Python (not spark-submit) only reads the environment variable.
            os.environ["PYSPARK_PYTHON"] = str(settings["spark.pyspark.python"])
        elif local:
            # Workers must import pandas and the matchers: run them on this interpreter.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        conf = {
            "spark.ui.showConsoleProgress": "true" if progress else "false",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
        }
        if local:
            # In local mode the driver's heap holds every cached pair: Spark's 1g is too small.
            conf["spark.driver.memory"] = LOCAL_DRIVER_MEMORY
        conf.update({k: _text(v) for k, v in settings.items() if k != "master"})
        builder = SparkSession.builder.appName("linkage").master(master)
        for key, value in conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
    # SQL settings are per session: apply them to a reused session too, and replace Spark's
    # defaults where they do not suit this workload (tiny tasks locally, large pandas chunks).
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    if spark.sparkContext.master.startswith("local"):
        _default("spark.sql.shuffle.partitions", "200", LOCAL_SHUFFLE_PARTITIONS, spark)
    _default("spark.sql.execution.arrow.maxRecordsPerBatch", "10000", ARROW_BATCH_ROWS, spark)
    for key, value in settings.items():
        if key.startswith("spark.sql."):
            spark.conf.set(key, _text(value))
    return spark


def _default(key: str, spark_default: str, ours: int, spark) -> None:
    if spark.conf.get(key) == spark_default:
        spark.conf.set(key, str(ours))


def _master(settings: dict[str, Any]) -> str:
    """The config's master, else the one spark-submit or PYSPARK_SUBMIT_ARGS names, else local."""
    if settings.get("master"):
        return str(settings["master"])
    if "PYSPARK_GATEWAY_PORT" in os.environ:  # started by spark-submit: its JVM knows
        from pyspark import SparkConf

        return SparkConf().get("spark.master", DEFAULT_MASTER)
    args = shlex.split(os.environ.get("PYSPARK_SUBMIT_ARGS", ""))
    if "--master" in args[:-1]:
        return args[args.index("--master") + 1]
    return DEFAULT_MASTER


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _find_java() -> None:
    """Spark needs a JVM: JAVA_HOME, or set it from the ``java`` on PATH."""
    if os.environ.get("JAVA_HOME"):
        return
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("engine 'spark' needs Java 17 or later: install a JDK or set JAVA_HOME")
    os.environ["JAVA_HOME"] = str(Path(java).resolve().parent.parent)
