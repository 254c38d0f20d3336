"""Operations jobs: what the DAGs in dags/ops/ call."""
