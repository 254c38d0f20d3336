"""Least-privilege IAM for the DAG families: declarations (families.py), generation (policies.py), the roles in an
account (roles.py). Generated JSON lives in generated/."""
