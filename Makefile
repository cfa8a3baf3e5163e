# csp-tf: the two set-up commands of the README are `make demo` and `make test`.
# Both create the pinned virtual environment (.venv) first if it is missing or stale.
PY := .venv/bin/python
OUT ?= runs/demo

.PHONY: venv demo test test-fast bench clean

venv:
	@bash scripts/install.sh

demo: venv  ## generate the demo world → Beam ingest → TFX pipeline → push → gRPC query → report
	@$(PY) scripts/demo.py --out $(OUT)

test: venv  ## the full suite, as CI runs it
	@$(PY) -m pytest tests -p no:warnings -q --timeout=1200 --durations=15

test-fast: venv  ## everything but the end-to-end tests
	@$(PY) -m pytest tests -p no:warnings -q -m "not e2e"

bench: venv  ## all benchmarks → runs/benchmarks/report.md (figures quoted in docs/benchmarks.md)
	@$(PY) benchmarks/run_all.py

clean:
	rm -rf runs .pytest_cache
