# The README's commands. `make demo` and `make test` install everything they need.
.PHONY: setup demo test test-fast ui lint clean bench bench-simulator bench-ingest bench-receiver bench-dbt bench-mta bench-mmm bench-geo bench-quality bench-end-to-end

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
	$(VENV)/pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=20
	$(VENV)/pytest -q -m full_scale --durations=5

test-fast: setup
	$(VENV)/pytest -q -m "not slow"

ui: setup
	DAGSTER_HOME=$$($(VENV)/python -c 'from dagster_project.instance import ensure_dagster_home; print(ensure_dagster_home())') \
	  $(VENV)/dagster dev -m dagster_project.definitions -h 127.0.0.1 -p 3000

lint: setup
	$(VENV)/ruff check . && $(VENV)/ruff format --check .

# Benchmarks: each writes benchmarks/results/<name>.json (summary: docs/benchmarks.md).
bench-simulator: setup
	$(VENV)/python benchmarks/bench_simulator.py
bench-ingest: setup
	$(VENV)/python benchmarks/bench_ingest.py --scale full
bench-receiver: setup
	$(VENV)/python benchmarks/bench_receiver.py
bench-dbt: setup
	$(VENV)/python benchmarks/bench_dbt.py --scale full
bench-mta: setup
	$(VENV)/python benchmarks/bench_mta.py --scale 10 --repeat 5
bench-mmm: setup
	$(VENV)/python benchmarks/bench_mmm.py
bench-geo: setup
	$(VENV)/python benchmarks/bench_geo.py
bench-quality: setup
	$(VENV)/python benchmarks/bench_quality.py
bench-end-to-end: setup
	$(VENV)/python benchmarks/bench_end_to_end.py --scale small
	$(VENV)/python benchmarks/bench_end_to_end.py --scale demo
	$(VENV)/python benchmarks/bench_end_to_end.py --scale full
bench: bench-simulator bench-ingest bench-receiver bench-dbt bench-mta bench-mmm bench-geo bench-quality

clean:
	rm -rf .venv .tools dbt_project/target
