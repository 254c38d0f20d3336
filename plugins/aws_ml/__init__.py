"""Our small provider for what apache-airflow-providers-amazon lacks (Rekognition Custom Labels, ...)."""
