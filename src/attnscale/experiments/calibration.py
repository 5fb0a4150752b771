"""Calibration of the tail estimator on exact laws: coverage, bias and RMSE of :func:`~attnscale.estimate.estimate_tail`.

The harness draws samples from exact score laws (:mod:`attnscale.laws`), at the sizes met in
practice and at huge ``N`` (the top ``m`` of ``N`` drawn exactly, docs/theory.md section 4),
and scores the estimator's intervals and point estimates against each law's ``tail()``
(docs/theory.md section 2).  The ``tail_classes`` experiment runs it, one task per case.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validate import InputError, RngLike, as_generator, check_int
from ..estimate import LEVEL, estimate_tail
from ..laws import BetaScoreLaw, GaussianScoreLaw, GreatSubsphere, UniformScoreLaw, VonMisesFisher
from ..tails import critical_beta

__all__ = ["CALIBRATION_CASES", "calibration_case", "calibration_table"]

#: Calibration cases: name -> (score-law factory, N, scores generated: "all" or the top m).
#: ``N`` above 1e6 draws the top ``m`` of ``N`` exactly (Renyi representation).
CALIBRATION_CASES: dict[str, tuple[str, int, int | None]] = {
    "uniform d=3": ("uniform3", 10_000, None),
    "uniform d=9": ("uniform9", 10_000, None),
    "uniform d=9, N=1e12": ("uniform9", 10**12, 2000),
    "uniform d=33": ("uniform33", 10_000, None),
    "uniform d=33, N=1e18": ("uniform33", 10**18, 2000),
    "subsphere m=2 in d=5": ("subsphere", 10_000, None),
    "subsphere m=3, query off the span": ("subsphere_off", 10_000, None),
    "power density d=3, eta=2": ("power", 10_000, None),
    "vMF d=3, kappa=5, at the mode": ("vmf_mode", 10_000, None),
    "vMF d=3, kappa=2, query 2.5 rad away": ("vmf_far", 100_000, None),
    "Gaussian": ("gaussian", 10_000, None),
    "Gaussian, N=1e12": ("gaussian", 10**12, 2000),
}


def _calibration_law(key: str):
    """The exact score law of a calibration case."""
    if key.startswith("uniform"):
        return UniformScoreLaw(int(key[len("uniform"):]))
    if key == "subsphere":
        return GreatSubsphere(5, 2).score_law([1.0, 0.0, 0.0, 0.0, 0.0])
    if key == "subsphere_off":
        return GreatSubsphere(5, 3).score_law([0.6, 0.0, 0.0, 0.8, 0.0])
    if key == "power":
        return BetaScoreLaw(2.0, 1.0, endpoint=1.0, width=2.0)
    if key == "vmf_mode":
        return VonMisesFisher([0.0, 0.0, 1.0], 5.0).score_law([0.0, 0.0, 1.0])
    if key == "vmf_far":
        return VonMisesFisher([0.0, 0.0, 1.0], 2.0).score_law([math.sin(2.5), 0.0, math.cos(2.5)])
    if key == "gaussian":
        return GaussianScoreLaw(1.0)
    raise ValueError(f"case: unknown calibration law {key!r}")


def _top_scores(law, big_n: int, m: int, gen: np.random.Generator) -> np.ndarray:
    r"""The top ``m`` of ``big_n`` i.i.d. scores, exactly: :math:`U_{(k)} = \Gamma_k/\Gamma_{N+1}` (section 4)."""
    gam = np.cumsum(gen.standard_exponential(m))
    total = gam[-1] + gen.standard_gamma(float(big_n + 1 - m))
    return law.reference - np.asarray(law.gap_ppf(gam / total), dtype=float)


def calibration_case(name: str, reps: int = 200, rng: RngLike = 0, level: float = LEVEL) -> dict[str, Any]:
    r"""Coverage, bias and RMSE of :func:`estimate_tail` over ``reps`` samples of one exact law.

    Truths (docs/theory.md section 2): the law's ``tail()``; Weibull cases are
    scored on :math:`\eta = 1/\gamma` (bias, RMSE; coverage of :math:`\gamma`), the
    endpoint and :math:`\log\beta^*(N)`, :math:`\beta^* = (\kappa N)^{1/\gamma}`; Gumbel
    cases on :math:`\eta = 0` (covered when ``gamma_ci`` reaches ``inf``) and on the
    exact hazard scale :math:`a_N` of ``GaussianScoreLaw.critical_beta``.

    Returns
    -------
    dict
        ``case, n, reps, kind, kind_rate`` (fraction of estimates of the true
        kind), ``cover_gamma, cover_endpoint, cover_beta`` (fractions),
        ``bias_eta, rmse_eta, bias_endpoint, rmse_endpoint, bias_log_beta,
        rmse_log_beta`` (``nan`` where undefined), ``k`` (median top size).

    Examples
    --------
    >>> row = calibration_case("uniform d=3", reps=20, rng=1)
    >>> row["reps"], row["cover_gamma"] >= 0.8
    (20, True)
    """
    if name not in CALIBRATION_CASES:
        raise InputError(f"name: got {name!r}; expected one of {', '.join(CALIBRATION_CASES)}")
    key, big_n, m = CALIBRATION_CASES[name]
    reps = check_int(reps, "reps", minimum=1)
    gen = as_generator(rng)
    law = _calibration_law(key)
    tail = law.tail()
    gumbel = tail.kind == "gumbel"
    if gumbel:
        true_eta, true_end, log_beta_true = 0.0, math.inf, math.log(law.critical_beta(big_n))
    else:
        true_eta, true_end, log_beta_true = 1.0 / tail.gamma, tail.endpoint, math.log(critical_beta(big_n, tail))
    rows = {key_: [] for key_ in ("kind", "cov_g", "cov_e", "cov_b", "eta", "end", "lb", "k")}
    for _ in range(reps):
        scores = law.sample(big_n, gen) if m is None else _top_scores(law, big_n, m, gen)
        est = estimate_tail(scores, n_total=big_n, level=level, rng=gen)
        if est.kind == "atom":  # a false atom: score the fit of the rest if there is one
            est = est.rest if est.rest is not None else est
        rows["kind"].append(est.kind == tail.kind)
        rows["k"].append(est.n_top)
        if est.kind == "atom":
            for key_ in ("cov_g", "cov_e", "cov_b"):
                rows[key_].append(False)
            for key_ in ("eta", "end", "lb"):
                rows[key_].append(math.nan)
            continue
        lo, hi = est.gamma_ci
        rows["cov_g"].append(hi == math.inf if gumbel else lo <= tail.gamma <= hi)
        rows["cov_e"].append(est.endpoint_ci[1] == math.inf if gumbel else est.endpoint_ci[0] <= true_end <= est.endpoint_ci[1])
        b = est.critical_beta(big_n, convention="gumbel" if gumbel else "weibull")
        rows["cov_b"].append(b.ci[0] <= math.exp(log_beta_true) <= b.ci[1])
        rows["eta"].append(0.0 if est.gamma == math.inf else 1.0 / est.gamma)
        rows["end"].append(est.endpoint)
        rows["lb"].append(math.log(b.value))

    def bias_rmse(values, truth):
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0 or not math.isfinite(truth):
            return math.nan, math.nan
        return float(np.mean(v - truth)), float(np.sqrt(np.mean((v - truth) ** 2)))

    bias_eta, rmse_eta = bias_rmse(rows["eta"], true_eta)
    bias_end, rmse_end = bias_rmse(rows["end"], true_end)
    bias_lb, rmse_lb = bias_rmse(rows["lb"], log_beta_true)
    return {
        "case": name,
        "n": big_n,
        "reps": reps,
        "kind": tail.kind,
        "gamma": math.inf if gumbel else tail.gamma,
        "kind_rate": float(np.mean(rows["kind"])),
        "cover_gamma": float(np.mean(rows["cov_g"])),
        "cover_endpoint": float(np.mean(rows["cov_e"])),
        "cover_beta": float(np.mean(rows["cov_b"])),
        "bias_eta": bias_eta,
        "rmse_eta": rmse_eta,
        "bias_endpoint": bias_end,
        "rmse_endpoint": rmse_end,
        "bias_log_beta": bias_lb,
        "rmse_log_beta": rmse_lb,
        "k": float(np.median(rows["k"])),
    }


def calibration_table(cases: Any = None, reps: int = 200, rng: RngLike = 0, level: float = LEVEL) -> list[dict[str, Any]]:
    """:func:`calibration_case` for each case (default: all of ``CALIBRATION_CASES``), one row each.

    Case ``i`` uses the ``i``-th child of ``SeedSequence(rng)`` when ``rng`` is an int.

    Examples
    --------
    >>> [r["case"] for r in calibration_table(["power density d=3, eta=2"], reps=5)]
    ['power density d=3, eta=2']
    """
    names = list(CALIBRATION_CASES) if cases is None else list(cases)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        seeds: list[Any] = np.random.SeedSequence(int(rng)).spawn(len(names))
    else:
        gen = as_generator(rng)
        seeds = [gen] * len(names)
    return [calibration_case(name, reps, seeds[i], level) for i, name in enumerate(names)]
