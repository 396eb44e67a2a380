# Two commands for a fresh machine: `make repro` (the whole DVC pipeline) and `make test`.
SHELL   := /bin/bash
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false
export PYTHONUNBUFFERED := 1

.PHONY: setup repro test test-all lint sweep ui clean apps browser

setup: $(STAMP)

# Reinstalls only when the dependency list changes; the package itself is editable.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -m pip install --quiet -e '.[pipeline,dev]' 2>&1 | grep -v "is ignored: it is neither"; test $${PIPESTATUS[0]} -eq 0
	@touch $(STAMP)

# Stage commands call `python`: the venv's, through PATH.
# `make repro PROFILE=<name>` runs the same pipeline with params-profiles/<name>.yaml as its params.yaml, in its
# own DVC project runs/<name>/ (git-ignored; `make workspace` makes it: dvc.yaml, the profile and the code copied
# in, `dvc init --no-scm`), so the checkout's params.yaml, dvc.lock and outputs stay untouched and git status
# clean; rerunning resumes there like any `dvc repro`. SETUP= and BIN=<dir> use an environment set up already
# (the GPU machine: benchmarks/gpu_setup.sh).
PROFILE ?=
SETUP   ?= setup
WS      := runs/$(PROFILE)
ifeq ($(PROFILE),)
repro: $(SETUP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro
else
repro: $(SETUP) workspace
	cd $(WS) && PATH="$(abspath $(BIN)):$$PATH" PYTHONPATH="$(abspath $(WS))/src" $(abspath $(BIN))/dvc repro
endif

.PHONY: workspace
workspace:
	@test -n "$(PROFILE)" || { echo "make workspace: set PROFILE=<name> (params-profiles/<name>.yaml)" >&2; exit 2; }
	@test -f params-profiles/$(PROFILE).yaml || { echo "params-profiles/$(PROFILE).yaml: no such profile (have:" \
	  "$$(ls params-profiles | sed 's/\.yaml$$//' | tr '\n' ' '))" >&2; exit 2; }
	@mkdir -p $(WS) && rm -rf $(WS)/src $(WS)/pipelines && cp -r src pipelines $(WS)/
	@cp dvc.yaml $(WS)/dvc.yaml && cp params-profiles/$(PROFILE).yaml $(WS)/params.yaml
	@test -d $(WS)/.dvc || ! test -x $(BIN)/dvc || (cd $(WS) && $(abspath $(BIN))/dvc init --no-scm -q)
	@echo "workspace $(WS): params-profiles/$(PROFILE).yaml as params.yaml"

# Chromium (browser tests) is installed only in CI (CI=true); elsewhere those tests skip and say how.
CI_BROWSER := $(if $(filter true,$(CI)),browser)

test: setup $(CI_BROWSER)
	$(BIN)/python -m pytest -q

test-all: setup $(CI_BROWSER)
	$(BIN)/python -m pytest -q -m ''

# Part-level applications on the trained model (after `make repro`): reports/apps/ + metrics/apps.json.
# Not a DVC stage: ~8 CPU-minutes at the CPU profile (BENCHMARKS.md), kept out of `make repro`.
apps: setup
	$(BIN)/shd apps

lint: setup
	$(BIN)/ruff check src pipelines tests benchmarks
	$(BIN)/ruff format --check src pipelines tests benchmarks

# Optuna sweeps of both kinds on the data `make repro` produced (budgets: params.yaml `sweep`); a rerun
# continues the studies in sweeps/optuna.db. `shd sweep apply <kind>` merges a best result into params.yaml.
sweep: setup
	$(BIN)/shd sweep overfit
	$(BIN)/shd sweep diffusion

# Debian's Chromium for the report's browser test (tests/report/test_browser.py); installed once (root or sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

clean:
	rm -rf $(VENV)

# The MLflow UI over the same store the stages log to (URI decided in shd.mlflow_store).
ui: setup
	$(BIN)/shd ui --host 127.0.0.1 --port 5000
# Reliability suites (tests/reliability, fast + slow) -> RELIABILITY.md table from the real run.
.PHONY: reliability
reliability: setup
	$(BIN)/python benchmarks/reliability_table.py --all
