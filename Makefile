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

# Compile the numba kernels of attention_stats once, at install (numba caches them next to the
# source): otherwise every worker of the first report compiles them itself (about 7 s each).
WARM = $(BIN)/python -c "import numpy as np, attnscale as ats; k = np.eye(3); ats.attention_stats(k[0], k, 1.0); ats.attention_stats(k[0], k, 1.0, values=k); ats.attention_stats_many(k, k, 1.0)"

$(VENV)/.stamp-install: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[report]"
	$(WARM)
	touch $@

$(VENV)/.stamp-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev,torch,dask,report]"
	$(WARM)
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
