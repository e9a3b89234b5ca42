# plantops — the two commands a fresh machine needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE := examples/acme-manufacturing
OUT ?= out/acme-manufacturing
# Debian packages the integration tests drive for real (only installed when missing).
APT_PACKAGES := postgresql postgresql-contrib pgbackrest age zstd redis-server systemd prometheus prometheus-alertmanager prometheus-blackbox-exporter chromium

.PHONY: run test lint typecheck imports unit system-deps venv golden bench clean

# Every dependency (the build backend and pip included) comes from requirements.lock,
# checked against its hashes; the project itself is then installed without resolving
# anything (--no-deps, and no build isolation, so no unhashed hatchling is fetched).
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --only-binary :all: -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/plantops plan $(EXAMPLE) --out $(OUT)
	@echo
	$(BIN)/plantops release waves --fleet $(EXAMPLE)
	@echo
	@echo "plantops is installed as $(CURDIR)/$(BIN)/plantops; to run it as \`plantops\`:"
	@echo '  export PATH="$(CURDIR)/$(BIN):$$PATH"    (or: source $(BIN)/activate)'

system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP) system-deps
	$(BIN)/pytest -n 2 -q

test: system-deps $(STAMP) lint typecheck imports unit

golden: $(STAMP)
	$(BIN)/pytest -q tests --update-golden

bench: $(STAMP) system-deps
	$(BIN)/python benchmarks/plan_fleet.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
