# Two commands for a newcomer: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test fuzz bench lint fmt migrate token clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

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
