# Two commands do all set-up on a fresh machine (Python 3.11 + apt):
#   make demo   -> .venv with Ebbtide, then `ebbtide demo` on its embedded synthetic default
#   make test   -> .venv with test extras, real components (Prometheus), the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_OUT ?= out/demo
# pytest workers: Prophet fits are CPU bound; one per core.
PYTEST_WORKERS ?= auto

.PHONY: demo test install install-test components lint-imports bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

components:
	bash .ci/install-components.sh

demo: install
	$(BIN)/ebbtide demo --out $(DEMO_OUT)

lint-imports: install-test
	$(BIN)/lint-imports

test: install-test components
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

bench: install
	$(BIN)/python bench/forecast.py

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
