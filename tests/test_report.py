"""Tests of the report (issue 4): experiments on tiny configs, resumable store, engines, the page."""

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from matplotlib.figure import Figure

from attnscale.experiments import EXPERIMENTS, STATEMENTS, Claim
from attnscale.experiments._runner import run_experiment
from attnscale.runtime.parallel import ProcessExecutor, SerialExecutor
from attnscale.runtime.store import ResultStore

#: Smaller Monte Carlo than --quick, per experiment: enough for every claim's interval to be honest.
TINY = {
    "phase_diagram": {"log10_n": [2.0, 4.0, 6.0], "betas_per_decade": 1, "draws": 50, "critical_draws": 2000, "limit_draws": 5000},
    "critical_exponent": {"ds": [3], "n_max": 1e6, "points": 5, "size": 500, "law_size": 500, "law_draws": 5000},
    "critical_law": {"n": 3000, "reps": 300, "chunk": 100, "limit_draws": 5000},
    "subcritical": {"ds": [3], "betas": [10.0, 20.0], "n": 20_000, "reps": 100, "chunk": 50, "kurt_draws": 5000},
    "supercritical": {"gammas": [1.0], "cs": [8.0, 16.0, 32.0, 64.0], "draws": 40_000, "chunks": 2, "m": 16},
    "large_d": {"ds": [33, 129], "points": 4, "size": 1500},
    "finite_n": {
        "ds": [3, 64], "curve_ns": [1e3, 1e6, 1e12], "curve_size": 1000, "ceff_ds": [3], "ceff_ns": [1e12],
        "ceff_cs": [1.0], "d64_ns": [1e3, 1e6], "rule_ds": [64], "rule_ns": [4096.0, 65536.0],
    },
    "output_law": {
        "sub_ds": [3], "sub_betas": [10.0], "sub_n": 5000, "sub_reps": 100, "crit_n": 3000, "crit_ds": [3, 5],
        "crit_cs": [0.5, 2.0], "crit_reps": 200, "super_cs": [20.0], "super_reps": 200, "chunk": 100,
        "limit_draws": 5000, "fast_draws": 5000, "asym_draws": 100000, "cross_ds": [3], "value_n": 5000, "value_reps": 100,
        "cross_cs": [0.01, 1.0, 100.0], "cross_draws": 1000,
    },
    # coverage claims carry their exact binomial interval, so 20 replications stay honest (just weaker);
    # the Poisson-Dirichlet draws are not reduced: the c = 4 claim needs them (see tail_classes.config)
    "tail_classes": {"reps": 20, "points": 50},
}


def tables_equal(a: pa.Table, b: pa.Table) -> bool:
    """Same schema and the same values, NaN equal to NaN (pyarrow's equals says NaN != NaN)."""
    if a.schema != b.schema:
        return False
    for col in a.column_names:
        x, y = a[col].to_numpy(zero_copy_only=False), b[col].to_numpy(zero_copy_only=False)
        if x.dtype.kind == "f":
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def tiny_config(name, seed=0):
    module = importlib.import_module(f"attnscale.experiments.{name}")
    return module, module.config(quick=True, seed=seed) | TINY.get(name, {})


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_each_experiment_runs_and_its_claims_hold_on_a_tiny_config(name, tmp_path):
    module, cfg = tiny_config(name)
    table = run_experiment(module, cfg, ResultStore(tmp_path), SerialExecutor())
    assert isinstance(table, pa.Table) and table.num_rows > 0
    fig = module.figure(table)
    assert isinstance(fig, Figure) and fig.axes
    claims = module.claims(table)
    assert claims and all(isinstance(c, Claim) for c in claims)
    for c in claims:
        assert c.experiment == module.NAME
        assert (c.statement or getattr(module, "STATEMENT", "")) in STATEMENTS, c
        assert c.interval[0] <= c.measured <= c.interval[1]
        assert c.ok, c


def test_results_do_not_depend_on_the_engine(tmp_path):
    module, cfg = tiny_config("phase_diagram")
    serial = run_experiment(module, cfg, ResultStore(tmp_path / "a"), SerialExecutor())
    pool = ProcessExecutor(2)
    try:
        parallel = run_experiment(module, cfg, ResultStore(tmp_path / "b"), pool)
    finally:
        pool.close()
    assert tables_equal(serial, parallel)

    from attnscale.runtime.parallel import DaskExecutor, local_dask_cluster

    cluster = local_dask_cluster(n_workers=2, threads_per_worker=1)
    dask = DaskExecutor(cluster.scheduler_address)
    try:
        on_dask = run_experiment(module, cfg, ResultStore(tmp_path / "c"), dask)
    finally:
        dask.close()
        cluster.close()
    assert tables_equal(serial, on_dask)


def _report_cmd(out, *extra):
    return [sys.executable, "-m", "attnscale", "report", "--quick", "--only", "phase_diagram", "--seed", "3", "--out", str(out), *extra]


def _stored(out):
    store = ResultStore(Path(out) / "store")
    return {key: store.load(key) for key in store.keys()}


@pytest.fixture(scope="module")
def killed_and_clean_runs(tmp_path_factory):
    """A real `attnscale report` process SIGKILLed mid-run and re-run; and an uninterrupted run."""
    tmp_path = tmp_path_factory.mktemp("report")
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _report_cmd(killed, "--workers", "2", "--json"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    store_dir = killed / "store"
    while time.monotonic() < deadline:
        done = list(store_dir.glob("*.parquet")) if store_dir.exists() else []
        if len(done) >= 3 or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed: make it longer"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(list(store_dir.glob("*.parquet")))
    assert not (killed / "claims.json").exists()
    subprocess.run(_report_cmd(killed, "--workers", "2", "--json"), check=True, capture_output=True, timeout=300)
    clean = tmp_path / "clean"
    subprocess.run(_report_cmd(clean, "--workers", "1", "--json"), check=True, capture_output=True, timeout=300)
    return killed, clean, partial


def test_kill_9_then_resume_equals_an_uninterrupted_run(killed_and_clean_runs):
    killed, clean, partial = killed_and_clean_runs
    a, b = _stored(killed), _stored(clean)
    assert partial >= 3 and len(a) > partial
    assert a.keys() == b.keys()
    assert all(tables_equal(a[k], b[k]) for k in a)
    assert not list((killed / "store").glob(".*"))  # no temp files left behind
    ca = json.loads((killed / "claims.json").read_text())["claims"]
    cb = json.loads((clean / "claims.json").read_text())["claims"]
    assert ca == cb and all(c["ok"] for c in ca)


class _PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.marks, self.rows, self._in_mark = [], [], 0, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "td" and attrs.get("class") == "mark":
            self._in_mark = True
        if tag == "tr" and attrs.get("class") in ("ok", "fail") and "data-statement" in attrs:
            self.rows += 1

    def handle_data(self, data):
        if self._in_mark:
            self.marks.append(data.strip())
            self._in_mark = False


def test_page_parses_embeds_every_figure_and_marks_every_claim(killed_and_clean_runs):
    _, clean, _ = killed_and_clean_runs
    page = (clean / "index.html").read_text()
    rows = json.loads((clean / "claims.json").read_text())
    parser = _PageParser()
    parser.feed(page)
    assert len(parser.images) == 1 and parser.images[0].startswith("data:image/png;base64,")
    assert parser.rows == len(rows["claims"]) == len(parser.marks) > 0
    assert set(parser.marks) <= {"\u2714", "\u2718"}
    assert {"claim", "theory", "measured", "interval", "ok"} <= set(rows["claims"][0])
    assert rows["meta"]["versions"]["numpy"]
    assert "report --quick --only phase_diagram" in rows["meta"]["command"]
    # statements first: the summary table precedes the first section and the claims table is last
    assert page.index("id=\"summary-table\"") < page.index("<section") < page.index("id=\"claims\"")
    assert all(c["statement"] in STATEMENTS for c in rows["claims"])
    summary = {r["statement"]: r for r in rows["summary"]}
    assert list(summary) == list(STATEMENTS)
    assert summary["S6"]["verdict"] == "holds" and summary["S6"]["key"]["statement"] == "S6"
    assert summary["S10"]["verdict"] == "not run"  # --only phase_diagram


def test_a_nan_or_missing_measurement_is_a_failing_claim_not_a_crash(tmp_path):
    from attnscale.report import Section, render_html, summarize, traced

    nan_claim = Claim.within("x", 1.0, float("nan"), 0.1, section="3", experiment="e", statement="S3")
    gone = Claim.missing("y", 1.0, "skdim not installed", section="2", experiment="e", statement="X4")
    bare = traced(Claim.within("z", 1.0, 1.0, 0.1, section="3", experiment="e"))
    assert not nan_claim.ok and "not measured" in nan_claim.note and not gone.ok and not bare.ok
    text = json.dumps([c.to_dict() for c in (nan_claim, gone, bare)], allow_nan=False)
    assert "NaN" not in text
    rows = {r["statement"]: r["verdict"] for r in summarize([nan_claim, gone], complete=True)}
    assert rows["S3"] == rows["X4"] == "fails" and rows["S6"] == "no claim"
    meta = {"command": "c", "date": "d", "seconds": 1.0, "seed": 0, "workers": 1, "platform": "p", "versions": {}, "complete": True}
    page = render_html([Section("e", "E", "3", b"", (nan_claim, gone), 0.1, "d")], meta)
    assert "n/a" in page and "not measured: skdim not installed" in page
    with pytest.raises(ValueError, match="statement"):
        Claim.within("x", 1.0, 1.0, 0.1, section="3", statement="S99")
