"""Parts of the Spark engine (``linkage.engines.spark.engine``): session, pairs, scoring.

Each module is one stage over Spark DataFrames, driven by
:func:`linkage.engines.spark.engine.score_candidates_spark`. What the engines compute is not here:
training, banding, the household step and the link-type filter are the local engine's own
functions (``linkage.engines.local``, ``linkage.core.model``, ``linkage.core.household``,
``linkage.core.blocking``), called on pattern counts, on pandas chunks or on the few pairs
collected to the driver.
"""
