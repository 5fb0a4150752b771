"""Large head dimensions: where the asymptotic critical law is out of reach.

For d = 33, 64, 129 (head dimensions of practice) the sampler (exact top m keys, Gaussian remainder) gives ``beta_half(n)`` and the
weights at ``beta = beta*(n)`` for n = 1e6 .. 1e15 (theory sections 3 and 4). Claims: the ratio
``beta_half / beta*(n)``, constant once the asymptotic law holds, still drifts by more than 10%
across that range; and at d = 129 the weights at ``beta*(n)`` are still nearly uniform
(``E n_eff / n >= 0.9``) for every n up to 1e15. Practical answers at these d must therefore come
from the finite-n computation, not from ``beta*(n)``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from typing import TYPE_CHECKING

from ..laws import UniformScoreLaw
from ..sampler import sample_top
from ..tails import critical_beta
from ._claims import Claim, mean_se
from ._protocol import Config, reduce  # reduce: the default, a concatenation
from .critical_exponent import curve_for, curve_tasks

if TYPE_CHECKING:
    from matplotlib.figure import Figure


NAME = "large_d"
TITLE = "Large d: beta_half / beta*(n) and the weights at beta*(n) for d = 33, 64, 129"
SECTION = "3"
#: Statement id (experiments.STATEMENTS) of every claim here.
STATEMENT = "X1"
WHAT_TO_SEE = (
    "left: beta_half / beta*(n) still drifts at n = 1e15 for d = 33, 64, 129; right: at beta*(n) the weights of "
    "d = 129 stay nearly uniform (E n_eff / n near 1): the asymptotic scale says little at these d."
)

#: Drift of beta_half / beta*(n) over n = 1e6..1e15 above which the asymptotic scale is "not reached".
DRIFT_BOUND = 0.10
#: E n_eff / n above which the weights count as nearly uniform.
UNIFORM_BOUND = 0.9


def config(quick: bool, seed: int) -> Config:
    """Quick: 5 values of n, 1000 common draws; full: 10 values, 10000 draws."""
    return Config(
        {
            "seed": seed,
            "ds": [33, 64, 129],
            "n_min": 1e6,
            "n_max": 1e15,
            "points": 5 if quick else 10,
            "size": 1000 if quick else 10_000,
        }
    )


def task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    d = cfg["d"]
    table, seed_int = curve_for(cfg, seed)
    law = UniformScoreLaw(d)
    rng = np.random.default_rng(seed_int)
    stats = []
    for n in table["n"].to_numpy():
        n = int(n)
        top = sample_top(law, n, critical_beta(n, law.tail()), cfg["size"], rng)
        stats.append(mean_se(top.n_eff / n))
    ratio, ratio_se = zip(*stats)
    return table.append_column("neff_ratio_at_beta_star", pa.array(ratio)).append_column(
        "neff_ratio_se", pa.array(ratio_se)
    )


def tasks(cfg: Config) -> list[dict]:
    """One task per d."""
    return curve_tasks(cfg)


def figure(table: pa.Table) -> Figure:
    """beta_half / beta*(n) and E n_eff / n at beta*(n) against n, one curve per d."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    ax1, ax2 = fig.subplots(1, 2)
    d_all = table["d"].to_numpy()
    for k, d in enumerate(np.unique(d_all)):
        sel = d_all == d
        n = table["n"].to_numpy()[sel]
        ax1.semilogx(n, table["ratio"].to_numpy()[sel], "o-", color=f"C{k}", label=f"d={d}")
        ax2.semilogx(n, table["neff_ratio_at_beta_star"].to_numpy()[sel], "o-", color=f"C{k}", label=f"d={d}")
    ax1.set(xlabel="n", ylabel="beta_half / beta*(n)", title="Still drifting: the asymptotic scale is not reached")
    ax1.legend()
    ax2.axhline(UNIFORM_BOUND, color="grey", ls=":")
    ax2.set_xlabel("n")
    ax2.set_ylabel("E n_eff / n at beta = beta*(n)")
    ax2.set_ylim(0, 1.02)
    ax2.set_title("Weights at beta*(n)")
    ax2.legend()
    fig.tight_layout()
    return fig


def claims(table: pa.Table) -> list[Claim]:
    """Drift of beta_half / beta*(n) > 10% per d; E n_eff / n >= 0.9 at beta*(n) for d = 129."""
    claims = []
    d_all = table["d"].to_numpy()
    for d in np.unique(d_all):
        sel = d_all == d
        ratio, log_se = table["ratio"].to_numpy()[sel], table["log_se"].to_numpy()[sel]
        drift = ratio[-1] / ratio[0] - 1.0
        se = (1.0 + drift) * float(np.hypot(log_se[0], log_se[-1]))
        claims.append(
            Claim.at_least(
                f"d={d}: beta_half/beta*(n) drifts by more than {DRIFT_BOUND:.0%} over n = 1e6..1e15",
                bound=DRIFT_BOUND,
                measured=drift,
                half_width=4 * se,
                section=SECTION,
                experiment=NAME,
                note="asymptotic law out of reach at practical n; 4 SE",
            )
        )
    sel = d_all == 129
    if not np.any(sel):
        title = f"d=129: at beta*(n) the weights stay nearly uniform (E n_eff/n >= {UNIFORM_BOUND}) for n <= 1e15"
        claims.append(Claim.missing(title, UNIFORM_BOUND, "d = 129 not run", SECTION, NAME))
    else:
        ratios, ses = table["neff_ratio_at_beta_star"].to_numpy()[sel], table["neff_ratio_se"].to_numpy()[sel]
        i = int(np.argmin(ratios))
        claims.append(
            Claim.at_least(
                f"d=129: at beta*(n) the weights stay nearly uniform (E n_eff/n >= {UNIFORM_BOUND}) for n <= 1e15",
                bound=UNIFORM_BOUND,
                measured=float(ratios[i]),
                half_width=4 * float(ses[i]),
                section=SECTION,
                experiment=NAME,
                note=f"smallest over the n grid (at n={table['n'].to_numpy()[sel][i]:.0e}); 4 SE",
            )
        )
    return claims
