"""The JSON objects of the commands (``attnscale COMMAND --json``), built from the library's results.

One builder per command; each returns a plain dict (numbers, strings, lists, dicts) that
:mod:`attnscale.cli.commands` prints as JSON or as a table.  The library modules compute;
only this module knows the shape of the command line's output.  The library is imported inside
each builder, so that ``attnscale --help`` does not load it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._errors import InputError, InputTypeError

#: beta grids and evaluation points of :func:`heat_payload` (quick, full).
HEAT_BETAS = {True: (100.0, 10_000.0, 5), False: (100.0, 10_000.0, 9)}
HEAT_POINTS = {1: {True: 128, False: 512}, 2: {True: 60, False: 400}}


def summary(x: np.ndarray) -> dict[str, float]:
    """Mean, its standard error and the 5/50/95% quantiles of per-draw values.

    Examples
    --------
    >>> summary(np.array([1.0, 2.0, 3.0]))["mean"]
    2.0
    """
    x = np.asarray(x, dtype=float)
    with np.errstate(invalid="ignore"):  # infinite draws (n_eff of a degenerate limit): inf or nan, shown as null
        se = float(np.std(x, ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
        q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95])
    return {"mean": float(np.mean(x)), "se": se, "q05": float(q05), "q50": float(q50), "q95": float(q95)}


def critical_payload(spec: Any, key_law: Any, q: np.ndarray, n: int, beta: float | None, size: int, seed: int) -> dict[str, Any]:
    """``attnscale critical --json``: the score tail of a key law, beta*(n), and the verdict at ``beta``.

    Examples
    --------
    >>> from attnscale.cli.parsing import law_spec
    >>> spec = law_spec("uniform", 3, 10.0, 2, 1.0, 1.0)
    >>> out = critical_payload(spec, *spec.build(), n=10**6, beta=None, size=2000, seed=0)
    >>> out["kind"], out["gamma"], round(out["beta_star"])
    ('weibull', 1.0, 500000)
    """
    from ..finite import regime
    from ..limit_means import critical_band
    from ..tails import critical_beta

    tail = key_law.score_tail(q)
    band = critical_band(tail.gamma if tail.kind == "weibull" else 1.0, tail.kind)
    payload: dict[str, Any] = {
        "law": spec.name,
        "d": spec.d,
        "n": n,
        "endpoint": tail.endpoint,
        "gamma": tail.gamma,
        "kappa": tail.kappa if tail.kappa_is_finite else None,
        "log_kappa": tail.log_kappa,
        "kind": tail.kind,
        "beta_star": critical_beta(n, tail),
        "critical_band_c": list(band),
    }
    if not tail.kappa_is_finite:
        payload["note"] = f"kappa = exp({tail.log_kappa:.6g}) is beyond the float64 range; see log_kappa"
    if beta is not None:
        payload.update(verdict_payload(regime(n, beta, key_law, q=q, size=size, rng=seed)))
    return payload


def verdict_payload(reg: Any) -> dict[str, Any]:
    """The verdict keys of ``critical --json`` from an :class:`attnscale.finite.Regime`."""
    return {
        "beta": reg.beta,
        "regime": reg.name,
        "c_eff": reg.c_eff,
        "c_eff_interval": [reg.c_eff_low, reg.c_eff_high],
        "c_asymptotic": reg.c_asymptotic,
        "regime_asymptotic": reg.regime_asymptotic,
        "asymptotics_reached": reg.asymptotics_reached,
        "max_weight": {"mean": reg.max_weight, "se": reg.max_weight_se},
        "n_eff": {"mean": reg.n_eff, "se": reg.n_eff_se},
        "entropy": {"mean": reg.entropy, "se": reg.entropy_se},
        "m": reg.m,
        "size": reg.size,
    }


def simulate_payload(result: Any, method: str) -> dict[str, Any]:
    """``attnscale simulate --json`` from the draws of :func:`attnscale.simulate.simulate_stats`."""
    return {
        "method": method,
        "n": result.n,
        "beta": result.beta,
        "c": result.c,
        "reps": result.reps,
        "max_weight": summary(result.max_weight),
        "n_eff": summary(result.n_eff),
        "entropy": summary(result.entropy),
        "output": None
        if result.output is None
        else {
            "radial_mean": float(np.mean(result.radial)),
            "tangential_var": result.tangential_var,
            "scaled_tangential_norm": summary(result.scaled_tangential_norm),
        },
    }


def heat_payload(sphere: int, quick: bool = True) -> dict[str, Any]:
    r"""Fitted error orders of the heat step for the reference density of ``sphere`` (``attnscale heat --json``).

    Errors of :func:`attnscale.heat.heat_step_errors` for :func:`attnscale.heat.reference_density`
    over ``beta`` log-spaced in [1e2, 1e4] (5 values quick, 9 full), sups over equispaced points
    (circle) or a Fibonacci lattice (sphere); the orders are the slopes of
    :func:`attnscale.heat.fit_order` (docs/theory.md section 6).  Expected: -2, -2 and -1.

    Parameters
    ----------
    sphere : {1, 2}
        1: the circle :math:`S^1`; 2: the sphere :math:`S^2`.
    quick : bool
        Fewer betas and points (about a second).

    Returns
    -------
    dict
        ``{"displacement_order", "density_order", "density_order_without_laplacian",
        "table"}``; ``table`` is a list of rows ``{"beta", "displacement_error",
        "density_error", "density_error_without_laplacian"}``.

    Examples
    --------
    >>> s = heat_payload(1)
    >>> round(s["displacement_order"], 1), round(s["density_order"], 1), round(s["density_order_without_laplacian"], 1)
    (-2.0, -2.0, -1.0)
    >>> sorted(s["table"][0])
    ['beta', 'density_error', 'density_error_without_laplacian', 'displacement_error']
    """
    from ..heat import heat_step_errors
    from ..heat_density import _check_sphere, reference_density, sphere_points

    s = _check_sphere(sphere)
    if not isinstance(quick, (bool, np.bool_)):
        raise InputTypeError(f"quick: got {quick!r}; expected True or False")
    lo, hi, count = HEAT_BETAS[bool(quick)]
    errors = heat_step_errors(reference_density(s), np.geomspace(lo, hi, count), sphere_points(s, HEAT_POINTS[s][bool(quick)]))
    return errors.to_dict()


def estimate_payload(
    scores_or_q: Any,
    keys: Any = None,
    ns: Any = None,
    *,
    n_total: Any = None,
    k: Any = None,
    endpoint: Any = None,
    level: float | None = None,
    rng: Any = 0,
) -> dict[str, Any]:
    r"""JSON-able summary of :func:`attnscale.estimate.estimate_tail` (``attnscale estimate --json``).

    One query (or scores): ``{"endpoint", "endpoint_ci", "gamma", "gamma_ci",
    "kappa", "kappa_ci", "log_kappa", "log_kappa_ci", "kind", "n_top", "n_total", "level", "beta_star"}``
    (plus ``"gap"`` for an atom), with ``beta_star = {"<n>": {"value", "ci",
    "convention"}}`` for each ``n`` in ``ns`` (default: the number of keys).
    Several queries: ``{"queries": [one dict per query], "kinds": {kind: count}}``.
    Infinite or undefined values are ``None`` (JSON ``null``).  ``level`` defaults to
    :data:`attnscale.estimate.LEVEL`.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> keys = rng.standard_normal((4000, 3))
    >>> keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    >>> out = estimate_payload([0.0, 0.0, 1.0], keys, ns=[4000, 10**6])
    >>> out["kind"], sorted(out["beta_star"])
    ('weibull', ['1000000', '4000'])
    """
    from ..estimate import LEVEL, estimate_tail, estimate_tails

    options = dict(n_total=n_total, k=k, endpoint=endpoint, level=LEVEL if level is None else level, rng=rng)
    if keys is not None and np.ndim(scores_or_q) == 2:
        ests = estimate_tails(scores_or_q, keys, **options)
        kinds: dict[str, int] = {}
        for e in ests:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        return {"queries": [e.to_dict(ns) for e in ests], "kinds": kinds}
    return estimate_tail(scores_or_q, keys, **options).to_dict(ns)


def schedules_payload(
    train_len: Any,
    n: Any,
    tail: Any = None,
    base_beta: Any = None,
    params: dict[str, dict[str, Any]] | None = None,
    *,
    size: int = 20000,
    rng: Any = 0,
) -> dict[str, Any]:
    r"""Every rule at one context length: its multiplier and the verdict it gives (``attnscale schedules --json``).

    A head with inverse temperature :math:`\beta_0` (``base_beta``) at the training length runs
    at :math:`\beta_0 m(n)` under a rule. With the head's score law the verdict comes from the exact
    law at ``n`` (:func:`attnscale.finite.regime`: ``regime``, ``c_eff``, ``max_weight``, ``n_eff``),
    the asymptotic :math:`c = \beta_0 m(n)/\beta^*(n)` beside it (docs/theory.md section 7);
    with only a tail, only the asymptotic reading is given.

    Parameters
    ----------
    train_len : int
        Training context length :math:`L \ge 3`.
    n : int
        Context length, ``1 <= n <= 1e18``.
    tail : ScoreLaw, ScoreTail or None
        The head's score law (finite-n verdicts and the finite-n ``critical`` rule), or its tail
        (asymptotic readings and ``critical_asymptotic`` only), or None (multipliers only).
    base_beta : float, optional
        :math:`\beta_0 \ge 0` in the units of the scores; default: the head is critical at its
        training length, :math:`\beta_{1/2}(L)` for a law, :math:`\beta^*(L)` for a tail, 1 without.
    params : dict, optional
        Per-rule parameters, e.g. ``{"ssmax": {"s": 0.2}}``.
    size, rng :
        Draws of each finite-n verdict and their randomness.

    Returns
    -------
    dict
        ``{"train_len", "n", "base_beta", "tail", "rules": [{"name", "multiplier", "regime", "c_eff",
        "c_asymptotic", "regime_asymptotic", "asymptotics_reached", "max_weight", "n_eff"}]}``.

    Examples
    --------
    >>> from attnscale.tails import ScoreTail
    >>> out = schedules_payload(512, 512**2, ScoreTail(1.0, 1.0, 1.0), base_beta=512.0)
    >>> [(r["name"], round(r["multiplier"], 3), r["regime_asymptotic"]) for r in out["rules"]][:3]
    [('standard', 1.0, 'subcritical'), ('yarn', 2.637, 'subcritical'), ('logn', 2.0, 'subcritical')]
    >>> out["rules"][-1]["name"], out["rules"][-1]["c_asymptotic"]
    ('critical_asymptotic', 1.0)
    """
    from .._validate import check_n, check_nonnegative
    from ..finite import regime as finite_regime
    from ..finite import regime_name
    from ..laws import ScoreLaw
    from ..limit_means import critical_band
    from ..schedules import RULES, _beta_half_table, _check_train_len, _tail_of
    from ..tails import ScoreTail, critical_beta, regime

    L, n_int = _check_train_len(train_len), check_n(n)
    law = tail if isinstance(tail, ScoreLaw) else None
    if tail is not None and law is None and not isinstance(tail, ScoreTail):
        raise InputTypeError(f"tail: got {type(tail).__name__}; expected a ScoreLaw, a ScoreTail or None")
    head_tail = None if tail is None else _tail_of(tail)
    if base_beta is None:
        if law is not None:
            base_beta = _beta_half_table(law, (L,))[L] if L >= 3 else critical_beta(L, head_tail)
        else:
            base_beta = critical_beta(L, head_tail) if head_tail is not None else 1.0
    beta0 = check_nonnegative(base_beta, "base_beta")
    params = dict(params or {})
    unknown = sorted(set(params) - set(RULES))
    if unknown:
        raise InputError(f"params: got rules {unknown}; expected rule names among {', '.join(RULES)}")
    band = None
    if head_tail is not None and head_tail.kind != "atom":
        band = critical_band(head_tail.gamma if head_tail.kind == "weibull" else 1.0, head_tail.kind)
    rows = []
    for rule in RULES.values():
        if (rule.needs_tail and head_tail is None) or (rule.needs_law and law is None):
            continue
        m = rule.multiplier(n_int, L, tail, **params.get(rule.name, {}))
        beta = beta0 * m
        row: dict[str, Any] = {"name": rule.name, "multiplier": m, "regime": None, "c_eff": None,
                               "c_asymptotic": None, "regime_asymptotic": None, "asymptotics_reached": None,
                               "max_weight": None, "n_eff": None}
        if law is not None:
            reg = finite_regime(n_int, beta, law, size=size, rng=rng)
            row.update({"regime": reg.name, "c_eff": reg.c_eff, "c_asymptotic": reg.c_asymptotic,
                        "regime_asymptotic": reg.regime_asymptotic, "asymptotics_reached": reg.asymptotics_reached,
                        "max_weight": reg.max_weight, "n_eff": reg.n_eff})
        elif head_tail is not None:
            c = beta / critical_beta(n_int, head_tail)
            row["c_asymptotic"] = c
            row["regime_asymptotic"] = regime_name(beta, c, band) if band is not None else regime(n_int, beta, head_tail).name
        rows.append(row)
    tail_row = None
    if head_tail is not None:
        tail_row = {"endpoint": head_tail.endpoint, "gamma": head_tail.gamma,
                    "kappa": head_tail.kappa if head_tail.kappa_is_finite else None,
                    "log_kappa": head_tail.log_kappa, "kind": head_tail.kind,
                    "beta_star": critical_beta(n_int, head_tail), "critical_band_c": None if band is None else list(band),
                    "finite_n": law is not None}
    return {"train_len": L, "n": n_int, "base_beta": beta0, "tail": tail_row, "rules": rows}


def probe_payload(
    quick: bool = False,
    texts: Any = None,
    seed: int = 0,
    path: Any = None,
    device: str = "cpu",
    max_length: int | None = None,
) -> dict[str, Any]:
    """``attnscale probe [--model DIR] [--quick] [--texts DIR] [--device D] [--max-length N] --json`` (:func:`attnscale.probe.probe`)."""
    from .._validate import check_int
    from ..probe import probe

    config = None if max_length is None else {"max_length": check_int(max_length, "max_length", minimum=2)}
    return probe(texts=texts, quick=quick, seed=seed, path=path, device=device, config=config)


def report_payload(summary_: Any) -> dict[str, Any]:
    """``attnscale report --json`` from the :func:`attnscale.report.build_report` summary."""
    n_ok = sum(c.ok for c in summary_.claims)
    return {
        "out": str(summary_.out),
        "index": str(summary_.out / "index.html"),
        "claims_ok": n_ok,
        "claims_total": len(summary_.claims),
        "seconds": round(summary_.seconds, 1),
        "failed": [c.claim for c in summary_.claims if not c.ok],
    }
