"""Tests of cli/payloads.py: the JSON objects of the commands.

The heat, estimate and schedules payload tests moved here from tests/test_heat.py,
tests/test_estimate.py and tests/test_schedules.py with the payload builders.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from attnscale.cli.payloads import estimate_payload, heat_payload, schedules_payload
from attnscale.laws import UniformSphere
from attnscale.tails import ScoreTail


def test_heat_payload():
    """The fitted orders of the heat step and their table (docs/theory.md section 6)."""
    s = heat_payload(2, quick=True)
    assert set(s) == {"displacement_order", "density_order", "density_order_without_laplacian", "table"}
    assert len(s["table"]) == 5 and s["table"][0]["beta"] == 100.0
    assert abs(s["density_order"] + 2.0) < 0.1


def test_several_queries_summarize_per_query_and_serialize():
    """Several queries: one row per query and the count of each tail class, all JSON."""
    rng = np.random.default_rng(9)
    keys = UniformSphere(3).sample(3000, rng)
    qs = np.eye(3)
    out = estimate_payload(qs, keys, ns=[3000, 10**9])
    assert len(out["queries"]) == 3 and sum(out["kinds"].values()) == 3
    text = json.dumps(out, allow_nan=False)
    row = json.loads(text)["queries"][0]
    assert set(row) >= {"endpoint", "gamma", "gamma_ci", "kappa", "kind", "beta_star"}
    assert set(row["beta_star"]) == {"3000", "1000000000"}
    single = estimate_payload(rng.standard_normal(4000), ns=[10**6])
    json.dumps(single, allow_nan=False)
    assert single["kind"] in ("gumbel", "weibull")


def test_schedules_payload_c_and_regime_against_direct_computation():
    from attnscale.limit_means import critical_band

    L, n, beta0 = 512, 131072, 40.0
    tail = ScoreTail(endpoint=0.8, gamma=3.0, kappa=0.02)
    out = schedules_payload(L, n, tail, base_beta=beta0, params={"ssmax": {"s": 0.2}})
    bstar = (0.02 * n) ** (1 / 3.0)
    assert out["tail"]["beta_star"] == pytest.approx(bstar, rel=1e-13)
    expected_m = {
        "standard": 1.0,
        "yarn": (0.1 * math.log(n / L) + 1) ** 2,
        "logn": math.log(n) / math.log(L),
        "entropy": math.log(n) / math.log(512),
        "ssmax": 0.2 * math.log(n),
        "llama4": 1 + 0.1 * math.log(1 + n // 8192),
        "qwen_logn": math.log(n) / math.log(L),
        "grok": math.log2(n - 1) / math.log2(L),
        "critical_asymptotic": (n / L) ** (1 / 3.0),
    }
    # with only a tail: no finite-n verdict, and the finite-n critical rule is left out
    assert [r["name"] for r in out["rules"]] == list(expected_m)
    lo, hi = critical_band(3.0)
    for row in out["rules"]:
        m = expected_m[row["name"]]
        c = beta0 * m / bstar
        assert row["multiplier"] == pytest.approx(m, rel=1e-12)
        assert row["c_asymptotic"] == pytest.approx(c, rel=1e-12)
        assert row["regime_asymptotic"] == ("subcritical" if c < lo else "supercritical" if c > hi else "critical")
        assert row["regime"] is None and row["c_eff"] is None
    # the asymptotic critical rule keeps c at its training-length value
    crit = out["rules"][-1]["c_asymptotic"]
    assert crit == pytest.approx(beta0 / (0.02 * L) ** (1 / 3.0), rel=1e-12)


def test_schedules_payload_with_a_law_gives_finite_n_verdicts():
    from attnscale.finite import regime
    from attnscale.laws import UniformScoreLaw

    law = UniformScoreLaw(9)
    out = schedules_payload(256, 8192, law, size=4000)
    names = [r["name"] for r in out["rules"]]
    assert "critical" in names and "critical_asymptotic" in names
    rows = {r["name"]: r for r in out["rules"]}
    # default base beta: beta_half(L), so the finite-n critical rule keeps E W_1 near 1/2
    assert abs(rows["critical"]["max_weight"] - 0.5) < 0.03
    # each row is the verdict of finite.regime at beta0 m(n)
    direct = regime(8192, out["base_beta"] * rows["logn"]["multiplier"], law, size=4000)
    assert rows["logn"]["c_eff"] == pytest.approx(direct.c_eff, rel=1e-12)
    assert rows["logn"]["regime"] == direct.name


def test_schedules_payload_without_tail_and_global_regime():
    out = schedules_payload(4096, 10**6)
    assert not {"critical", "critical_asymptotic"} & {r["name"] for r in out["rules"]}
    assert all(r["c_asymptotic"] is None and r["regime"] is None for r in out["rules"])
    low = schedules_payload(4096, 10**6, ScoreTail(1.0, 1.0, 1.0), base_beta=0.5)
    assert low["rules"][0]["regime_asymptotic"] == "global"  # beta <= 1: the kernel covers the sphere


def test_schedules_payload_no_overflow_at_huge_n():
    tail = ScoreTail(1.0, 2.0, 1.0)
    out = schedules_payload(2, 10**18, tail, base_beta=1e12)
    for row in out["rules"]:
        assert math.isfinite(row["multiplier"]) and math.isfinite(row["c_asymptotic"])


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: heat_payload(0), "sphere"),
        (lambda: heat_payload(1, quick="yes"), "quick"),
        (lambda: schedules_payload(512, 10, base_beta=-1.0), "base_beta"),
        (lambda: schedules_payload(512, 10, params={"nope": {}}), "params"),
        (lambda: schedules_payload(512, 10, tail=(1.0, 1.0, 1.0)), "tail"),
    ],
)
def test_bad_input_raises_input_error_naming_argument(call, name):
    """Moved from the bad-input tables of tests/test_heat.py and tests/test_schedules.py."""
    from attnscale._errors import InputError

    with pytest.raises(InputError, match=name):
        call()
