"""Rekognition Custom Labels helpers for the DAGs: label imports, the trained-versions ledger, and charts."""
