# Two commands for a newcomer: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test fuzz bench lint fmt migrate token lock clean

# Every dependency, direct and transitive, at the version and hashes in requirements-dev.lock
# (pip-compile's output; requirements.lock is the runtime subset, for deployments).
$(STAMP): pyproject.toml requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	@# pip only adds: pip-sync (installed by the line above) removes what an older lock left behind.
	$(BIN)/pip-sync --quiet requirements-dev.lock
	@# The build backend comes from the lock too (--no-build-isolation), not from the newest on the index.
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The locks are resolved against the package index alone: the machine's pip configuration (local
# mirrors, find-links) is left out so the result is the same on every machine. Existing pins are
# kept; `make lock LOCK_ARGS=--upgrade` (or `--upgrade-package NAME`) moves them.
PIP_COMPILE := env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="make lock" \
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --all-build-deps \
	--no-emit-index-url --no-emit-find-links

## Re-resolve requirements-dev.lock and requirements.lock after pyproject.toml changed.
lock: $(STAMP)
	$(PIP_COMPILE) --extra dev $(LOCK_ARGS) -o requirements-dev.lock pyproject.toml
	@# Seeded with the dev lock, so the runtime lock keeps exactly the dev lock's versions.
	cp requirements-dev.lock requirements.lock
	$(PIP_COMPILE) -o requirements.lock pyproject.toml

## Start the API on http://127.0.0.1:8003 (embedded PostgreSQL under ./.crm-data unless DATABASE_URL is set).
run: $(STAMP)
	$(BIN)/crm serve

## Run the whole test suite against a real PostgreSQL (embedded unless TEST_DATABASE_URL is set).
test: $(STAMP)
	$(BIN)/pytest

## A long property-based fuzz of the whole API from its OpenAPI document (tests/test_fuzz.py; a few
## minutes). `make test` runs a short, fixed-seed pass of the same. Each run draws a new seed and
## prints it; CRM_FUZZ_SEED=<seed> replays a run, CRM_FUZZ_EXAMPLES sets the examples per operation.
fuzz: $(STAMP)
	@seed=$${CRM_FUZZ_SEED:-$$(date +%s)}; echo "fuzzing with CRM_FUZZ_SEED=$$seed"; \
	CRM_FUZZ_SEED=$$seed CRM_FUZZ_EXAMPLES=$${CRM_FUZZ_EXAMPLES:-500} $(BIN)/pytest -q tests/test_fuzz.py

## ruff, mypy --strict, and a check that the models and the migrations agree.
## Load 1M customers once per database, then measure every endpoint and a bare baseline with wrk
## on each: the tuned embedded PostgreSQL (./.crm-bench) and the machine's PostgreSQL as it is
## configured. Not part of CI; ~15 min, plus ~4 min per database that needs its load; writes
## bench/results/<date>.md. One database: make bench BENCH_DATABASES=embedded; other options:
## make bench BENCH_ARGS="--duration 30 --reload" (python bench/run.py --help lists them).
BENCH_DATABASES ?= embedded postgresql://postgres@127.0.0.1:5432/crm_bench
bench: $(STAMP)
	$(BIN)/python bench/run.py $(foreach db,$(BENCH_DATABASES),--database $(db)) $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/python -m crm.check_migrations

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

migrate: $(STAMP)
	$(BIN)/crm migrate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
