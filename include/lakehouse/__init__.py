"""Lakehouse helpers for the Delta Lake DAG: Spark settings (no pyspark import) and the step operator glue."""
