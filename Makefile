# Two commands do all set-up on a fresh machine:
#   make demo   - creates .venv, installs, runs the main job on embedded defaults
#   make test   - creates .venv, installs, runs ruff and the whole test suite
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch where the package index serves one under this pin; override for CUDA,
# e.g. make test TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint browser clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/entitylink demo --out demo-output

lint: install
	$(VENV)/bin/ruff check entitylink tests benchmarks

# Best effort: Debian's chromium for the browser test, where we are root with apt; else that test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
	  echo "chromium not installed: the browser test will be skipped"

test: lint browser
	$(PY) -m pytest

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache *.egg-info
