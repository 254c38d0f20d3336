"""What each DAG calls, as IAM statements over its configured names, one module per DAG family. The settings'
defaults are the DAG params' defaults.

Each statement exists because a call in the DAG's tested run needs it (the coverage test fails on an unused
action); the comment on a statement names the operator or step that makes the calls.
"""

from include.iam.families import documents, foundation, lakehouse, ops, synthetic_vision, tabular  # noqa: F401  (each module registers its family)
