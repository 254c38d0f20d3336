"""Spark jobs submitted by the DAGs (spark-submit or EMR Serverless). Each file is self-contained: no project imports."""
