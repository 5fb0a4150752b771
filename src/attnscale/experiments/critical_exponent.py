"""Critical exponent: the finite-n critical curve recovers ``beta* ∝ n^(2/(d-1))``.

For uniform keys on S^{d-1}, ``beta_half(n)`` (the beta at which ``E W_1 = 1/2``) is found by
bisection on common random numbers with the sampler (exact top m keys, Gaussian remainder; theory sections 4 and 5), over a log
grid of n. The fit ``log beta_half = s log n + b + g n^(-1/gamma)`` gives the slope ``s`` with its
standard error; the claim is ``s = 2/(d-1)`` for d = 3, 4, 6.  For non-uniform laws the local
exponent sets the scale (theory section 2): keys uniform on a great subsphere S^2 of R^6 seen from a
query off its span (``gamma = (m-1)/2 = 1``, endpoint 0.6) and keys with density ``|k - q|^2`` on
S^2 (``gamma = (d-1+eta)/2 = 2``): the slope is ``1/gamma`` from those formulas, and at
``beta = beta*(n) = (kappa n)^(1/gamma)``, n = 1e12, ``E W_1`` is the critical limit law's at c = 1
(independent Poisson-process draws).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..exponent import exponent_curve
from ..laws import GreatSubsphere, PowerDensity, UniformScoreLaw
from ..limits import CriticalLimit
from ..sampler import sample_top
from ..tails import critical_beta
from ._claims import Claim, mean_se
from ._protocol import Config, reduce  # reduce: the default, a concatenation

if TYPE_CHECKING:
    from matplotlib.figure import Figure


NAME = "critical_exponent"
TITLE = "Critical exponent: slope of log beta_half(n) against 2/(d-1)"
SECTION = "5"
#: Statement id (experiments.STATEMENTS) of every claim here.
STATEMENT = "S2"
WHAT_TO_SEE = (
    "left: log beta_half(n) is a straight line of slope 2/(d-1) for uniform keys and 1/gamma of the local "
    "exponent for the subsphere and the vanishing density; right: beta_half / beta*(n) settles to a constant."
)
#: Non-uniform laws of the S1 claims: name -> (description, gamma by the formula of theory section 2).
LAWS = {
    "subsphere": ("keys uniform on a great S^2 in R^6, query off its span (r = 0.6)", (3 - 1) / 2.0),
    "vanishing": ("keys with density |k - q|^2 on S^2", (3 - 1 + 2.0) / 2.0),
}
#: Context length of the E W_1 claims of the non-uniform laws.
N_LAW = 10**12


def key_law(name: str):
    """The key law and query of a :data:`LAWS` entry.

    Examples
    --------
    >>> law, q = key_law("vanishing")
    >>> law.score_tail(q).gamma
    2.0
    """
    if name == "subsphere":
        return GreatSubsphere(6, 3), np.array([0.6, 0.0, 0.0, 0.8, 0.0, 0.0])
    if name == "vanishing":
        return PowerDensity(3, 2.0), np.array([1.0, 0.0, 0.0])
    raise ValueError(f"name: got {name!r}; expected one of {', '.join(LAWS)}")


def config(quick: bool, seed: int) -> Config:
    """Quick: 7 values of n in 1e2..1e8, 2000 common draws; full: 12 values in 1e2..1e10, 20000."""
    return Config(
        {
            "seed": seed,
            "ds": [3, 4, 6],
            "n_min": 1e2,
            "n_max": 1e8 if quick else 1e10,
            "points": 7 if quick else 12,
            "size": 2000 if quick else 20_000,
            "laws": list(LAWS),
            "law_draws": 20_000 if quick else 100_000,
            # common draws of the non-uniform curves: 1000 already put 4 SE of their slopes below 0.1%
            "law_size": 1000 if quick else 20_000,
        }
    )


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
    result = exponent_curve(UniformScoreLaw(cfg["d"]), cfg["n_min"], cfg["n_max"], cfg["points"], cfg["size"], seed_int)
    return curve_table(result, cfg["d"]), seed_int


def curve_tasks(cfg: dict) -> list[dict]:
    """One task config per d (each d's n grid shares common random numbers)."""
    return [{k: cfg[k] for k in ("n_min", "n_max", "points", "size")} | {"d": d} for d in cfg["ds"]]


def _law_task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    """The critical curve of a non-uniform law, and E W_1 at beta*(N_LAW) with the limit law's at c = 1."""
    law, q = key_law(cfg["law"])
    seed_int = int(seed.generate_state(1)[0])
    result = exponent_curve(law, cfg["n_min"], cfg["n_max"], cfg["points"], cfg["size"], seed_int, q=q)
    table = curve_table(result, law.d)
    rng = np.random.default_rng(seed_int + 1)
    tail = law.score_tail(q)
    top = sample_top(law, N_LAW, critical_beta(N_LAW, tail), cfg["draws"], rng, q=q)
    limit = CriticalLimit(LAWS[cfg["law"]][1], 1.0).draw(cfg["draws"], rng)
    (w, w_se), (lw, lw_se) = mean_se(top.max_weight), mean_se(limit.max_weight)
    k = table.num_rows
    extra = {"law": [cfg["law"]] * k, "w1": np.full(k, w), "w1_se": np.full(k, w_se), "limit_w1": np.full(k, lw),
             "limit_w1_se": np.full(k, lw_se)}
    for name, col in extra.items():
        table = table.append_column(name, pa.array(col))
    return table


def task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    if "law" in cfg:
        return _law_task(cfg, seed)
    table = curve_for(cfg, seed)[0]
    k, nan = table.num_rows, np.full(table.num_rows, np.nan)
    for name, col in {"law": ["uniform"] * k, "w1": nan, "w1_se": nan, "limit_w1": nan, "limit_w1_se": nan}.items():
        table = table.append_column(name, pa.array(col))
    return table


def tasks(cfg: Config) -> list[dict]:
    """One task per d (its n grid shares common random numbers), one per non-uniform law."""
    return curve_tasks(cfg) + [
        {k: cfg[k] for k in ("n_min", "n_max", "points")} | {"size": cfg["law_size"], "law": name, "draws": cfg["law_draws"]}
        for name in cfg["laws"]
    ]


def figure(table: pa.Table) -> Figure:
    """log beta_half against log n per d, with the fitted and theoretical slopes; ratio to beta*(n)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    ax1, ax2 = fig.subplots(1, 2)
    d_all, laws = table["d"].to_numpy(), np.asarray(table["law"].to_pylist())
    curves = [(f"d={d}", (d_all == d) & (laws == "uniform"), "2/(d-1)") for d in np.unique(d_all[laws == "uniform"])]
    curves += [(name, laws == name, "1/gamma") for name in LAWS if np.any(laws == name)]
    for k, (label, sel, what) in enumerate(curves):
        n, bh = table["n"].to_numpy()[sel], table["beta_half"].to_numpy()[sel]
        s, se, t = (table[c].to_numpy()[sel][0] for c in ("slope", "slope_se", "target"))
        style = "o-" if label.startswith("d=") else "s--"
        ax1.loglog(n, bh, style, color=f"C{k}", label=f"{label}: slope {s:.4f} ± {se:.4f} ({what} = {t:.4f})")
        ax2.semilogx(n, table["ratio"].to_numpy()[sel], style, color=f"C{k}", label=label)
    ax1.set(xlabel="n", ylabel="beta_half(n)", title="Finite-n critical curve (sampler)")
    ax1.legend(fontsize=8)
    ax2.set(xlabel="n", ylabel="beta_half / beta*(n)", title="Approach to the asymptotic scale")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def claims(table: pa.Table) -> list[Claim]:
    """Per d: the fitted slope equals 2/(d-1) within 4 SE; per non-uniform law: slope 1/gamma and E W_1 at beta*(n)."""
    claims = []
    d_all, laws = table["d"].to_numpy(), np.asarray(table["law"].to_pylist())
    for d in np.unique(d_all[laws == "uniform"]):
        sel = (d_all == d) & (laws == "uniform")
        s, se = (float(table[c].to_numpy()[sel][0]) for c in ("slope", "slope_se"))
        t = 2.0 / (d - 1)
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
    for name, (what, gamma) in LAWS.items():
        sel = laws == name
        title = f"{what}: slope of log beta_half(n) = 1/gamma = {1 / gamma:g} (gamma from the local dimension)"
        title_w = f"{what}: E W_1 at beta*(n) = (kappa n)^(1/gamma), n=1e12, equals the critical limit law's at c = 1"
        if not sel.any():
            claims.append(Claim.missing(title, 1.0 / gamma, "law not run", "2, 5", NAME, "S1"))
            claims.append(Claim.missing(title_w, np.nan, "law not run", "2, 3", NAME, "S1"))
            continue
        row = {c: float(table[c].to_numpy()[sel][0]) for c in ("slope", "slope_se", "w1", "w1_se", "limit_w1", "limit_w1_se")}
        claims.append(Claim.within(title, 1.0 / gamma, row["slope"], 4 * row["slope_se"], "2, 5", NAME,
                                   "finite-n curve (sampler) of the law's own quantile; 4 SE of the fit", "S1"))
        bias = 10.0 * float(N_LAW) ** -min(1.0, 1.0 / gamma)
        claims.append(Claim.within(title_w, row["limit_w1"], row["w1"], 4 * math.hypot(row["w1_se"], row["limit_w1_se"]) + bias,
                                   "2, 3", NAME, "sample_top (exact top m, Gaussian remainder) against CriticalLimit(gamma, 1) "
                                   f"draws; 4 SE (both) + 10 n^-min(1, 1/gamma) = {bias:.0e}", "S1"))
    return claims
