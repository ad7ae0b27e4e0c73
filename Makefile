# Two commands do everything on a fresh clone:
#   make run    create the environment, build index/ from seeds/, serve the API on localhost
#   make test   create the environment if needed and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INDEX ?= index
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test install browser index lint clean

$(BIN)/rag: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU build of torch that pip finds locally; an unpinned torch pulls CUDA (GBs)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/rag

install: $(BIN)/rag

# Debian's Chromium for the web page's browser test (Playwright drives it; no browser download)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

index: install
	$(BIN)/rag ingest seeds --index $(INDEX)

run: index
	$(BIN)/rag serve --index $(INDEX)

test: install browser
	$(BIN)/ruff check rag tests eval
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check rag tests eval

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
