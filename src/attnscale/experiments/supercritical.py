"""Supercritical regime: the closest key takes everything, but the mean approaches slowly.

For large ``c`` the top weight tends to 1, yet ``1 - E W_1`` decays only like ``1/c``: with
probability of order ``1/c`` the two nearest keys are nearly tied. Theory:
``c (1 - E W_1) -> ln 2 * gamma * Gamma(2 - 1/gamma)``. We draw the critical limit law at growing
``c`` and fit ``c (1 - E W_1) = K + b/c + e/c^2`` (weighted least squares); the claim is that the
intercept ``K`` equals the constant.  The same fit on finite contexts (uniform keys on S^2 and S^4,
``n = 1e9``, drawn by :func:`attnscale.sampler.sample_top`: exact top m keys, Gaussian remainder)
checks the collapse at finite n against ``K / c``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..laws import UniformScoreLaw
from ..limits import CriticalLimit, supercritical_constant
from ..sampler import sample_top
from ..tails import critical_beta
from ._claims import Claim
from ._protocol import Config

if TYPE_CHECKING:
    from matplotlib.figure import Figure


NAME = "supercritical"
TITLE = "Supercritical: c (1 - E W_1) -> ln2 gamma Gamma(2 - 1/gamma)"
SECTION = "3"
#: Statement id (experiments.STATEMENTS) of every claim here.
STATEMENT = "S8"
WHAT_TO_SEE = (
    "c (1 - E W_1) levels off at the dashed constant K instead of falling to 0: the mean approaches 1 only "
    "like K / c; finite contexts (squares, n = 1e9) lie on the limit law's points."
)
#: Context length of the finite-n draws (the top m keys are exact at any n).
N_FINITE = 10**9


def config(quick: bool, seed: int) -> Config:
    """Monte Carlo sizes: the quick run keeps every intercept's 4 SE below ~10% of the constant."""
    return Config(
        {
            "seed": seed,
            "gammas": [1.0, 2.0],
            "cs": [8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            "draws": 100_000 if quick else 1_000_000,
            "chunks": 4 if quick else 16,
            "m": 64,
            "finite_draws": 20_000 if quick else 200_000,
        }
    )


def task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    rng = np.random.default_rng(seed)
    if cfg.get("kind") == "finite":
        law = UniformScoreLaw(int(round(2 * cfg["gamma"] + 1)))
        n = cfg["n"]
        loss = 1.0 - sample_top(law, n, cfg["c"] * critical_beta(n, law.tail()), cfg["draws"], rng).max_weight
    else:
        loss = 1.0 - CriticalLimit(cfg["gamma"], cfg["c"]).draw(cfg["draws"], rng, cfg["m"]).max_weight
    return pa.table(
        {
            "kind": [cfg.get("kind", "limit")],
            "gamma": [cfg["gamma"]],
            "c": [cfg["c"]],
            "draws": [loss.size],
            "sum": [float(loss.sum())],
            "sum_sq": [float((loss**2).sum())],
        }
    )


def tasks(cfg: Config) -> list[dict]:
    """One task per (gamma, c, chunk) of the limit law, one per (gamma, c) at finite n."""
    per = cfg["draws"] // cfg["chunks"]
    tasks = [
        {"gamma": g, "c": c, "draws": per, "m": cfg["m"], "chunk": k}
        for g in cfg["gammas"]
        for c in cfg["cs"]
        for k in range(cfg["chunks"])
    ]
    tasks += [
        {"kind": "finite", "gamma": g, "c": c, "draws": cfg["finite_draws"], "n": N_FINITE}
        for g in cfg["gammas"]
        for c in cfg["cs"]
    ]
    return tasks


def reduce(cfg: Config, tables: Sequence[pa.Table]) -> pa.Table:
    """Chunks pooled into a mean of ``c (1 - W_1)`` and its standard error, per (kind, gamma, c)."""
    raw = pa.concat_tables(tables)
    gam, cs, kinds = raw["gamma"].to_numpy(), raw["c"].to_numpy(), np.asarray(raw["kind"].to_pylist())
    rows = {"kind": [], "gamma": [], "c": [], "scaled_mean": [], "scaled_se": []}
    for kind in ("limit", "finite"):
        for g in cfg["gammas"]:
            for c in cfg["cs"]:
                sel = (gam == g) & (cs == c) & (kinds == kind)
                if not sel.any():
                    continue
                n = raw["draws"].to_numpy()[sel].sum()
                mean = raw["sum"].to_numpy()[sel].sum() / n
                var = raw["sum_sq"].to_numpy()[sel].sum() / n - mean**2
                rows["kind"].append(kind)
                rows["gamma"].append(g)
                rows["c"].append(c)
                rows["scaled_mean"].append(c * mean)
                rows["scaled_se"].append(c * math.sqrt(max(var, 0.0) / (n - 1)))
    return pa.table(rows)


def fit_intercept(c: np.ndarray, y: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """Weighted least squares of ``y = K + b/c + e/c^2``: the intercept ``K`` and its standard error.

    Examples
    --------
    >>> c = np.array([8.0, 16, 32, 64])
    >>> k, _ = fit_intercept(c, 0.7 - 0.8 / c + 0.5 / c**2, np.ones(4) * 1e-3)
    >>> round(k, 10)
    0.7
    """
    X = np.column_stack([np.ones_like(c), 1.0 / c, 1.0 / c**2])
    W = 1.0 / se**2
    cov = np.linalg.inv(X.T @ (X * W[:, None]))
    coef = cov @ (X.T @ (W * y))
    return float(coef[0]), float(math.sqrt(cov[0, 0]))


def figure(table: pa.Table) -> Figure:
    """``c (1 - E W_1)`` against ``c`` with the theoretical constants."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    g_all, c_all = table["gamma"].to_numpy(), table["c"].to_numpy()
    y_all, se_all = table["scaled_mean"].to_numpy(), table["scaled_se"].to_numpy()
    kinds = np.asarray(table["kind"].to_pylist())
    for g, color in zip(np.unique(g_all), ("C0", "C1", "C2")):
        sel = (g_all == g) & (kinds == "limit")
        ax.errorbar(c_all[sel], y_all[sel], yerr=2 * se_all[sel], fmt="o-", color=color, label=f"gamma={g:g}: limit law")
        sel = (g_all == g) & (kinds == "finite")
        ax.errorbar(c_all[sel] * 1.04, y_all[sel], yerr=2 * se_all[sel], fmt="s", mfc="none", color=color,
                    label=f"d={2 * g + 1:g}, n=1e9: sampler")
        ax.axhline(supercritical_constant(g), color=color, ls="--", label=f"ln2 gamma Gamma(2-1/gamma) = {supercritical_constant(g):.4f}")
    ax.set_xscale("log")
    ax.set(xlabel="c = beta / beta*(n)", ylabel="c (1 - E W_1)", title="Supercritical approach of the top weight (bars: 2 SE)")
    ax.legend(fontsize=8)
    return fig


def claims(table: pa.Table) -> list[Claim]:
    """Per gamma: the fitted intercept is within 4 SE of the constant."""
    claims = []
    g_all = table["gamma"].to_numpy()
    kinds = np.asarray(table["kind"].to_pylist())
    for kind in ("limit", "finite"):
        for g in np.unique(g_all):
            sel = (g_all == g) & (kinds == kind)
            if kind == "limit":
                title = f"gamma={g:g}: lim c (1 - E W_1) = ln2 gamma Gamma(2 - 1/gamma) (limit law)"
                note = "intercept of K + b/c + e/c^2 fitted over c = 8..256; interval 4 SE"
            else:
                title = f"d={2 * g + 1:g}, n=1e9: c (1 - E W_1) -> K = ln2 gamma Gamma(2 - 1/gamma), 1 - E W_1 ~ K/c (finite n)"
                note = (
                    "sample_top (exact top m keys, Gaussian remainder) at beta = c beta*(n); intercept of K + b/c + e/c^2 "
                    f"over c = 8..256; interval 4 SE; finite-n bias O(n^-min(1, 1/gamma)) = {N_FINITE ** -min(1.0, 1.0 / g):.0e}"
                )
            if sel.sum() < 4:
                claims.append(Claim.missing(title, supercritical_constant(g), f"{sel.sum()} values of c (the fit needs 4)", SECTION, NAME))
                continue
            k, se = fit_intercept(table["c"].to_numpy()[sel], table["scaled_mean"].to_numpy()[sel], table["scaled_se"].to_numpy()[sel])
            claims.append(Claim.within(title, theory=supercritical_constant(g), measured=k, half_width=4 * se, section=SECTION, experiment=NAME, note=note))
    return claims
