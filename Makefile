# Two commands for a new user: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint typecheck pytest browser-deps bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(RUNTIME_STAMP)

run: $(RUNTIME_STAMP)
	$(BIN)/chat-server

# Chromium for the browser tests comes from Debian's packages (Playwright's own download is
# not used). Without root or apt the browser tests are reported as skipped, with the reason.
browser-deps:
	@if [ ! -x $(CHROMIUM) ]; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
				|| echo "warning: could not install chromium; browser tests will be skipped"; \
		else \
			echo "warning: chromium missing and apt-get unavailable; browser tests will be skipped"; \
		fi; \
	fi

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

pytest: $(DEV_STAMP) browser-deps
	$(BIN)/pytest

test: lint typecheck pytest

# Throughput, latency, commands per request, collection scans and growth; writes bench/results.json.
# BENCH_QUICK=1 for a ~2 minute run; MONGODB_URI to measure an external server.
bench: $(DEV_STAMP)
	$(BIN)/python -m bench

# The schema fuzzer with many more examples per operation than `make test` runs.
fuzz: $(DEV_STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} $(BIN)/pytest tests/test_fuzz.py -p no:cacheprovider

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
