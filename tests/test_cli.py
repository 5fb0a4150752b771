"""Tests of the command line (the attnscale.cli package): JSON contracts, n spellings, bad input -> exit 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from attnscale.laws import UniformSphere
from attnscale.tails import critical_beta


def run_cli(*args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "attnscale", *args], capture_output=True, text=True, timeout=300
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_critical_json_contract():
    out = json.loads(run_cli("critical", "--law", "uniform", "--d", "3", "--n", "1e6", "--beta", "5e5", "--json").stdout)
    assert {"law", "d", "n", "endpoint", "gamma", "kappa", "log_kappa", "beta_star", "regime", "c_eff", "c_asymptotic",
            "regime_asymptotic", "max_weight", "n_eff", "asymptotics_reached"} <= set(out)
    assert out["n"] == 10**6 and out["gamma"] == 1.0
    assert out["beta_star"] == pytest.approx(5e5, rel=1e-12)
    assert out["c_asymptotic"] == pytest.approx(1.0) and out["regime"] == "critical"
    assert out["c_eff_interval"][0] < out["c_eff"] < out["c_eff_interval"][1]


def test_critical_d64_is_subcritical_from_the_exact_law():
    # issue 11: the asymptotic c = 2.84 sits in no critical band of d = 64; the exact law has n_eff = 0.386 n
    out = json.loads(run_cli("critical", "--law", "uniform", "--d", "64", "--n", "1e6", "--beta", "8", "--json").stdout)
    assert out["regime"] == "subcritical" and out["asymptotics_reached"] is False
    assert out["c_asymptotic"] == pytest.approx(2.837, rel=1e-3)
    assert out["n_eff"]["mean"] == pytest.approx(3.863e5, rel=5e-3)


def test_critical_d3_at_beta_star_is_critical_with_c_eff_near_one():
    out = json.loads(run_cli("critical", "--d", "3", "--n", "1e12", "--beta", "5e11", "--json").stdout)
    assert out["regime"] == "critical" and out["asymptotics_reached"] is True
    assert out["c_eff"] == pytest.approx(1.0, abs=0.02)


def test_estimate_with_beta_gives_measured_and_extrapolated_verdicts(tmp_path):
    path = tmp_path / "scores.npy"
    np.save(path, np.random.default_rng(0).uniform(-1.0, 1.0, 20000))
    out = json.loads(run_cli("estimate", "--scores", str(path), "--n", "2e4", "--n", "1e9", "--beta", "1e4", "--json").stdout)
    parts = [v["part"] for v in out["verdicts"]]
    assert parts == ["measured", "extrapolated"]
    assert all(v["c_eff_low"] <= v["c_eff"] <= v["c_eff_high"] for v in out["verdicts"])
    bad = run_cli("estimate", "--scores", str(path), "--beta", "3", check=False)
    assert bad.returncode == 2 and "--n" in bad.stderr


def test_n_spellings_agree_on_the_command_line():
    outs = [
        json.loads(run_cli("critical", "--d", "5", "--n", text, "--json").stdout)
        for text in ("1000000", "1e6", "1000000.0")
    ]
    assert outs[0] == outs[1] == outs[2]
    big = json.loads(run_cli("critical", "--d", "5", "--n", "1e18", "--json").stdout)
    assert big["n"] == 10**18
    tail = UniformSphere(5).score_tail([1, 0, 0, 0, 0])
    assert big["beta_star"] == pytest.approx(critical_beta(10**18, tail), rel=1e-12)


def test_critical_table_output():
    out = run_cli("critical", "--d", "4", "--n", "1e4").stdout
    assert "beta_star" in out and "gamma" in out


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("critical", "--d", "1"), "--d"),
        (("critical", "--n", "0"), "--n"),
        (("critical", "--n", "nan"), "--n"),
        (("critical", "--n", "1e19"), "--n"),
        (("critical", "--law", "cauchy"), "--law"),
        (("critical", "--beta", "-1"), "--beta"),
        (("critical", "--law", "vmf", "--kappa", "-2"), "kappa"),
        (("critical", "--query-cos", "2"), "--query-cos"),
        (("simulate", "--reps", "0", "--c", "1"), "--reps"),
        (("simulate", "--c", "1", "--beta", "2"), "--beta"),
        (("simulate", "--c", "1", "--method", "magic"), "--method"),
        (("simulate", "--c", "1", "--save-samples", "x.txt"), "--save-samples"),
        (("simulate", "--c", "-1"), "--c"),
        (("critical", "--d", "three"), "--d"),
        (("critical", "--bogus", "3"), "--bogus"),
        (("simulate", "--c", "1", "--reps", "x"), "--reps"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, fragment):
    proc = run_cli(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0]


def test_simulate_brute_json_and_samples(tmp_path):
    path = tmp_path / "draws.npz"
    out = json.loads(
        run_cli(
            "simulate", "--d", "3", "--n", "2000", "--c", "0.5", "--reps", "20", "--seed", "1",
            "--method", "brute", "--save-samples", str(path), "--json",
        ).stdout
    )
    assert set(out) >= {"method", "n", "beta", "c", "reps", "max_weight", "n_eff", "entropy"}
    assert out["reps"] == 20 and out["c"] == pytest.approx(0.5)
    for key in ("max_weight", "n_eff", "entropy"):
        assert set(out[key]) == {"mean", "se", "q05", "q50", "q95"}
    saved = np.load(path)
    assert saved["max_weight"].shape == (20,)
    assert np.mean(saved["max_weight"]) == pytest.approx(out["max_weight"]["mean"], rel=1e-12)
    assert np.all((saved["n_eff"] >= 1) & (saved["n_eff"] <= 2000))
    # the output: per-draw vectors and scaled tangential norms, summarized in "output"
    assert set(out["output"]) == {"radial_mean", "tangential_var", "scaled_tangential_norm"}
    assert set(out["output"]["scaled_tangential_norm"]) == {"mean", "se", "q05", "q50", "q95"}
    y, norms = saved["output"], saved["scaled_tangential_norm"]
    assert y.shape == (20, 3) and norms.shape == (20,)
    q = np.array([1.0, 0.0, 0.0])  # --query-cos 1: q = e_1
    assert out["output"]["radial_mean"] == pytest.approx(np.mean(y @ q), rel=1e-12)
    tan = y - np.outer(y @ q, q)
    assert out["output"]["tangential_var"] == pytest.approx(np.trace(np.cov(tan, rowvar=False)) / 2, rel=1e-10)
    scale = (0.5 * 2000) ** 0.5  # (kappa n)^(1/(2 gamma)), kappa = 1/2, gamma = 1 at d = 3
    np.testing.assert_allclose(norms, scale * np.linalg.norm(tan, axis=1), rtol=1e-12)
    assert np.mean(norms) == pytest.approx(out["output"]["scaled_tangential_norm"]["mean"], rel=1e-12)


def test_simulate_is_reproducible_and_limit_needs_no_keys():
    args = ("simulate", "--d", "3", "--n", "1e12", "--c", "2", "--reps", "500", "--method", "limit", "--json")
    a, b = (json.loads(run_cli(*args).stdout) for _ in range(2))
    assert a == b
    assert 0.5 < a["max_weight"]["mean"] < 1.0
    # limit law of the output at c = 2: E|T|^2 = 1.3113 (attnscale.output), E|T| below its root
    assert 0.5 < a["output"]["scaled_tangential_norm"]["mean"] < 1.3113**0.5
    assert 1.0 - a["output"]["radial_mean"] < 1e-11


def test_heat_json_contract():
    out = json.loads(run_cli("heat", "--sphere", "1", "--json").stdout)
    assert set(out) == {"displacement_order", "density_order", "density_order_without_laplacian", "table"}
    assert abs(out["density_order"] + 2) < 0.1 and abs(out["density_order_without_laplacian"] + 1) < 0.1
    proc = run_cli("heat", "--sphere", "3", check=False)
    assert proc.returncode == 2 and "--sphere" in proc.stderr and "Traceback" not in proc.stderr


def test_exponent_json_contract():
    out = json.loads(
        run_cli("exponent", "--d", "3", "--n-min", "1e3", "--n-max", "1e7", "--points", "5", "--size", "1000", "--json").stdout
    )
    assert {"slope", "slope_se", "target", "table"} <= set(out)
    assert abs(out["slope"] - 1.0) < max(4 * out["slope_se"], 1e-3)
    assert {"n", "beta_half", "beta_half_over_beta_star"} <= set(out["table"][0])


def test_simulate_fast_at_1e18():
    out = json.loads(run_cli("simulate", "--d", "3", "--n", "1e18", "--c", "1", "--reps", "200", "--method", "fast", "--json").stdout)
    assert out["n"] == 10**18 and 0.3 < out["max_weight"]["mean"] < 0.8


def test_critical_gaussian_keys_has_no_finite_endpoint():
    out = json.loads(run_cli("critical", "--law", "gaussian", "--d", "8", "--sigma", "2", "--n", "1e6", "--json").stdout)
    assert out["endpoint"] is None and out["gamma"] == 2.0
    # Gumbel class: beta*(n) is the hazard at the top of n scores, about sqrt(2 log n) / sigma
    assert out["beta_star"] == pytest.approx(np.sqrt(2 * np.log(1e6)) / 2, rel=0.15)


def test_estimate_from_keys_and_bad_files(tmp_path):
    rng = np.random.default_rng(5)
    keys = rng.standard_normal((20000, 3))
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    np.save(tmp_path / "k.npy", keys)
    np.save(tmp_path / "q.npy", np.array([0.0, 0.0, 1.0]))
    out = json.loads(
        run_cli("estimate", "--keys", str(tmp_path / "k.npy"), "--query", str(tmp_path / "q.npy"), "--n", "1e6", "--json").stdout
    )
    assert {"endpoint", "gamma", "gamma_ci", "kappa", "kind", "beta_star"} <= set(out)
    # the command is a thin layer over estimate_payload (whose calibration tests/test_estimate.py checks)
    from attnscale.cli.payloads import estimate_payload

    direct = estimate_payload(np.array([0.0, 0.0, 1.0]), keys, ns=[10**6], rng=0)
    assert out["kind"] == direct["kind"] and out["gamma"] == pytest.approx(direct["gamma"], rel=1e-12)
    assert out["gamma_ci"] == pytest.approx(direct["gamma_ci"], rel=1e-12)
    assert set(out["beta_star"]) == {"1000000"}
    for args, fragment in (
        (("--keys", str(tmp_path / "missing.npy"), "--query", str(tmp_path / "q.npy")), "--keys"),
        (("--keys", str(tmp_path / "k.npy")), "--query"),
        ((), "--keys"),
    ):
        proc = run_cli("estimate", *args, check=False)
        assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr


def test_schedules_json_contract():
    out = json.loads(run_cli("schedules", "--train-len", "4096", "--n", "1e6", "--law", "uniform", "--d", "64", "--json").stdout)
    rules = {r["name"]: r for r in out["rules"]}
    assert {"standard", "yarn", "logn", "llama4", "critical", "critical_asymptotic"} <= set(rules)
    keys = {"name", "multiplier", "regime", "c_eff", "c_asymptotic", "regime_asymptotic", "asymptotics_reached",
            "max_weight", "n_eff"}
    assert all(keys <= set(r) for r in out["rules"])
    # default base beta: beta_half(L), critical at the training length; the finite-n rule keeps E W_1 = 1/2
    assert abs(rules["critical"]["max_weight"] - 0.5) < 0.03 and rules["critical"]["regime"] == "critical"
    assert rules["yarn"]["multiplier"] == pytest.approx((0.1 * np.log(1e6 / 4096) + 1) ** 2, rel=1e-12)
    proc = run_cli("schedules", "--train-len", "1", check=False)
    assert proc.returncode == 2 and "--train-len" in proc.stderr


def test_probe_rejects_a_missing_texts_folder(tmp_path):
    proc = run_cli("probe", "--texts", str(tmp_path / "nowhere"), check=False)
    assert proc.returncode == 2 and "--texts" in proc.stderr and "Traceback" not in proc.stderr


def test_repeated_calls_are_served_from_the_cache(tmp_path):
    args = ("critical", "--d", "64", "--n", "1e6", "--beta", "8", "--size", "500", "--json")
    first = run_cli(*args).stdout
    cache = tmp_path / "attnscale-cache"
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1 and files[0].startswith("critical-")
    assert run_cli(*args).stdout == first
    assert sorted(p.name for p in cache.iterdir()) == files  # read, not written again
    other = json.loads(run_cli(*args[:-1], "--seed", "1", "--json").stdout)  # another seed: another entry
    assert other["max_weight"]["mean"] != json.loads(first)["max_weight"]["mean"]
    assert len(list(cache.iterdir())) == 2
    assert run_cli(*args, "--no-cache").stdout == first  # recomputed, same numbers


# ---------------------------------------------------------------------------
# Input errors (exit 2) against bugs (exit 1), in process
# ---------------------------------------------------------------------------


def _main(monkeypatch, capsys, *args):
    from attnscale import cli

    monkeypatch.setattr(sys, "argv", ["attnscale", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    return exc.value.code, capsys.readouterr().err


def test_input_error_is_usage_exit_2(monkeypatch, capsys):
    code, err = _main(monkeypatch, capsys, "critical", "--law", "power", "--d", "3", "--eta", "-5")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: eta: got -5.0")


@pytest.mark.parametrize("exc", [OverflowError("math range error"), ValueError("internal\nbug"), ZeroDivisionError("x")])
def test_internal_error_is_one_line_exit_1(monkeypatch, capsys, exc):
    """Anything but an InputError or a click usage error is a bug: one line with its type, exit 1."""
    import attnscale.cli.payloads

    def broken(*args, **kwargs):
        raise exc

    # the command imports its payload builder at call time; patching a module that other modules
    # bind by name on first (lazy) import would leak the broken function into later tests
    monkeypatch.setattr(attnscale.cli.payloads, "critical_payload", broken)
    monkeypatch.delenv("ATTNSCALE_DEBUG", raising=False)
    code, err = _main(monkeypatch, capsys, "critical", "--d", "3")
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "bug" in err and f"{type(exc).__name__}: {' '.join(str(exc).split())}" in err
    monkeypatch.setenv("ATTNSCALE_DEBUG", "1")
    code, err = _main(monkeypatch, capsys, "critical", "--d", "3")
    assert code == 1 and "Traceback" in err and err.rstrip().splitlines()[-1].startswith("internal error")


def test_click_usage_error_is_exit_2(monkeypatch, capsys):
    code, err = _main(monkeypatch, capsys, "critical", "--no-such-option")
    assert code == 2 and err.count("\n") == 1


# ---------------------------------------------------------------------------
# Large dimension: every command at d = 4096, 1e4, 1e5 (kappa = exp(0.35 d) is not a float64)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("d", [4096, 10_000, 100_000])
def test_critical_at_large_d(d):
    """beta*(n) = (kappa n)^(1/gamma) in log space, against mpmath."""
    import mpmath as mp

    out = json.loads(run_cli("critical", "--law", "uniform", "--d", str(d), "--n", "1e6", "--beta", "3", "--json").stdout)
    a = mp.mpf(d - 1) / 2
    log_kappa = -a * mp.log(2) - mp.log(a) - (2 * mp.loggamma(a) - mp.loggamma(2 * a))
    assert out["kappa"] is None and "float64" in out["note"]
    assert abs(out["log_kappa"] - float(log_kappa)) <= 1e-12 * abs(float(log_kappa))
    beta_star = float(mp.exp((log_kappa + mp.log(10**6)) / a))
    assert abs(out["beta_star"] / beta_star - 1) < 1e-12
    assert abs(out["c_asymptotic"] - 3 / beta_star) < 1e-12
    # the exact law at n = 1e6: beta = 3 on a sphere this large averages nearly every key
    assert out["regime"] == "subcritical" and out["n_eff"]["mean"] > 0.9e6


@pytest.mark.parametrize("law", ["vmf", "power", "subsphere"])
def test_critical_other_laws_at_d_1e5(law):
    out = json.loads(
        run_cli("critical", "--law", law, "--d", "100000", "--subdim", "5000", "--n", "1e6", "--json").stdout
    )
    assert out["kappa"] is None and np.isfinite(out["log_kappa"]) and 1.0 < out["beta_star"] < 3.0


@pytest.mark.parametrize(("d", "method", "n", "reps"), [
    (4096, "fast", "1e6", 20), (10_000, "limit", "1e6", 20), (100_000, "fast", "1e6", 8),
    (100_000, "limit", "1e6", 8), (100_000, "brute", "100", 3),
])
def test_simulate_at_large_d(d, method, n, reps):
    """Finite statistics at d up to 1e5; at c = 1 the weights are nearly uniform (beta* ~ 2, scores ~ 1/sqrt(d)),
    so fast and brute give n_eff close to n, and the limit law (gamma = (d-1)/2 -> inf) W_1 -> 0, n_eff = inf."""
    out = json.loads(
        run_cli("simulate", "--d", str(d), "--n", n, "--c", "1", "--reps", str(reps), "--method", method, "--json").stdout
    )
    assert out["reps"] == reps
    w1 = out["max_weight"]["mean"]
    if method == "limit":
        assert w1 == 0.0 and out["n_eff"]["mean"] is None
    else:
        assert 1.0 / float(n) <= w1 < 2.0 / float(n)
        assert 0.9 * float(n) < out["n_eff"]["mean"] <= float(n)
    assert out["output"]["radial_mean"] is not None and out["output"]["tangential_var"] >= 0


def test_exponent_schedules_estimate_at_large_d(tmp_path):
    for d in (4096, 100_000):
        exp = json.loads(run_cli("exponent", "--d", str(d), "--n-max", "1e9", "--points", "4", "--size", "200", "--json").stdout)
        bh = [row["beta_half"] for row in exp["table"]]
        assert np.all(np.isfinite(bh)) and np.all(np.diff(bh) > 0)
        sch = json.loads(run_cli("schedules", "--law", "uniform", "--d", str(d), "--json").stdout)
        assert sch["tail"]["kappa"] is None and np.isfinite(sch["tail"]["log_kappa"])
        assert all(np.isfinite(row["c_eff"]) and np.isfinite(row["c_asymptotic"]) for row in sch["rules"])
    keys = UniformSphere(100_000).sample(100, rng=0)
    q = np.eye(1, 100_000)[0]
    np.save(tmp_path / "k.npy", keys)
    np.save(tmp_path / "q.npy", q)
    est = json.loads(run_cli("estimate", "--keys", str(tmp_path / "k.npy"), "--query", str(tmp_path / "q.npy"), "--json").stdout)
    assert est["n_total"] == 100 and est["kind"] in ("weibull", "gumbel")


# ---------------------------------------------------------------------------
# Startup: the command line imports typer, not the library's heavy dependencies
# ---------------------------------------------------------------------------


def test_cli_import_loads_no_heavy_module():
    """``attnscale --help`` must answer fast: importing the CLI loads no numerical library."""
    code = (
        "import sys, attnscale, attnscale.cli\n"
        "heavy = ('numpy', 'scipy', 'scipy.stats', 'matplotlib', 'torch', 'transformers', 'pyarrow', 'numba')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == []


def test_help_loads_no_heavy_module():
    code = (
        "import sys\n"
        "from attnscale.cli import main\n"
        "sys.argv = ['attnscale', 'critical', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "print(' '.join(m for m in ('numpy', 'scipy', 'matplotlib', 'torch') if m in sys.modules), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--law" in proc.stdout and proc.stderr.split() == []


def test_package_is_lazy_and_keeps_its_names():
    """``import attnscale`` loads nothing heavy; public names load on use, ``attention`` stays the function."""
    code = (
        "import sys, attnscale as ats\n"
        "assert 'numpy' not in sys.modules\n"
        "import attnscale.heat  # imports the submodule attnscale.attention first\n"
        "assert callable(ats.attention) and ats.attention.__module__ == 'attnscale.attention', ats.attention\n"
        "from attnscale import attention, UniformSphere, regime\n"
        "assert attention is sys.modules['attnscale.attention'].attention\n"
        "assert ats.laws is sys.modules['attnscale.laws'] and ats.regime is regime\n"
        "assert set(ats.__all__) <= set(dir(ats))\n"
        "ns = {}\n"
        "exec('from attnscale import *', ns)\n"
        "assert set(ats.__all__) <= set(ns)\n"
        "try:\n"
        "    ats.no_such_name\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_main_does_not_use_private_typer_modules():
    """Usage errors are recognized through typer's public API (typer >= 0.26 vendors click privately)."""
    import ast
    import inspect

    from attnscale import cli

    tree = ast.parse(inspect.getsource(cli))
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imported if m.startswith("typer.")]
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr.startswith("_click")]
