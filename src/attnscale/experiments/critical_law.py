"""Critical regime: at ``beta = c beta*(n)`` a random handful of nearest keys keeps the mass.

Brute-force attention over ``n`` real uniform keys on S^2 (d = 3, where convergence is O(1/n)) at
three values of ``c``, against the limit law of the ordered weights
``W_k ∝ exp(-c Gamma_k^(1/gamma))``. Claims: the finite-n means of ``W_1`` and ``n_eff`` equal the
reference values of the limit law (theory section 3, known to about 0.1%), and the finite-n laws
of ``W_1`` and ``n_eff`` are at KS distance zero from the limit law (two-sample test, level 1e-3).
The sampler behind the large-n sections (:func:`attnscale.sampler.sample_top`: exact top m keys,
Gaussian remainder) is checked here against full enumeration (all n keys drawn, d = 3, n = 3000,
c = 0.2) at its default m: the laws of ``W_1`` and ``n_eff`` are at KS distance zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..laws import UniformScoreLaw, UniformSphere
from ..sampler import sample_top
from ..simulate import simulate_stats
from ..tails import critical_beta
from ._claims import Claim, mean_se
from ._protocol import Config
from ._stats import KS_ALPHA, ks_2sample, ks_critical_value
from ._tables import select

if TYPE_CHECKING:
    from matplotlib.figure import Figure


NAME = "critical_law"
TITLE = "Critical law: finite-n top weight and n_eff against the limit law (d = 3)"
SECTION = "3"
#: Statement id (experiments.STATEMENTS) of every claim here.
STATEMENT = "S6"
WHAT_TO_SEE = (
    "the brute-force histograms (bars, n = 1e4) sit on the limit law (black steps) at every c: a random handful "
    "of nearest keys keeps the mass, more of them as c falls."
)
#: The sampler-error cell: sample_top at its default m against full enumeration of all n keys.
SAMPLER_CELL = {"d": 3, "n": 3000, "c": 0.2}

#: Reference values of the limit law for gamma = 1 (theory section 3): c -> (E W_1, E n_eff).
#: E W_1 is the exact integral; E n_eff a Poisson-process Monte Carlo (8.444 +- 0.003, ...).
REFERENCE = {0.25: (0.217825, 8.444), 0.5: (0.373799, 4.559), 2.0: (0.729488, 1.8233)}
#: Absolute uncertainty of the reference values (E W_1: rounding; E n_eff: 1 SE of its Monte Carlo).
REFERENCE_SE = {0.25: (5e-7, 0.003), 0.5: (5e-7, 0.002), 2.0: (5e-7, 0.0005)}


def config(quick: bool, seed: int) -> Config:
    """Brute-force sizes: quick n = 1e4 with 800 draws per c; full n = 1e5 with 4000."""
    return Config(
        {
            "seed": seed,
            "d": 3,
            "n": 10_000 if quick else 100_000,
            "cs": sorted(REFERENCE),
            "reps": 800 if quick else 4000,
            "chunk": 100 if quick else 250,
            "limit_draws": 40_000 if quick else 200_000,
            "sampler_draws": 20_000 if quick else 100_000,
        }
    )


def _enumeration_task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    """W_1 and n_eff of all n keys (d = 3: gaps 1 - <q, K> are exactly 2 U) or of sample_top at its default m."""
    d, n, reps = cfg["d"], cfg["n"], cfg["reps"]
    if d != 3:
        raise ValueError(f"d: got {d}; the enumeration cell uses d = 3 (gaps exactly 2 U)")
    law = UniformScoreLaw(d)
    beta = cfg["c"] * critical_beta(n, law.tail())
    rng = np.random.default_rng(seed)
    if cfg["kind"] == "sampler":
        top = sample_top(law, n, beta, reps, rng)
        w1, n_eff, m = top.max_weight, top.n_eff, top.m
    else:
        w1, n_eff = np.empty(reps), np.empty(reps)
        for start in range(0, reps, 1000):
            g = 2.0 * rng.random((min(1000, reps - start), n))
            x = np.exp(-beta * (g - g.min(axis=1, keepdims=True)))
            total = x.sum(axis=1)
            w1[start : start + x.shape[0]] = 1.0 / total
            n_eff[start : start + x.shape[0]] = total**2 / (x * x).sum(axis=1)
        m = n
    return pa.table({"kind": [cfg["kind"]] * reps, "c": np.full(reps, cfg["c"]), "max_weight": w1, "n_eff": n_eff,
                     "m": np.full(reps, m)})


def task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    if cfg["kind"] in ("sampler", "enumeration"):
        return _enumeration_task(cfg, seed)
    d = cfg["d"]
    q = np.zeros(d)
    q[-1] = 1.0
    if cfg["kind"] == "limit":
        r = simulate_stats(UniformSphere(d), q, n=cfg["n"], c=cfg["c"], reps=cfg["reps"], rng=seed, method="limit")
    else:
        r = simulate_stats(UniformSphere(d), q, n=cfg["n"], c=cfg["c"], reps=cfg["reps"], rng=seed, method="brute")
    size = r.max_weight.size
    return pa.table(
        {
            "kind": [cfg["kind"]] * size,
            "c": np.full(size, cfg["c"]),
            "max_weight": r.max_weight,
            "n_eff": r.n_eff,
            "m": np.full(size, -1),
        }
    )


def tasks(cfg: Config) -> list[dict]:
    """Brute-force chunks and one limit-law task per c, the sampler-error cell; one row per draw."""
    tasks = []
    for c in cfg["cs"]:
        for _ in range(cfg["reps"] // cfg["chunk"]):
            tasks.append({"kind": "brute", "d": cfg["d"], "n": cfg["n"], "c": c, "reps": cfg["chunk"], "chunk": len(tasks)})
        tasks.append({"kind": "limit", "d": cfg["d"], "n": cfg["n"], "c": c, "reps": cfg["limit_draws"]})
    for kind in ("sampler", "enumeration"):
        for k in range(2):
            tasks.append({"kind": kind, **SAMPLER_CELL, "reps": cfg["sampler_draws"] // 2, "chunk": k})
    return tasks


def reduce(cfg: Config, tables: Sequence[pa.Table]) -> pa.Table:
    """The task tables concatenated, with the brute-force ``n`` as a column."""
    table = pa.concat_tables(tables)
    return table.append_column("n", pa.array(np.full(table.num_rows, cfg["n"])))


def _brute_cs(table: pa.Table) -> list[float]:
    kinds = np.asarray(table["kind"].to_pylist())
    return sorted(set(table["c"].to_numpy()[kinds == "brute"].tolist()))


def figure(table: pa.Table) -> Figure:
    """Histograms of W_1 and n_eff: finite n (bars) against the limit law (line), one column per c."""
    from matplotlib.figure import Figure

    cs = _brute_cs(table)
    n = int(table["n"].to_numpy()[0])
    fig = Figure(figsize=(4 * len(cs), 6.5))
    axes = fig.subplots(2, len(cs))
    for j, c in enumerate(cs):
        for i, (col, label) in enumerate((("max_weight", "W_1"), ("n_eff", "n_eff"))):
            ax = axes[i, j]
            brute, limit = select(table, kind="brute", c=c)[col], select(table, kind="limit", c=c)[col]
            hi = np.quantile(limit, 0.99) if col == "n_eff" else 1.0
            bins = np.linspace(limit.min() if col == "max_weight" else 1.0, hi, 40)
            ax.hist(brute, bins=bins, density=True, alpha=0.5, label=f"brute force, n={n:.0e}")
            h, edges = np.histogram(limit, bins=bins, density=True)
            ax.step(edges[:-1], h, where="post", color="k", label="limit law")
            ax.set_title(f"{label}, c={c:g}")
            if i == 0 and j == 0:
                ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def claims(table: pa.Table) -> list[Claim]:
    """Means against the reference values; KS distance against the limit law's own draws."""
    claims = []
    n = int(table["n"].to_numpy()[0])
    for c in _brute_cs(table):
        for j, (col, ref) in enumerate((("max_weight", REFERENCE[c][0]), ("n_eff", REFERENCE[c][1]))):
            mean, se = mean_se(select(table, kind="brute", c=c)[col])
            bias = 4.0 * REFERENCE_SE[c][j] + ref * 10.0 / n  # reference's own 4 SE + O(1/n) finite-n bound
            claims.append(
                Claim.within(
                    f"c={c:g}: E {col} at n={n:.0e} equals the limit law's",
                    theory=ref,
                    measured=mean,
                    half_width=4 * se + bias,
                    section=SECTION,
                    experiment=NAME,
                    note="4 SE + 4 SE of the reference (E n_eff: Poisson-process Monte Carlo) + 10/n",
                )
            )
            brute, limit = select(table, kind="brute", c=c)[col], select(table, kind="limit", c=c)[col]
            dist = ks_2sample(brute, limit)
            claims.append(
                Claim.within(
                    f"c={c:g}: KS distance of the law of {col} to the limit law is 0",
                    theory=0.0,
                    measured=dist,
                    half_width=ks_critical_value(brute.size, limit.size),
                    section=SECTION,
                    experiment=NAME,
                    note=f"two-sample KS, level {KS_ALPHA:g}",
                )
            )
    cell = SAMPLER_CELL
    for col in ("n_eff", "max_weight"):
        title = (f"d={cell['d']}, n={cell['n']}, c={cell['c']:g}: law of {col} from sample_top at its default m "
                 "(exact top m, Gaussian remainder) = full enumeration of all n keys")
        a, b = select(table, kind="sampler", c=cell["c"])[col], select(table, kind="enumeration", c=cell["c"])[col]
        if a.size == 0 or b.size == 0:
            claims.append(Claim.missing(title, 0.0, "no sampler or enumeration draws", SECTION, NAME))
            continue
        m = int(select(table, kind="sampler", c=cell["c"])["m"][0])
        claims.append(Claim.within(title, 0.0, ks_2sample(a, b), ks_critical_value(a.size, b.size),
                                   SECTION, NAME, f"two-sample KS distance, level {KS_ALPHA:g}; m = {m}, {a.size} draws each"))
    return claims
