# Two commands for a new user: `make run` and `make test`. Both set up .venv on first use,
# with the exact versions in uv.lock (installed by uv, itself pinned here and installed from PyPI).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
UV := $(BIN)/uv
# --inexact: keep uv and pip, which live in the same .venv (`make clean` for a pristine one).
# --compile-bytecode: `chat`, `chat-admin` and the server start without compiling every module first.
UV_SYNC := $(UV) sync --locked --inexact --compile-bytecode
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint typecheck pytest browser-deps bench fuzz stress image-check lock upgrade clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)

$(RUNTIME_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV_SYNC)
	touch $@

$(DEV_STAMP): pyproject.toml uv.lock | $(UV)
	$(UV_SYNC) --extra dev
	touch $@ $(RUNTIME_STAMP)

# After editing dependencies in pyproject.toml: re-resolve uv.lock, keeping every other pin.
lock: | $(UV)
	$(UV) lock

# Move every dependency to its newest version allowed by pyproject.toml; review the uv.lock diff,
# run `make test`, commit both.
upgrade: | $(UV)
	$(UV) lock --upgrade

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

# Two workers (pytest-xdist), a test file each at a time: the suite waits on servers, databases
# and browsers more than it computes. The schema fuzzer runs after, in one process: Schemathesis
# generates its cases only outside xdist (under a worker its test passes having run none).
pytest: $(DEV_STAMP) browser-deps
	$(BIN)/pytest -n 2 --dist loadfile --ignore=tests/test_fuzz.py
	$(BIN)/pytest -p no:xdist tests/test_fuzz.py

test: lint typecheck pytest

# Throughput, latency, commands per request, collection scans, growth and start-up; writes
# bench/results.json and docs/performance-results.md (the tables docs/performance.md links to).
# BENCH_QUICK=1 for a ~2 minute run; MONGODB_URI to measure an external server.
bench: $(DEV_STAMP)
	$(BIN)/python -m bench

# The load-shaped tests (marked `stress`) at their full size: `make test` runs a bounded sample.
stress: $(DEV_STAMP)
	STRESS=1 $(BIN)/pytest -m stress -p no:cacheprovider

# The schema fuzzer with many more examples per operation than `make test` runs.
fuzz: $(DEV_STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} $(BIN)/pytest tests/test_fuzz.py -p no:cacheprovider

# Build the Docker image on this machine (a Debian base from debootstrap unless PYTHON_IMAGE is
# given; no registry needed) and check it: healthy, register/login/post, data kept across
# containers, non-root, no pip or uv, a clear DATA_DIR error, `docker stop` within 5 s. Not part
# of `make test`; needs root and a running dockerd (apt-get install docker.io debootstrap).
image-check: $(DEV_STAMP)
	$(BIN)/python scripts/image_check.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
