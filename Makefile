# The two commands a user needs: `make demo` and `make test`. Both build .venv themselves
# (Python 3.11, pinned requirements.txt + requirements-pose.txt) and reuse it while those are unchanged.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
REQ_HASH := $(shell cat requirements.txt requirements-pose.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQ_HASH)
# Torch would otherwise start one thread per core in every process the tests spawn.
export OMP_NUM_THREADS ?= 2

.PHONY: venv test demo bench gpu-check clean

venv: $(STAMP)

# requirements-pose.txt goes in with --no-deps: mediapipe's metadata would add a second OpenCV.
$(STAMP): requirements.txt requirements-pose.txt setup.py
	@if [ ! -x $(PY) ]; then echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); fi
	@$(PY) -c 'import sys; assert sys.version_info[:2] >= (3, 10), sys.version' \
		|| { echo "retf_ros needs Python >= 3.10 (3.11 recommended)"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-pose.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

test: venv
	$(PY) -m pytest -q -rs test

demo: venv
	$(VENV)/bin/retf demo

# BENCH_ARGS: e.g. "--threads 1" on a machine shared with other work, "--only model node".
BENCH_ARGS ?=
bench: venv
	$(PY) -m retf_ros.bench $(BENCH_ARGS)

gpu-check: venv
	$(PY) -m retf_ros.bench --gpu

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
