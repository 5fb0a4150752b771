"""Rules used in practice against their published formulas, written here independently."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attnscale.schedules import (
    RULES,
    critical_asymptotic_multipliers,
    critical_multiplier,
    critical_multipliers,
    entropy_invariant_multiplier,
    grok_multiplier,
    llama4_multiplier,
    logn_multiplier,
    qwen_logn_multiplier,
    rule_multiplier,
    rule_multipliers,
    ssmax_multiplier,
    standard_multiplier,
    yarn_multiplier,
)
from attnscale.tails import ScoreTail

# (n, L) pairs: below, at and far above the training length, up to n = 1e18.
GRID = [(1, 2), (100, 512), (512, 512), (513, 512), (4096, 512), (131072, 4096), (10**6, 2048), (10**18, 8192)]


@pytest.mark.parametrize("n,L", GRID)
def test_yarn_is_the_square_of_the_rope_mscale(n, L):
    # YaRN code: mscale = 0.1 * ln(scale) + 1 if scale > 1 else 1, applied to cos and sin.
    scale = n / L
    mscale = 0.1 * np.log(scale) + 1.0 if scale > 1 else 1.0
    assert yarn_multiplier(n, L) == pytest.approx(mscale * mscale, rel=1e-14)


def test_yarn_known_values():
    # s = e^10: (0.1 * 10 + 1)^2 = 4 exactly in exact arithmetic.
    L = 1000
    n = round(L * math.exp(10.0))
    assert yarn_multiplier(n, L) == pytest.approx((0.1 * math.log(n / L) + 1) ** 2, rel=1e-15)
    assert yarn_multiplier(n, L) == pytest.approx(4.0, rel=1e-9)
    assert yarn_multiplier(2 * L, L, coefficient=0.0) == 1.0


@pytest.mark.parametrize("n,L", GRID)
def test_logn_matches_qwen_and_longrope(n, L):
    qwen = math.log(n, L) if n > L else 1.0  # Qwen's logn_list
    assert logn_multiplier(n, L) == pytest.approx(qwen, rel=1e-14)
    if n > L:  # LongRoPE: attention_factor = sqrt(1 + ln(s)/ln(L)) on cos and sin, s = n / L
        factor = math.sqrt(1.0 + math.log(n / L) / math.log(L))
        assert logn_multiplier(n, L) == pytest.approx(factor**2, rel=1e-12)


def test_logn_known_values():
    assert logn_multiplier(32768, 2048) == pytest.approx(15.0 / 11.0, rel=1e-15)  # 2^15 over 2^11
    assert logn_multiplier(2048, 2048) == 1.0


@pytest.mark.parametrize("n,L", GRID)
def test_entropy_invariant_is_log_base_512(n, L):
    assert entropy_invariant_multiplier(n) == pytest.approx(math.log(n, 512) if n > 1 else 0.0, rel=1e-14, abs=0)
    assert rule_multiplier("entropy", n, L) == entropy_invariant_multiplier(n)
    assert entropy_invariant_multiplier(2**27) == pytest.approx(3.0, rel=1e-15)  # 512^3
    assert entropy_invariant_multiplier(64, base=8) == pytest.approx(2.0, rel=1e-15)


@pytest.mark.parametrize("n,L", GRID)
def test_ssmax_is_s_log_n(n, L):
    for s in (0.05, 0.43, 1.7):
        assert ssmax_multiplier(n, s) == pytest.approx(s * np.log(float(n)), rel=1e-14, abs=0)
    # the registry default s = 1 / ln L makes SSMax equal the standard rule at n = L
    assert rule_multiplier("ssmax", L, L) == pytest.approx(1.0, rel=1e-15)
    assert rule_multiplier("ssmax", n, L, s=0.3) == ssmax_multiplier(n, 0.3)


@pytest.mark.parametrize("n", [1, 8190, 8191, 8192, 8193, 16383, 16384, 10**6, 10**18])
def test_llama4_matches_the_reference_code(n):
    # Llama 4: attn_scales = log(floor((positions + 1) / floor_scale) + 1) * attn_scale + 1,
    # for the query at 0-based position p = n - 1.
    p = n - 1
    expected = math.log(math.floor((p + 1.0) / 8192) + 1.0) * 0.1 + 1.0
    assert llama4_multiplier(n) == pytest.approx(expected, rel=1e-14)
    assert llama4_multiplier(n, floor_scale=100, attn_scale=0.25) == pytest.approx(
        math.log(math.floor(n / 100) + 1.0) * 0.25 + 1.0, rel=1e-14
    )


def test_llama4_steps():
    assert llama4_multiplier(8191) == 1.0
    assert llama4_multiplier(8192) == pytest.approx(1 + 0.1 * math.log(2), rel=1e-15)
    assert llama4_multiplier(3 * 8192 - 1) == pytest.approx(1 + 0.1 * math.log(3), rel=1e-15)


@pytest.mark.parametrize("n,L", [(p, q) for p, q in GRID if q >= 2])
def test_critical_asymptotic_rule_is_ratio_of_critical_scales(n, L):
    for gamma, kappa in ((0.5, 3.0), (1.0, 0.25), (4.5, 1e-3), (63.5, 2.0)):
        tail = ScoreTail(0.7, gamma, kappa)
        expected = math.exp((math.log(n) - math.log(L)) / gamma)  # (n/L)^(1/gamma), kappa cancels
        if math.log(n / L) / gamma > 700:
            with pytest.raises(ValueError, match="n"):
                rule_multiplier("critical_asymptotic", n, L, tail)
            continue
        assert rule_multiplier("critical_asymptotic", n, L, tail) == pytest.approx(expected, rel=1e-12)


def test_standard_is_one():
    for n, L in GRID:
        assert standard_multiplier(n) == 1.0
        assert rule_multiplier("standard", n, L) == 1.0


def test_registry_names_sources_and_defaults():
    assert list(RULES) == ["standard", "yarn", "logn", "entropy", "ssmax", "llama4", "qwen_logn", "grok", "critical",
                           "critical_asymptotic"]
    for rule in RULES.values():
        assert rule.source and rule.formula
    assert RULES["critical"].needs_law and RULES["critical_asymptotic"].needs_tail and not RULES["yarn"].needs_tail


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: yarn_multiplier(0, 512), "n"),
        (lambda: yarn_multiplier(10, 1), "train_len"),
        (lambda: yarn_multiplier(10, 512, coefficient=-1), "coefficient"),
        (lambda: logn_multiplier(10**19, 512), "n"),
        (lambda: entropy_invariant_multiplier(10, base=1), "base"),
        (lambda: ssmax_multiplier(10, 0.0), "s"),
        (lambda: llama4_multiplier(10, floor_scale=0), "floor_scale"),
        (lambda: llama4_multiplier(10, attn_scale=float("nan")), "attn_scale"),
        (lambda: rule_multiplier("temperature", 10, 512), "name"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="tail"):
        rule_multiplier("critical", 10, 512)
    with pytest.raises(TypeError, match="params"):
        rule_multiplier("yarn", 10, 512, s=3.0)


# ----------------------------------------------------------------- rules as the models spell them


def test_llama4_offset_zero_is_ministral_llama_4_scaling_beta():
    # Ministral 3: 1 + beta * log(1 + floor(position_ids / original_max_position_embeddings)), 0-based positions
    beta, F = 0.1, 16384
    for p in (0, 16382, 16383, 16384, 3 * 16384, 10**6):
        expected = 1 + beta * math.log(1 + math.floor(p / F))
        assert llama4_multiplier(p + 1, floor_scale=F, attn_scale=beta, offset=0) == pytest.approx(expected, rel=1e-14)
    with pytest.raises(ValueError, match="offset"):
        llama4_multiplier(10, offset=2)


@pytest.mark.parametrize("T", [2, 512, 4096])
def test_qwen_logn_matches_logn_list(T):
    # Qwen-7B: logn_list = [log(i, seq_length) if i > seq_length else 1 for i in range(1, ...)]; query p gets logn_list[p]
    logn_list = [math.log(i, T) if i > T else 1 for i in range(1, 3 * T + 2)]
    ps = np.array([0, T - 2, T - 1, T, T + 1, 2 * T, 3 * T])
    ps = ps[ps >= 0]
    got = rule_multipliers("qwen_logn", ps + 1, 99, seq_length=T)
    np.testing.assert_allclose(got, [logn_list[p] for p in ps], rtol=1e-14)
    for p in ps:
        assert qwen_logn_multiplier(int(p) + 1, T) == pytest.approx(logn_list[p], rel=1e-14)
    assert rule_multiplier("qwen_logn", 5 * T, T) == rule_multiplier("logn", 5 * T, T)  # seq_length defaults to L


def test_grok_matches_the_kernel_formula():
    # sglang: reg = log2(qidx) / log2(T) if qidx > T else 1, qidx the 0-based absolute query position
    T = 1024
    for qidx in (0, 1, 1023, 1024, 1025, 4096, 10**6):
        expected = math.log2(qidx) / math.log2(T) if qidx > T else 1.0
        assert grok_multiplier(qidx + 1, T) == pytest.approx(expected, rel=1e-14)
        assert rule_multipliers("grok", [qidx + 1], 8192, attn_temperature_len=T)[0] == pytest.approx(expected, rel=1e-14)


def test_yarn_per_model_factor_as_transformers_computes_it():
    def get_mscale(scale, mscale=1.0):  # the paper's eq. 21
        return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0

    # DeepSeek-V3: factor 40, mscale = mscale_all_dim = 1: rotary factor 1, softmax scale times get_mscale(40, 1)^2
    assert yarn_multiplier(7, 4096, factor=40, mscale=1.0, mscale_all_dim=1.0) == pytest.approx(get_mscale(40.0) ** 2, rel=1e-14)
    assert get_mscale(40.0) ** 2 == pytest.approx(1.8739, abs=5e-5)
    # mscale 0.707, mscale_all_dim 0.707 would cancel in the rotary factor and keep the softmax factor
    assert yarn_multiplier(1, 8, factor=4, mscale=0.707, mscale_all_dim=0.707) == pytest.approx(get_mscale(4, 0.707) ** 2, rel=1e-14)
    # a plain YaRN model (Qwen2.5, factor 4): attention_factor = get_mscale(4), squared on the logits
    assert yarn_multiplier(10**6, 32768, factor=4.0) == pytest.approx(get_mscale(4.0) ** 2, rel=1e-14)
    # an explicit attention_factor wins over the inferred one
    assert yarn_multiplier(1, 8, factor=4.0, mscale=2.0, attention_factor=1.2) == pytest.approx(1.44, rel=1e-14)
    assert yarn_multiplier(1, 8, factor=0.5) == 1.0  # no extension
    with pytest.raises(TypeError, match="mscale"):
        yarn_multiplier(10, 8, mscale=1.0)
    with pytest.raises(ValueError, match="factor"):
        yarn_multiplier(10, 8, factor=-1.0)


RULE_PARAMS = [
    ("standard", {}),
    ("yarn", {}),
    ("yarn", {"factor": 8.0, "mscale_all_dim": 0.5}),
    ("logn", {}),
    ("entropy", {"base": 64}),
    ("ssmax", {"s": 0.3}),
    ("llama4", {"floor_scale": 7, "offset": 0}),
    ("llama4", {}),
    ("qwen_logn", {"seq_length": 100}),
    ("grok", {"attn_temperature_len": 50}),
    ("critical_asymptotic", {"tail": ScoreTail(1.0, 1.7, 0.2)}),
]


@pytest.mark.parametrize("rule,params", RULE_PARAMS)
def test_vectorized_form_equals_scalar_form(rule, params):
    params = dict(params)
    tail = params.pop("tail", None)
    ns = np.array([1, 2, 6, 7, 8, 49, 50, 51, 52, 99, 100, 101, 512, 8191, 8192, 20000, 10**6, 10**12, 10**18])
    got = rule_multipliers(rule, ns, 64, tail, **params)
    assert got.shape == ns.shape and got.dtype == np.float64
    want = [rule_multiplier(rule, int(n), 64, tail, **params) for n in ns]
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    two_d = rule_multipliers(rule, ns[:6].reshape(2, 3), 64, tail, **params)
    np.testing.assert_array_equal(two_d, got[:6].reshape(2, 3))


def test_ssmax_per_head_and_critical_through_one_function():
    s = np.array([0.1, 0.2, 0.5])
    ns = np.arange(1, 11)
    got = rule_multipliers("ssmax", ns, 64, s=s)
    assert got.shape == (3, 10)
    np.testing.assert_allclose(got, s[:, None] * np.log(ns)[None, :], rtol=1e-15)
    tail = ScoreTail(1.0, 2.0, 0.5)
    np.testing.assert_allclose(critical_asymptotic_multipliers([64, 256, 64 * 10**4], 64, tail), [1.0, 2.0, 100.0], rtol=1e-12)


def test_finite_critical_rule_through_one_function_and_its_limit():
    from attnscale.laws import UniformScoreLaw

    law = UniformScoreLaw(3)
    assert critical_multiplier(10**6, 1000, law) == critical_multipliers([10**6], 1000, law)[0]
    # d = 3 reaches its asymptotics: beta_half(n)/beta_half(L) -> (n/L)^(1/gamma) = 1000 (4 SE ~ 3%)
    assert critical_multiplier(10**6, 1000, law) == pytest.approx(1000.0, rel=0.03)
    with pytest.raises(TypeError, match="critical_asymptotic"):
        critical_multipliers([10], 8, ScoreTail(1.0, 2.0, 0.5))


def test_finite_critical_rule_interpolates_a_long_context():
    from attnscale.laws import UniformScoreLaw
    from attnscale.schedules import FINITE_GRID

    law = UniformScoreLaw(64)
    ns = np.arange(4096, 65537)  # many distinct lengths: a log grid of FINITE_GRID points, interpolated
    got = critical_multipliers(ns, 4096, law)
    assert np.all(np.diff(got) >= -1e-12)
    some = [4096, 9000, 65536]
    assert len(some) <= FINITE_GRID
    exact = critical_multipliers(some, 4096, law)  # solved at each length, on other common draws
    # 4 x the SE of a log ratio from two curves (each <= 2 x 0.004 at d = 64)
    np.testing.assert_allclose(got[np.array(some) - 4096], exact, rtol=0.035)
    short = critical_multipliers([1, 2, 3], 64, law)
    assert short[0] == short[1] == short[2]  # n < 3 takes m(3): E W_1 >= 1/2 at every beta there


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: rule_multipliers("logn", [0, 5], 8), ValueError, "ns"),
        (lambda: rule_multipliers("logn", [1.5], 8), ValueError, "ns"),
        (lambda: rule_multipliers("logn", ["a"], 8), TypeError, "ns"),
        (lambda: rule_multipliers("nope", [1], 8), ValueError, "name"),
        (lambda: rule_multipliers("llama4", [1], 8, attn_scale=[0.1, 0.2]), TypeError, "params"),
        (lambda: rule_multipliers("ssmax", [1], 8, s=[0.1, -1.0]), ValueError, "s"),
        (lambda: rule_multipliers("qwen_logn", [1], 8, seq_length=1), ValueError, "seq_length"),
        (lambda: rule_multipliers("critical", [1], 8), TypeError, "tail"),
        (lambda: rule_multipliers("critical_asymptotic", [1], 8), TypeError, "tail"),
    ],
)
def test_vectorized_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_schedules_cli_takes_rule_parameters():
    import json
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "attnscale", "schedules", *args], capture_output=True, text=True, timeout=120)

    res = run("--train-len", "4096", "--n", "1e6", "--param", "yarn.factor=40", "--param", "yarn.mscale=1",
              "--param", "yarn.mscale_all_dim=1", "--param", "grok.attn_temperature_len=1024", "--json")
    assert res.returncode == 0, res.stderr
    rules = {r["name"]: r["multiplier"] for r in json.loads(res.stdout)["rules"]}
    assert rules["yarn"] == pytest.approx((0.1 * math.log(40) + 1) ** 2, rel=1e-14)  # DeepSeek-V3: 1.8739
    assert rules["grok"] == pytest.approx(math.log2(10**6 - 1) / 10, rel=1e-14)
    assert rules["qwen_logn"] == pytest.approx(math.log(1e6) / math.log(4096), rel=1e-14)
    for bad, fragment in ((("--param", "yarn.factor=x"), "--param"), (("--param", "yarn.nope=1"), "params")):
        res = run(*bad)
        assert res.returncode == 2 and fragment in res.stderr and res.stderr.count("\n") == 1


def test_critical_multipliers_on_a_long_context_interpolate_exactly_for_a_power_law():
    from attnscale.schedules import CRITICAL_GRID

    tail = ScoreTail(1.0, 2.7, 0.4)
    ns = np.arange(1, 20001)
    assert ns.size > CRITICAL_GRID
    got = critical_asymptotic_multipliers(ns, 512, tail)
    np.testing.assert_allclose(got, (ns / 512.0) ** (1 / 2.7), rtol=1e-12)  # (n/L)^(1/gamma), written out
