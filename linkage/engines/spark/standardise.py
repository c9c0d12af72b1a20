"""Standardisation on the executors: :func:`linkage.core.standardise.standardise_records` on pandas
chunks of the raw fields (``mapInPandas``), its columns collected back beside the raw records.

Every standardised value depends on its own record only (parsers per value, cross-field rules
per row), so the chunks give exactly the columns the whole frame would. The columns' types do
not depend on the data either: they are read off the standardisation of an empty frame, so the
schema is known before any record is parsed and the collected columns get the dtypes the local
engine's have.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from linkage.core import standardise
from linkage.engines.spark.pairs import _spark_column

POSITION = "__pos"  # the record's position, carried through the chunks; not a field name


def standardise_records(spark: SparkSession, records: pd.DataFrame,
                        fields: set[str]) -> pd.DataFrame:
    """``standardise_records(records, fields).reset_index(drop=True)``, computed in Spark.

    The raw fields cross to the executors as text (ingest gives text or None for every cell);
    only the standardised columns come back, and the raw columns are the driver's own.
    """
    names = sorted(fields)
    empty = standardise.standardise_records(
        pd.DataFrame({f: pd.Series([], dtype=object) for f in names}), fields)
    derived = [c for c in empty.columns if c in standardise.column_fields(fields)]
    dtypes = {c: empty[c].dtype for c in derived}
    schema = T.StructType([T.StructField(POSITION, T.LongType(), False)]
                          + [T.StructField(c, _spark_column(empty[c])[1], True) for c in derived])
    raw = records[names].reset_index(drop=True).assign(**{POSITION: np.arange(len(records))})
    frame = spark.createDataFrame(raw, T.StructType(
        [T.StructField(f, T.StringType(), True) for f in names]
        + [T.StructField(POSITION, T.LongType(), False)]))

    def run(batches):
        for pdf in batches:
            out = standardise.standardise_records(pdf, fields)
            yield out[[POSITION, *derived]]

    got = frame.mapInPandas(run, schema).toPandas().sort_values(POSITION, kind="stable")
    if len(got) != len(records):
        raise RuntimeError(f"Spark standardised {len(got)} of {len(records)} records")
    out = records.reset_index(drop=True).copy(deep=False)
    for col in derived:  # raw fields a standardiser rewrites keep their place, as locally
        out[col] = got[col].to_numpy().astype(dtypes[col], copy=False)
    return out

