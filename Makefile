# The lab's two commands:  make lab  (set up if needed, open JupyterLab)  and  make test.
# Set-up is a stamp file: a second run installs nothing unless pyproject.toml changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.labkit-installed

.PHONY: lab test setup notebooks

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	$(VENV)/bin/labkit fetch-model  # the default model, once, into $${LABKIT_CACHE:-~/.cache/labkit}
	@touch $(STAMP)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

test: setup
	$(PY) -m pytest

# Student notebooks: regenerated from the nbgrader source (autograde/source/hw4), never edited by hand.
notebooks: setup
	$(PY) -m labkit.grading.course release
