"""The Airflow project's tests. localcloud's own tests live in localcloud/tests."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
