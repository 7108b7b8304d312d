# Two commands do all set-up on a fresh machine (Python 3.11 + apt):
#   make demo   -> .venv with Ebbtide, then `ebbtide demo` on its embedded synthetic default
#   make test   -> .venv with test extras, real components (Prometheus), the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_OUT ?= out/demo
# pytest workers: Prophet fits are CPU bound; one per core.
PYTEST_WORKERS ?= auto
.DEFAULT_GOAL := demo

.PHONY: demo test install install-test components lint-imports bench clean FORCE

# Which Python the .venv is built with, and for which checkout. A .venv made by another Python,
# for another checkout (a copied or moved tree: its editable install runs the original's code),
# or whose set-up did not finish (`python -m venv` without ensurepip leaves one with no pip) is
# rebuilt; `make clean` needs none of this.
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),$(.DEFAULT_GOAL))),)
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
ifeq ($(PY_VERSION),)
$(error no Python found (PYTHON='$(PYTHON)'): install Python 3.11 (Debian/Ubuntu: apt-get install \
  python3.11 python3.11-venv) or run `make PYTHON=/path/to/python3.11 ...`)
endif
ifneq ($(shell $(PYTHON) -c 'import sys; print(sys.version_info >= (3, 11))'),True)
$(error Ebbtide needs Python 3.11 or later; $(PYTHON) is $(PY_VERSION): install python3.11 (and \
  python3.11-venv) or run `make PYTHON=/path/to/python3.11 ...`)
endif
VENV_ID := $(shell $(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable))') $(PY_VERSION) $(CURDIR)
ifneq ($(shell cat $(VENV)/.built-by 2>/dev/null),$(VENV_ID))
$(VENV)/.built-by: FORCE
endif
endif

FORCE:

$(VENV)/.built-by:
	@if [ -e $(VENV) ]; then echo "make: rebuilding $(VENV): it was made by another Python or for another" \
	  "checkout, or its set-up did not finish"; rm -rf $(VENV); fi
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "make: '$(PYTHON) -m venv' failed; on Debian/Ubuntu:" \
	  "apt-get install python$(PY_VERSION)-venv" >&2; exit 1; }
	$(BIN)/pip install -q --upgrade pip
	echo '$(VENV_ID)' > $@

$(VENV)/.installed: pyproject.toml $(VENV)/.built-by
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.built-by
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
