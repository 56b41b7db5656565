# ssmd developer commands. `make` (or `make help`) lists them.
# Python tools run through $(PYTHON) -m ..., so activate the venv first or
# pass PYTHON=/path/to/venv/bin/python.

PYTHON ?= python
MATURIN ?= maturin
CARGO ?= cargo
# Python trees to lint/format (only those present: empty dirs are not in git).
PY_PATHS := $(wildcard python tests benches tools)

.DEFAULT_GOAL := help
.PHONY: help install build-dev build-prod format lint test test-integration bench fixtures-update help-update

help: ## Show this list of targets
	@echo "Usage: make <target>"
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "} {printf "  %-18s %s\n", $$1, $$2}'

install: ## Build and pip-install ssmd with every extra and the test tools into the current environment
	$(PYTHON) -m pip install ".[all,test]"

build-dev: ## Build the extension in debug mode into the active venv (maturin develop)
	$(MATURIN) develop

build-prod: ## Build the release wheel into dist/ (lto=fat, codegen-units=1)
	$(MATURIN) build --release -o dist

format: ## Format Python (ruff format) and Rust (cargo fmt)
	$(PYTHON) -m ruff format $(PY_PATHS)
	$(CARGO) fmt --all

lint: ## ruff check, ruff format --check, mypy --strict, stubtest, cargo fmt --check, clippy (with and without the python feature), size budgets, import layers (Python and Rust)
	$(PYTHON) -m ruff check $(PY_PATHS)
	$(PYTHON) -m ruff format --check $(PY_PATHS)
	$(PYTHON) -m mypy
	$(PYTHON) -m mypy.stubtest ssmd._core --allowlist .stubtest-allowlist
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --features python --lib -- -D warnings
	$(PYTHON) tools/check_budgets.py
	$(PYTHON) tools/check_imports.py
	$(PYTHON) tools/check_rust_modules.py

test: ## Run the test suite (unit, venues, property; benches as smoke tests)
	$(PYTHON) -m pytest --benchmark-disable

test-integration: ## Run integration tests (needs NATS_URL, DATABASE_URL, REDIS_URL; see .ci/services.sh)
	$(PYTHON) -m pytest -m integration

bench: ## Timed benchmarks: pytest-benchmark (benches/python) and criterion (cargo bench)
	$(PYTHON) -m pytest benches/python --benchmark-only
	$(CARGO) bench

fixtures-update: ## Regenerate tests/fixtures/*/*.expected.jsonl (review the diff!)
	$(PYTHON) tools/update_fixtures.py

help-update: ## Regenerate tests/unit/cli/help/*.txt, the --help snapshots (review the diff!)
	SSMD_UPDATE_HELP=1 $(PYTHON) -m pytest -q tests/unit/cli/test_cli_help.py
