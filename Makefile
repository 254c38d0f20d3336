# Entry points for the whole project. Every target bootstraps what it needs first:
#   apt packages from packages.txt and packages-dev.txt (installed when root, otherwise the exact sudo line is printed),
#   then .venv (Python 3.11) with requirements-dev.txt pinned by constraints.txt, and localcloud/ installed editable.
# Run `make help` for the list.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3.11
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# ---------------------------------------------------------------------------------------------------------------------
# Environment shared by every target (and every subprocess: airflow, scripts, pytest).
# ---------------------------------------------------------------------------------------------------------------------
export PATH := $(BIN):$(PATH)
export PYTHONPATH := $(CURDIR)
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False

export LOCALCLOUD_PORT ?= 4566
export LOCALCLOUD_DATA_DIR ?= $(CURDIR)/.localcloud
export STACK_RUN_DIR ?= $(CURDIR)/.run
# LOCAL-ONLY credentials of the loopback localcloud endpoint. They are not AWS secrets and unlock nothing else.
export LOCALCLOUD_ACCESS_KEY_ID ?= localcloud
export LOCALCLOUD_SECRET_ACCESS_KEY ?= localcloud-secret
# Offline mode: every AwsBaseHook (aws_default) talks to localcloud. For real AWS, override this variable
# (e.g. AIRFLOW_CONN_AWS_DEFAULT='aws://?region_name=eu-west-1') or set it empty and use an IAM role.
export AIRFLOW_CONN_AWS_DEFAULT ?= {"conn_type":"aws","login":"$(LOCALCLOUD_ACCESS_KEY_ID)","password":"$(LOCALCLOUD_SECRET_ACCESS_KEY)","extra":{"endpoint_url":"http://127.0.0.1:$(LOCALCLOUD_PORT)","region_name":"us-east-1"}}

# Lakehouse: Spark runs in local mode by default (SparkSubmitOperator's spark_default); the Delta tables go here.
export AIRFLOW_CONN_SPARK_DEFAULT ?= {"conn_type":"spark","host":"local[*]"}
export LAKEHOUSE_URI ?= file://$(CURDIR)/.lakehouse
# Ops: the read-only replica tenant_data_extraction reads (build a sample: python -m include.ops.tenants.replica build).
export TENANT_REPLICA_URI ?= sqlite:///$(CURDIR)/.run/tenant-replica.db

APT_PACKAGES := $(shell sed -e 's/\#.*//' packages.txt packages-dev.txt 2>/dev/null | xargs)
PYTEST_ARGS ?= --durations=25

.PHONY: help bootstrap apt-packages pip-check spark-jars test lint fmt demo up down bench clean migrate constraints

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# ---------------------------------------------------------------------------------------------------------------------
# Bootstrap
# ---------------------------------------------------------------------------------------------------------------------
bootstrap: apt-packages $(STAMP) ## apt packages (if root) + .venv; instant when nothing changed

apt-packages:
	@missing=""; \
	for pkg in $(APT_PACKAGES); do \
	  status=$$(dpkg-query -W -f='$${db:Status-Status}' "$$pkg" 2>/dev/null || true); \
	  [[ "$$status" == installed ]] || missing="$$missing $$pkg"; \
	done; \
	if [[ -n "$$missing" ]]; then \
	  if [[ $$(id -u) -eq 0 ]]; then \
	    echo "==> apt-get install$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "WARNING: missing apt packages. Install them with:"; \
	    echo "  sudo apt-get install -y$$missing"; \
	  fi; \
	fi

$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt constraints.txt localcloud/pyproject.toml
	@if [[ ! -x $(BIN)/python ]]; then \
	  command -v $(PYTHON) >/dev/null || { echo "ERROR: $(PYTHON) not found (set PYTHON=/path/to/python3.11)"; exit 1; }; \
	  echo "==> creating .venv with $(PYTHON)"; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	@echo "==> pip install -r requirements-dev.txt -c constraints.txt"
	@$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt -c constraints.txt
	@echo "==> pip install -e './localcloud[emr,glue,test]' -c constraints.txt"
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e './localcloud[emr,glue,test]' -c constraints.txt
	@$(MAKE) pip-check
	@touch $@

# The Maven jars the Delta Lake job needs (Delta, and hadoop-aws with the AWS SDK bundle for s3a://), resolved by
# Spark's Ivy into ~/.ivy2.5.2 once, so that no test or task waits on Maven Central. Instant when they are there.
spark-jars: bootstrap ## fetch the Spark jars (Delta, hadoop-aws) from Maven Central once
	@python -m include.lakehouse.jars

# pip check, minus the conflicts we choose on purpose (requirements-nodeps.txt explains them).
pip-check:
	@out=$$($(BIN)/python -m pip check 2>&1 | grep -v -i -e '^pyrender 0\.1\.45 has requirement pyopengl==3\.1\.0' \
	  -e '^delta-spark 4\.4\.0 has requirement importlib.metadata<=8\.7\.1' || true); \
	if [[ -n "$$out" && "$$out" != "No broken requirements found." ]]; then echo "$$out"; exit 1; fi; \
	echo "pip check: ok (pyrender's PyOpenGL and delta-spark's importlib_metadata pins deliberately overridden)"

# Regenerate constraints.txt from the current venv (after changing requirements*.txt on purpose).
constraints: ## Refreeze constraints.txt from .venv
	@$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e './localcloud[emr,glue,test]'
	@{ sed -n '/^#/p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e '; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt
	@touch $(STAMP)
	@echo "constraints.txt: $$(grep -vc '^#' constraints.txt) pins"

migrate: bootstrap
	@mkdir -p $(AIRFLOW_HOME)
	@airflow db migrate >$(AIRFLOW_HOME)/db-migrate.log 2>&1 || { cat $(AIRFLOW_HOME)/db-migrate.log; exit 1; }
	@# Render tasks take every core of a worker; the pool lets one run at a time per GPU worker (kept if resized).
	@airflow pools get gpu_render >/dev/null 2>&1 || airflow pools set gpu_render 1 "render_shard slots: one per GPU worker" >/dev/null
	@# Custom Labels trainings wait deferred for hours; the pool counts deferred tasks so it caps real trainings.
	@airflow pools get rekognition_training >/dev/null 2>&1 || airflow pools set rekognition_training 2 \
		"Custom Labels trainings at once (deferred included)" --include-deferred >/dev/null
	@# digitize_bank_statements: Textract jobs in flight and A2I human loops open at once (deferred included).
	@airflow pools get textract_jobs >/dev/null 2>&1 || airflow pools set textract_jobs 4 \
		"Textract jobs in flight (deferred included)" --include-deferred >/dev/null
	@airflow pools get human_loops >/dev/null 2>&1 || airflow pools set human_loops 20 \
		"A2I human loops open at once (deferred included)" --include-deferred >/dev/null

# ---------------------------------------------------------------------------------------------------------------------
# Everyday targets
# ---------------------------------------------------------------------------------------------------------------------
lint: bootstrap ## ruff check + ruff format --check
	ruff check .
	ruff format --check .

fmt: bootstrap ## ruff format + ruff check --fix
	ruff format .
	ruff check --fix .

# Two products, two pytest sessions: the Airflow project's tests/, then localcloud's own tests in localcloud/ with
# no PYTHONPATH, so that nothing of the project is even importable there. One session for both would also load
# Mesa's LLVM (rendering tests) before torch's triton, which segfaults.
# pytest gets its own AIRFLOW_HOME (the conftests make a temp one), never the developer's .airflow/.
# Exit code 5 ("no tests collected") counts as a failure.
test: lint spark-jars ## lint, then the project's pytest suite and localcloud's
	@rc=0; env -u AIRFLOW_HOME pytest $(PYTEST_ARGS) tests || rc=$$?; \
	lc=0; (cd localcloud && env -u AIRFLOW_HOME -u PYTHONPATH pytest $(PYTEST_ARGS) tests) || lc=$$?; \
	for code in $$rc $$lc; do if [[ $$code -eq 5 ]]; then echo "ERROR: pytest collected no tests"; exit 1; fi; done; \
	if [[ $$rc -ne 0 ]]; then echo "FAILED: the project's suite (tests/) exited $$rc"; fi; \
	if [[ $$lc -ne 0 ]]; then echo "FAILED: localcloud's suite (localcloud/tests/) exited $$lc"; fi; \
	if [[ $$rc -ne 0 || $$lc -ne 0 ]]; then exit 1; fi

demo: migrate spark-jars ## start localcloud, run the demo DAGs with `airflow dags test`, print artifacts
	@python -u scripts/demo.py

up: migrate ## start localcloud + airflow standalone (UI :8080) in the background
	@python -u scripts/stack.py up

down: ## stop what `make up` started
	@if [[ -x $(BIN)/python ]]; then $(BIN)/python -u scripts/stack.py down; else $(PYTHON) -u scripts/stack.py down; fi

bench: spark-jars ## run every benchmarks/*.py (each prints one table)
	@for f in benchmarks/*.py; do echo "==> $$f"; python -u "$$f"; done

clean: down ## stop the stack, remove .airflow .localcloud .run .lakehouse (keeps .venv)
	rm -rf $(CURDIR)/.airflow $(CURDIR)/.localcloud $(CURDIR)/.run $(CURDIR)/.lakehouse
