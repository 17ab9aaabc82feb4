# The README's commands. `make demo` and `make test` install everything they need.
.PHONY: setup demo test test-fast ui lint bench clean

export TRIANGULATE_HOME ?= $(CURDIR)/data
VENV := .venv/bin

setup:
	@scripts/bootstrap.sh

demo: setup
	$(VENV)/triangulate demo

test: setup
	@scripts/setup_test_services.sh
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/pytest -q

test-fast: setup
	$(VENV)/pytest -q -m "not slow"

ui: setup
	DAGSTER_HOME=$$($(VENV)/python -c 'from dagster_project.paths import ensure_dagster_home; print(ensure_dagster_home())') \
	  $(VENV)/dagster dev -m dagster_project.definitions -h 127.0.0.1 -p 3000

lint: setup
	$(VENV)/ruff check . && $(VENV)/ruff format --check .

clean:
	rm -rf .venv .tools dbt_project/target
