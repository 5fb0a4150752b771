# Two entry points for a fresh machine with Python 3.11 (see README.md):
#   make report   installs attnscale in .venv and runs the main job
#   make test     installs attnscale with its test extras in .venv and runs the tests
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
# The CPU build of torch that lies on this machine's disk; any other pin downloads GBs.
TORCH  ?= torch==2.13.0

.PHONY: report test install install-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.stamp-install: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[report]"
	touch $@

$(VENV)/.stamp-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev,torch,dask,report]"
	touch $@ $(VENV)/.stamp-install

install: $(VENV)/.stamp-install
install-dev: $(VENV)/.stamp-dev

report: $(VENV)/.stamp-install
	$(BIN)/attnscale report --quick --out attnscale-report
	@echo "open attnscale-report/index.html"

test: $(VENV)/.stamp-dev
	$(BIN)/python -m pytest -n 2 --durations=15

bench: $(VENV)/.stamp-dev
	$(BIN)/python benchmarks/bench_attention.py
	$(BIN)/python benchmarks/bench_sampler.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
