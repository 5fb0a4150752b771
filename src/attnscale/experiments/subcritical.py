"""Subcritical regime: a local average around the query, with Gaussian fluctuations.

Brute-force attention over ``n`` real uniform keys on S^{d-1} at ``beta`` far below ``beta*(n)``.
Claims (theory section 3): the mean of the radial part ``<y, q>`` is ``A_d(beta)`` (ratio of Bessel
functions; its ``1 - (d-1)/(2 beta)`` approximation is off by O(beta^-2), visible in the figure),
and ``n`` times the variance of each tangential coordinate equals the exact quadrature value.
The QQ plot compares the standardized tangential output with N(0, 1).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from ..attention import attention_stats
from ..laws import UniformSphere
from ..limits import mean_resultant_length, n_eff_subcritical, subcritical_mean_asymptotic, tangential_variance_exact
from ..parallel import run_tasks
from ._claims import Claim, mean_se

NAME = "subcritical"
TITLE = "Subcritical: mean A_d(beta) and Gaussian tangential fluctuations"
SECTION = "3"


def config(quick: bool, seed: int) -> dict:
    """Quick: 150 draws per (d, beta); full: 2400 (intervals of n Var_tan about +-7%), n = 1e5 both.

    n = 1e5 keeps n_eff >= 375 in every cell (delta-method remainder below 1%); the variance
    claims' width is set by the number of draws, so the full run spends its time on draws."""
    return {
        "seed": seed,
        "ds": [3, 5],
        "betas": [5.0, 10.0, 20.0, 40.0],
        "n": 100_000,
        "reps": 150 if quick else 2400,
        "chunk": 50 if quick else 200,
    }


def _task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    d, n, beta = cfg["d"], cfg["n"], cfg["beta"]
    q = np.zeros(d)
    q[0] = 1.0
    law = UniformSphere(d)
    radial, tan1, tan_sq = (np.empty(cfg["reps"]) for _ in range(3))
    for i, child in enumerate(seed.spawn(cfg["reps"])):
        y = attention_stats(q, law.sample(n, np.random.default_rng(child)), beta).output
        radial[i], tan1[i], tan_sq[i] = y[0], y[1], float(y[1:] @ y[1:])
    size = cfg["reps"]
    return pa.table(
        {
            "d": np.full(size, d),
            "beta": np.full(size, beta),
            "n": np.full(size, n),
            "radial": radial,
            "tan1": tan1,
            "tan_sq": tan_sq,
        }
    )


def run(cfg: dict, store, executor, progress=None) -> pa.Table:
    """Tasks of ``chunk`` draws per (d, beta); one row per draw."""
    tasks = [
        {"d": d, "beta": b, "n": cfg["n"], "reps": cfg["chunk"], "chunk": k}
        for d in cfg["ds"]
        for b in cfg["betas"]
        for k in range(cfg["reps"] // cfg["chunk"])
    ]
    return pa.concat_tables(
        run_tasks(_task, tasks, store, executor, cfg["seed"], name=NAME, progress=progress, description=NAME)
    )


def _cells(table: pa.Table):
    d_all, b_all = table["d"].to_numpy(), table["beta"].to_numpy()
    for d in np.unique(d_all):
        for b in np.unique(b_all[d_all == d]):
            yield int(d), float(b), (d_all == d) & (b_all == b)


def figure(table: pa.Table):
    """Left: radial mean against beta with A_d and its asymptotic; right: QQ plot of the tangential output."""
    import matplotlib.pyplot as plt
    from scipy import stats

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    n = int(table["n"].to_numpy()[0])
    for k, d in enumerate(np.unique(table["d"].to_numpy())):
        color = f"C{k}"
        cells = [(b, sel) for dd, b, sel in _cells(table) if dd == d]
        betas = np.array([b for b, _ in cells])
        stats_ = [mean_se(table["radial"].to_numpy()[sel]) for _, sel in cells]
        grid = np.geomspace(betas.min() / 1.3, betas.max() * 1.3, 100)
        ax1.errorbar(betas, [1 - m for m, _ in stats_], yerr=[2 * s for _, s in stats_], fmt="o", color=color, label=f"d={d}: simulation")
        ax1.plot(grid, 1 - mean_resultant_length(d, grid), color=color, label=f"d={d}: 1 - A_d(beta)")
        ax1.plot(grid, (d - 1) / (2 * grid), color=color, ls=":", label=f"d={d}: (d-1)/(2 beta)")
        b_max, sel = cells[-1]
        z = np.sqrt(n) * table["tan1"].to_numpy()[sel] / math.sqrt(tangential_variance_exact(d, b_max))
        theo = stats.norm.ppf((np.arange(1, z.size + 1) - 0.5) / z.size)
        ax2.plot(theo, np.sort(z), ".", color=color, ms=3, label=f"d={d}, beta={b_max:g}")
    ax2.plot([-3.5, 3.5], [-3.5, 3.5], "k--", lw=1)
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("beta")
    ax1.set_ylabel("1 - E<y, q>")
    ax1.set_title(f"Radial mean, n={n:.0e} (bars: 2 SE)")
    ax1.legend(fontsize=7)
    ax2.set_xlabel("N(0,1) quantile")
    ax2.set_ylabel("sqrt(n) y_tan / sqrt(n Var_tan exact)")
    ax2.set_title("Tangential output: QQ against N(0, 1)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def check(table: pa.Table) -> list[Claim]:
    """Per (d, beta): radial mean = A_d(beta); n Var_tan = quadrature value."""
    claims = []
    n = int(table["n"].to_numpy()[0])
    for d, b, sel in _cells(table):
        n_eff = n_eff_subcritical(n, d, b)
        mean, se = mean_se(table["radial"].to_numpy()[sel])
        claims.append(
            Claim.within(
                f"d={d}, beta={b:g}: E<y,q> = A_d(beta)",
                theory=float(mean_resultant_length(d, b)),
                measured=mean,
                half_width=4 * se + 1.0 / (b * b * n_eff),
                section=SECTION,
                experiment=NAME,
                note=f"4 SE + 1/(beta^2 n_eff) ratio bias; asymptotic 1-(d-1)/(2beta) = {subcritical_mean_asymptotic(d, b):.6f}",
            )
        )
        scaled = n * table["tan_sq"].to_numpy()[sel] / (d - 1)
        var, var_se = mean_se(scaled)
        claims.append(
            Claim.within(
                f"d={d}, beta={b:g}: n Var_tan = exact quadrature",
                theory=float(tangential_variance_exact(d, b)),
                measured=var,
                half_width=4 * var_se + var * 3.0 / n_eff,
                section=SECTION,
                experiment=NAME,
                note="4 SE + 3/n_eff delta-method remainder",
            )
        )
    return claims
