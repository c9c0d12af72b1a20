"""Engines that execute the core rules: the local engine and Apache Spark."""
