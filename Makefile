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

.PHONY: lab test setup system-packages notebooks

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet --no-deps $(NANOVLLM_CPU)
	$(VENV)/bin/labkit fetch-model  # the default model, once, into $${LABKIT_CACHE:-~/.cache/labkit}
	@touch $(STAMP)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/ $(ALLOW_ROOT)

# System packages the tests use, from Debian: chromium (browser tests), bubblewrap (the grading
# sandbox), postgresql (a real gradebook server). As root we install the missing ones; otherwise the
# tests that need them skip and say why.
SYSTEM_PACKAGES := chromium:chromium bwrap:bubblewrap pg_ctl:postgresql
system-packages:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/$$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's$$missing for the tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "could not install$$missing: the tests that need them will be skipped"; \
	  else echo "missing$$missing and not root: the tests that need them will be skipped"; fi; \
	fi

test: setup system-packages
	$(PY) -m pytest

# Student notebooks: regenerated from the nbgrader source (autograde/source/hw4), never edited by hand.
notebooks: setup
	$(PY) -m labkit.course.release release
