# The README's two commands: `make demo` and `make test`. Both do all set-up first, idempotently.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE_DIR := devstack
export PRIMEHUB_SPAWNER_CACHE ?= $(HOME)/.cache/primehub-spawner
PYTEST_ARGS ?=

.PHONY: setup system-packages apiserver keycloak toxiproxy venv node-packages test demo bench lint format clean

setup: system-packages venv node-packages apiserver keycloak toxiproxy

system-packages:
	@./scripts/install-system-packages.sh

apiserver: system-packages
	@./scripts/build-kube-apiserver.sh

keycloak: system-packages
	@./scripts/install-keycloak.sh

toxiproxy: system-packages
	@./scripts/install-toxiproxy.sh

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml setup.cfg
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -U pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

node-packages: $(NODE_DIR)/node_modules/.installed
$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# pytest exits 5 when it collects no tests; a suite with nothing to run is not a failure of set-up.
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@export PATH="$(CURDIR)/$(NODE_DIR)/node_modules/.bin:$$PATH"; \
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

demo: setup
	@export PATH="$(CURDIR)/$(NODE_DIR)/node_modules/.bin:$$PATH"; \
	exec $(BIN)/python -m devstack demo --state-dir .demo

# Figures measured side by side in one run; writes benchmarks/RESULTS.md (BENCH=name to run one).
bench: setup
	@export PATH="$(CURDIR)/$(NODE_DIR)/node_modules/.bin:$$PATH"; \
	exec $(BIN)/python -m benchmarks $(BENCH)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf .demo .pytest_cache .ruff_cache build dist *.egg-info
