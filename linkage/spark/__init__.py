"""Parts of the Spark engine (``linkage.spark_engine``): session, pairs, training, scoring.

Each module is one stage over Spark DataFrames, driven by
:func:`linkage.spark_engine.score_candidates_spark`.
"""
