# The lab's two commands:  make lab  (set up if needed, open JupyterLab)  and  make test.
# Set-up is a stamp file: a second run installs nothing unless pyproject.toml changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.labkit-installed
# nano-vllm's layer classes for the CPU tests of the nano-vllm weight swap (pure Python; its CUDA-only
# dependencies are not installed and the tests stand in for them)
NANOVLLM_CPU := nano-vllm-fork==20260210
# JupyterLab refuses to start as root unless told; containers and CI machines often are root
ALLOW_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: lab test setup browser notebooks

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet --no-deps $(NANOVLLM_CPU)
	$(VENV)/bin/labkit fetch-model  # the default model, once, into $${LABKIT_CACHE:-~/.cache/labkit}
	@touch $(STAMP)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/ $(ALLOW_ROOT)

# The browser tests drive Debian's Chromium; as root we install it, otherwise they skip with a reason.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: the browser tests will be skipped"; \
	  else echo "no chromium and not root: the browser tests will be skipped"; fi; \
	fi

test: setup browser
	$(PY) -m pytest

# Student notebooks: regenerated from the nbgrader source (autograde/source/hw4), never edited by hand.
notebooks: setup
	$(PY) -m labkit.course.release release
