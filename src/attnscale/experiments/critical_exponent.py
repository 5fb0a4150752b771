"""Critical exponent: the finite-n critical curve recovers ``beta* ∝ n^(2/(d-1))``.

For uniform keys on S^{d-1}, ``beta_half(n)`` (the beta at which ``E W_1 = 1/2``) is found by
bisection on common random numbers with the exact sampler (theory sections 4 and 5), over a log
grid of n. The fit ``log beta_half = s log n + b + g n^(-1/gamma)`` gives the slope ``s`` with its
standard error; the claim is ``s = 2/(d-1)`` for d = 3, 4, 6.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..exponent import exponent_curve
from ..parallel import run_tasks
from ._claims import Claim

NAME = "critical_exponent"
TITLE = "Critical exponent: slope of log beta_half(n) against 2/(d-1)"
SECTION = "5"
#: Statement id (experiments.STATEMENTS) of every claim here.
STATEMENT = "S2"


def config(quick: bool, seed: int) -> dict:
    """Quick: 7 values of n in 1e2..1e8, 2000 common draws; full: 12 values in 1e2..1e10, 20000."""
    return {
        "seed": seed,
        "ds": [3, 4, 6],
        "n_min": 1e2,
        "n_max": 1e8 if quick else 1e10,
        "points": 7 if quick else 12,
        "size": 2000 if quick else 20_000,
    }


def curve_table(result, d: int) -> pa.Table:
    """One row per n of an :class:`~attnscale.exponent.ExponentResult`, with the fit repeated."""
    rows = result.table
    k = len(rows)
    return pa.table(
        {
            "d": np.full(k, d),
            "n": np.array([r.n for r in rows], dtype=float),
            "beta_half": np.array([r.beta_half for r in rows]),
            "ratio": np.array([r.beta_half_over_beta_star for r in rows]),
            "log_se": np.array([r.log_se for r in rows]),
            "slope": np.full(k, result.slope),
            "slope_se": np.full(k, result.slope_se),
            "target": np.full(k, result.target),
        }
    )


def curve_for(cfg: dict, seed: np.random.SeedSequence) -> tuple[pa.Table, int]:
    """The critical curve of one task config ``{"d", "n_min", "n_max", "points", "size"}``, and its int seed."""
    seed_int = int(seed.generate_state(1)[0])
    result = exponent_curve("uniform", cfg["d"], cfg["n_min"], cfg["n_max"], cfg["points"], cfg["size"], seed_int)
    return curve_table(result, cfg["d"]), seed_int


def curve_tasks(cfg: dict) -> list[dict]:
    """One task config per d (each d's n grid shares common random numbers)."""
    return [{k: cfg[k] for k in ("n_min", "n_max", "points", "size")} | {"d": d} for d in cfg["ds"]]


def _task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    return curve_for(cfg, seed)[0]


def run(cfg: dict, store, executor, progress=None) -> pa.Table:
    """One task per d (its n grid shares common random numbers)."""
    return pa.concat_tables(
        run_tasks(_task, curve_tasks(cfg), store, executor, cfg["seed"], name=NAME, progress=progress, description=NAME)
    )


def figure(table: pa.Table):
    """log beta_half against log n per d, with the fitted and theoretical slopes; ratio to beta*(n)."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    d_all = table["d"].to_numpy()
    for k, d in enumerate(np.unique(d_all)):
        sel = d_all == d
        n, bh = table["n"].to_numpy()[sel], table["beta_half"].to_numpy()[sel]
        s, se, t = (table[c].to_numpy()[sel][0] for c in ("slope", "slope_se", "target"))
        ax1.loglog(n, bh, "o-", color=f"C{k}", label=f"d={d}: slope {s:.4f} ± {se:.4f} (2/(d-1) = {t:.4f})")
        ax2.semilogx(n, table["ratio"].to_numpy()[sel], "o-", color=f"C{k}", label=f"d={d}")
    ax1.set_xlabel("n")
    ax1.set_ylabel("beta_half(n)")
    ax1.set_title("Exact finite-n critical curve")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("n")
    ax2.set_ylabel("beta_half / beta*(n)")
    ax2.set_title("Approach to the asymptotic scale")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def check(table: pa.Table) -> list[Claim]:
    """Per d: the fitted slope equals 2/(d-1) within 4 SE."""
    claims = []
    d_all = table["d"].to_numpy()
    for d in np.unique(d_all):
        sel = d_all == d
        s, se, t = (float(table[c].to_numpy()[sel][0]) for c in ("slope", "slope_se", "target"))
        claims.append(
            Claim.within(
                f"d={d}: slope of log beta_half(n) = 2/(d-1)",
                theory=t,
                measured=s,
                half_width=4 * se,
                section=SECTION,
                experiment=NAME,
                note=f"4 SE of the fit with the n^(-1/gamma) correction; relative error {abs(s / t - 1):.2%}",
            )
        )
    return claims
