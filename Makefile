# Two entry points (see README): `make demo` runs the main job, `make test` the test suite.
# Both create or refresh the virtual environment in .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch is a range dependency; prefer a build already on this machine (CPU wheel on disk)
	# over a multi-GB download: install it first, then the project, which then needs nothing more.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "torch==2.13.0" || $(PY) -m pip install -q "torch>=2.2,<3"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m lmerpy.cli demo

test: $(STAMP)
	$(PY) -m ruff check lmerpy tests benchmarks examples
	$(PY) -m pytest

clean:
	rm -rf $(VENV)
