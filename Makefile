# Two commands on a fresh machine: `make run` and `make test`. Everything else is for developers.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTOS := $(wildcard protos/courier/v1/*.proto)
GENERATED := courier/v1/.generated

.PHONY: run test bench bench-quick soak lint check protos clean install lock

# The locks (requirements/*.txt, made by `make lock`) pin every package with its hashes, so a fresh machine gets
# the versions that were tested; the project itself goes in without dependencies and without build isolation
# (setuptools is in the lock too).
LOCKS := requirements/dev.txt requirements/fallback-postgres.txt
$(STAMP): pyproject.toml $(LOCKS)
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found: install Python 3.11 (apt-get install python3.11 python3.11-venv)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@if ! $(PY) -c "from gateway.storage.cluster import find_bindir; find_bindir()" 2>/dev/null; then \
		echo "no PostgreSQL server binaries on this machine: installing the pgserver wheel as the fallback"; \
		$(PY) -m pip install --quiet --require-hashes -r requirements/fallback-postgres.txt; fi
	@touch $@

install: $(STAMP)

$(GENERATED): $(PROTOS) $(STAMP)
	@mkdir -p courier/v1
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)
	@touch $@

protos: $(GENERATED)

run: $(GENERATED)
	$(PY) -m gateway dev

test: $(GENERATED)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(GENERATED)
	$(PY) -m bench $(BENCH_ARGS)

bench-quick: $(GENERATED)
	$(PY) -m bench --quick $(BENCH_ARGS)

# Mixed load at 70% of the maximum for SOAK_S seconds (errors, p99 drift, RSS growth), then the fault test with
# SOAK_FAULTS database outages and gateway kills.
SOAK_S ?= 600
SOAK_FAULTS ?= 5
soak: $(GENERATED)
	$(PY) -m bench.soak --seconds $(SOAK_S) $(SOAK_ARGS)
	FAULTS_OUTAGES=$(SOAK_FAULTS) FAULTS_KILLS=$(SOAK_FAULTS) $(PY) -m pytest -q -s -p no:randomly tests/e2e/test_faults.py

lint: $(GENERATED)
	$(PY) -m ruff check gateway inspection tests
	$(PY) -m mypy gateway/core

check: lint test

# Re-pins requirements/*.txt from pyproject.toml (and requirements/protoc.in, the image's protoc), keeping every
# version already pinned; `make lock LOCK_ARGS=--upgrade` moves them all to the newest. The runtime, fallback and
# protoc locks start from the dev lock, so a package has the same version in each.
COMPILE := $(PY) -m piptools compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	--no-emit-find-links
lock: $(STAMP)
	$(COMPILE) $(LOCK_ARGS) --extra dev -o requirements/dev.txt pyproject.toml
	cp requirements/dev.txt requirements/runtime.txt
	$(COMPILE) -o requirements/runtime.txt pyproject.toml
	cp requirements/dev.txt requirements/fallback-postgres.txt
	$(COMPILE) --extra dev --extra fallback-postgres -o requirements/fallback-postgres.txt pyproject.toml
	cp requirements/dev.txt requirements/protoc.txt
	$(COMPILE) -o requirements/protoc.txt requirements/protoc.in

clean:
	rm -rf $(VENV) courier/v1/*_pb2* $(GENERATED) .pytest_cache .mypy_cache
