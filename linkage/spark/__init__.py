"""Parts of the Spark engine (``linkage.spark_engine``): session, pairs, scoring.

Each module is one stage over Spark DataFrames, driven by
:func:`linkage.spark_engine.score_candidates_spark`. What the engines compute is not here:
training, banding, the household step and the link-type filter are the local engine's own
functions (``linkage.scoring``, ``linkage.model``, ``linkage.household``, ``linkage.blocking``),
called on pattern counts, on pandas chunks or on the few pairs collected to the driver.
"""
