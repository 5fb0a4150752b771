"""Phase diagram: the top weight and the effective number of keys over (n, beta).

For uniform keys on S^2 and S^4 the sampler (exact top m keys, Gaussian remainder; theory section 4) gives ``E W_1`` and
``E n_eff / n`` on a grid of context lengths and inverse temperatures. The critical line
``beta*(n) = (kappa n)^(1/gamma)`` separates averaging (``W_1 -> 0``) from selection
(``W_1 -> 1``). Claims: on the critical line ``E W_1`` equals the critical limit law's value
(theory section 3), and deep in the subcritical corner ``n_eff / n`` equals its exact large-n
value (d = 3: ``tanh(beta) / beta``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..laws import UniformScoreLaw
from ..limits import CriticalLimit
from ..sampler import sample_top
from ..tails import critical_beta
from ._claims import Claim, mean_se
from ._protocol import Config, reduce  # reduce: the default, a concatenation

if TYPE_CHECKING:
    from matplotlib.figure import Figure


NAME = "phase_diagram"
TITLE = "Phase diagram: E W_1 and n_eff/n over (n, beta), with the critical line"
SECTION = "2, 3, 4"
#: Claims name their own statement ids (experiments.STATEMENTS).
STATEMENT = ""
WHAT_TO_SEE = (
    "E W_1 turns from 0 to 1 and n_eff / n from 1 to 0 across the white dashed line beta*(n) = (kappa n)^(1/gamma), "
    "whose slope is 2/(d-1) in these log-log coordinates."
)


def config(quick: bool, seed: int) -> Config:
    """Grid sizes: quick 7 n x 2 per decade of beta, 200 draws a cell; full 13 n x 3 per decade, 2000.

    The critical-line cells get 20 times more draws: they carry the claims."""
    return Config(
        {
            "seed": seed,
            "ds": [3, 5],
            "log10_n": list(np.arange(2.0, 8.01, 1.0 if quick else 0.5)),
            "betas_per_decade": 2 if quick else 3,
            "draws": 200 if quick else 2000,
            "critical_draws": 4000 if quick else 40_000,
            "limit_draws": 20_000 if quick else 200_000,
        }
    )


def _beta_grid(d: int, cfg: dict) -> np.ndarray:
    tail = UniformScoreLaw(d).tail()
    hi = critical_beta(int(10 ** max(cfg["log10_n"])), tail) * 100.0
    decades = math.log10(hi)
    return np.logspace(0.0, decades, int(round(decades * cfg["betas_per_decade"])) + 1)


def task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    d, rng = cfg["d"], np.random.default_rng(seed)
    law = UniformScoreLaw(d)
    tail = law.tail()
    if cfg["kind"] == "limit":
        w1 = CriticalLimit(tail.gamma, 1.0).draw(cfg["draws"], rng).max_weight
        mean, se = mean_se(w1)
        return pa.table({"d": [d], "n": [0.0], "beta": [0.0], "c": [1.0], "w1": [mean], "w1_se": [se], "neff_ratio": [math.nan], "neff_ratio_se": [math.nan], "kind": ["limit"]})
    n = int(round(10 ** cfg["log10_n"]))
    bstar = critical_beta(n, tail)
    betas = list(cfg["betas"]) + [bstar]
    rows: dict[str, list] = {k: [] for k in ("d", "n", "beta", "c", "w1", "w1_se", "neff_ratio", "neff_ratio_se", "kind")}
    for i, beta in enumerate(betas):
        on_line = i == len(betas) - 1
        top = sample_top(law, n, beta, cfg["critical_draws"] if on_line else cfg["draws"], rng)
        w, w_se = mean_se(top.max_weight)
        r, r_se = mean_se(top.n_eff / n)
        for key, val in zip(rows, (d, float(n), beta, beta / bstar, w, w_se, r, r_se, "critical" if on_line else "grid")):
            rows[key].append(val)
    return pa.table(rows)


def tasks(cfg: Config) -> list[dict]:
    """One task per (d, n) over the whole beta grid, plus one limit-law task per d."""
    tasks = []
    for d in cfg["ds"]:
        betas = _beta_grid(d, cfg).tolist()
        tasks += [{"kind": "grid", "d": d, "log10_n": float(x), "betas": betas, "draws": cfg["draws"], "critical_draws": cfg["critical_draws"]} for x in cfg["log10_n"]]
        tasks.append({"kind": "limit", "d": d, "draws": cfg["limit_draws"]})
    return tasks


def _kind(table: pa.Table) -> np.ndarray:
    return np.asarray(table["kind"].to_pylist())


def figure(table: pa.Table) -> Figure:
    """Heat maps of E W_1 and n_eff/n over (log10 n, log10 beta) with the critical line, per d."""
    from matplotlib.figure import Figure

    kind = _kind(table)
    ds = sorted(set(table["d"].to_numpy()[kind == "grid"].tolist()))
    fig = Figure(figsize=(11, 4 * len(ds)))
    axes = fig.subplots(len(ds), 2, squeeze=False)
    for i, d in enumerate(ds):
        sel = (kind == "grid") & (table["d"].to_numpy() == d)
        x = np.log10(table["n"].to_numpy()[sel])
        y = np.log10(table["beta"].to_numpy()[sel])
        tail = UniformScoreLaw(d).tail()
        ns = np.unique(x)
        line = [math.log10(critical_beta(int(round(10**v)), tail)) for v in ns]
        for j, (col, label, cmap) in enumerate((("w1", "E W_1", "viridis"), ("neff_ratio", "log10 E n_eff / n", "magma"))):
            ax = axes[i, j]
            z = table[col].to_numpy()[sel]
            if col == "neff_ratio":
                z = np.log10(np.maximum(z, 1e-300))
                levels = np.linspace(min(z.min(), -1.0), 0.0, 21)
            else:
                z, levels = np.clip(z, 0.0, 1.0 - 1e-9), np.linspace(0.0, 1.0, 21)
            sc = ax.tricontourf(x, y, z, levels=levels, cmap=cmap)
            fig.colorbar(sc, ax=ax, label=label)
            ax.plot(ns, line, "w--", lw=2, label="beta*(n)")
            ax.set(xlabel="log10 n", ylabel="log10 beta", title=f"d={d}: {label}")
            ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def claims(table: pa.Table) -> list[Claim]:
    """E W_1 on the critical line at the largest n vs the limit law; n_eff/n vs tanh(beta)/beta (d = 3)."""
    claims = []
    kind, d_all, n_all = _kind(table), table["d"].to_numpy(), table["n"].to_numpy()
    for d in sorted(set(d_all[kind == "critical"].tolist())):
        crit = np.flatnonzero((kind == "critical") & (d_all == d))
        i = crit[np.argmax(n_all[crit])]
        j = np.flatnonzero((kind == "limit") & (d_all == d))[0]
        n, gamma = n_all[i], UniformScoreLaw(d).tail().gamma
        se = math.hypot(table["w1_se"][i].as_py(), table["w1_se"][j].as_py())
        bias = 10.0 * n ** (-min(1.0, 1.0 / gamma))
        claims.append(
            Claim.within(
                f"d={d}: E W_1 at beta = beta*(n), n={n:.0e}, equals the critical limit law's",
                theory=table["w1"][j].as_py(),
                measured=table["w1"][i].as_py(),
                half_width=4 * se + bias,
                section="3",
                experiment=NAME,
                note="limit value from CriticalLimit draws; 4 SE (both) + 10 n^-min(1,1/gamma)",
                statement="S6",
            )
        )
    sel = np.flatnonzero((kind == "grid") & (d_all == 3))
    if not sel.size:
        claims.append(Claim.missing("d=3: E n_eff / n = tanh(beta)/beta", math.nan, "no d = 3 grid", "3", NAME, "S3"))
    else:
        n_max = n_all[sel].max()
        beta = table["beta"].to_numpy()
        cand = sel[(n_all[sel] == n_max) & (beta[sel] >= 5.0) & (beta[sel] / critical_beta(int(n_max), UniformScoreLaw(3).tail()) < 1e-4)]
        i = cand[np.argmin(np.abs(np.log(beta[cand] / 10.0)))]
        b = beta[i]
        ratio, ratio_se = table["neff_ratio"][i].as_py(), table["neff_ratio_se"][i].as_py()
        theory = math.tanh(b) / b
        n_eff = n_max * theory
        claims.append(
            Claim.within(
                f"d=3, n={n_max:.0e}, beta={b:.3g}: E n_eff / n = tanh(beta)/beta",
                theory=theory,
                measured=ratio,
                half_width=4 * ratio_se + theory * 10.0 / n_eff,
                section="3",
                experiment=NAME,
                note="exact large-n value (E e^{beta t})^2 / E e^{2 beta t}; 4 SE + 10/n_eff",
                statement="S3",
            )
        )
    return claims
