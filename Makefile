# orderdesk — one command to set up and run, one to test.
#   make run     set up (venv, install, generate protos), then start NATS if none answers,
#                the five services and the gateway on http://127.0.0.1:8080 with the demo data
#   make test    set up, then the whole test suite (unit, integration on SQLite and PostgreSQL, e2e)
#   make unit | integration | e2e | browser   one part of it (PYTEST_ARGS="-x -k name" narrows it further)
#   make lint    ruff check, ruff format --check and mypy: each runs, the target fails if any failed
#   make format  ruff format over the tree (then `make lint`)
#   make bench   benchmark figures (printed, never asserted); REPLICAS=2 runs two processes per service
#   make faults  the fault suite, full form (REPLICAS=2 by default): kill -9, outages, then the books;
#                NATS_CLUSTER=1: on a three-node JetStream cluster, kill -9 of one node, then another
#   make lock    requirements.lock again from pyproject.toml (pip-compile, every package with its hashes)
#   make audit   pip-audit over requirements.lock (needs PyPI's vulnerability API; see README "Dependencies")

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

REPLICAS ?=

.PHONY: setup protos run test unit integration e2e browser bench faults lint format lock audit clean

setup: $(STAMP) protos

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

# Run as a script: `-m orderdesk.protos` would import the orderdesk package, which imports the generator first.
protos: $(STAMP)
	$(BIN)/python orderdesk/protos.py

run: setup
	$(BIN)/python -m devtools.devstack run

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: setup
	$(BIN)/python -m pytest tests/unit -q $(PYTEST_ARGS)

integration: setup
	$(BIN)/python -m pytest tests/integration -q $(PYTEST_ARGS)

e2e: setup
	$(BIN)/python -m pytest tests/e2e -q $(PYTEST_ARGS)

browser: setup
	$(BIN)/python -m pytest tests/browser -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench $(if $(REPLICAS),--replicas $(REPLICAS))

faults: setup
	$(BIN)/python -m tests.faults --replicas $(or $(REPLICAS),2) $(if $(NATS_CLUSTER),--nats-cluster)

lint: setup
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	$(BIN)/mypy || status=1; \
	exit $$status

format: setup
	$(BIN)/ruff format .

lock: setup
	$(BIN)/python -m piptools compile --quiet --generate-hashes --strip-extras --no-emit-index-url \
		--no-emit-find-links --output-file requirements.lock pyproject.toml

# --strict: a package the vulnerability service does not know fails the audit instead of being skipped.
audit: setup
	$(BIN)/python -m pip_audit --strict --disable-pip --require-hashes -r requirements.lock

clean:
	rm -rf var orderdesk/v1 build *.egg-info
