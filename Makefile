# Two commands do everything on a fresh clone:
#   make run    install the core, build index/ from seeds/, serve the API on localhost
#   make test   install everything, lint, type-check, run the whole test suite (CI runs it)
# and for every change:
#   make check  lint, types, the layers contract and the fast tests (about a minute)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INDEX ?= index
# versions this project is tested with (constraints.txt); torch is the CPU build pip finds
# locally: an unpinned torch pulls a multi-GB CUDA build
PIP := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test check lint install install-all browser index docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) torch==2.13.0
	$(PIP) -e .
	touch $@

$(VENV)/.all: $(VENV)/.core
	$(PIP) -e '.[test]'
	touch $@

install: $(VENV)/.core
install-all: $(VENV)/.all

# Debian's Chromium for the browser tests (Playwright drives it; no browser download)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

index: install
	$(BIN)/rag ingest seeds --index $(INDEX)

run: index
	$(BIN)/rag serve --index $(INDEX)

lint: install-all
	$(BIN)/ruff check rag tests eval benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# Two worker processes (pytest-xdist): a serial run keeps 2 cores ~58% busy, waiting on
# servers, subprocesses and kills. The full tier hands out whole files (--dist loadfile),
# so a module's fixture (the dev-corpus index) is built once.
check: lint
	$(BIN)/python -m pytest -m "not slow" -q -n 2

test: lint browser
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=15

# regenerate docs/configuration.md and docs/benchmarks.md (tests fail when they are stale)
docs: install-all
	$(BIN)/python -m rag.core.config > docs/configuration.md
	$(BIN)/python -m rag.core.config --readme README.md
	$(BIN)/python benchmarks/report.py > docs/benchmarks.md
	$(BIN)/python benchmarks/report.py --readme README.md

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
