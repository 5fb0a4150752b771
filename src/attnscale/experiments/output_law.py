"""The law of the attention output in every regime, for any value matrix (theory section 3).

Brute-force attention over real uniform keys on the sphere against the output theory of
:mod:`attnscale.output` and the critical limit law (:meth:`attnscale.limits.CriticalLimit.draw_output`):

- **subcritical**: the joint Gaussian law of ``y`` (d = 3, 5): the radial variance (second order
  next to the tangential one), the ratio bias of the radial mean and the tangential variance, each
  against its quadrature value; with a rectangular value matrix ``V`` (4 x 3), attention over the
  values ``V K_i`` of fresh keys has mean ``V mu`` and covariance ``V Sigma V^T`` (trace);
- **critical** (d = 3, three c): the scaled tangential output ``T = (kappa n)^(1/2) P_tan y`` has the
  limit law (norm by KS and by ``E|T|^2`` against its exact quadrature; direction uniform on the
  circle), and the radial deficit ``(kappa n)(1 - <y, q>)`` too (second order); at d = 5,
  ``T = (kappa n)^(1/4) P_tan y`` has the limit law too (KS); for d = 3 and 5 the sampler (exact
  top m keys, Gaussian remainder: :func:`attnscale.sampler.sample_top` with ``output=True``) has
  the law of brute force at the same n;
- **supercritical** (d = 3, c = 20, 50): the scaled distance of ``y`` to the closest key has the
  limit law; at c = 200 the limit law's mean distance and far probability match the near-tie
  asymptotics;
- **crossover**: the law of ``|T|`` for c from 1e-2 to 1e2 and d = 3, 5, 9 (limit law), with
  ``E|T|^2`` against its exact quadrature (which tends to both ends), joining the Gaussian end
  (chi law, checked by KS at c = 1e-2) and the nearest-key end ``sqrt(2) Gamma_1^(1/(2 gamma))``
  (shown; it is approached only like ``gamma Gamma(2 - 1/gamma) / c``, the density of near-ties,
  so at d = 9 a tenth of the draws are still split between two keys at c = 100).

Brute force computes every beta (or c) of a dimension over the same key draws, from one read of
each (:func:`attnscale.attention.attention_stats_many`): the draws of one cell are independent,
cells of the same d share them, and no claim combines cells.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..attention import attention_stats, attention_stats_many
from ..laws import UniformSphere, tangent_basis
from ..limits import CriticalLimit
from ..output import (
    critical_radial_mean,
    critical_tangential_second_moment,
    gaussian_end_cdf,
    log_tangential_scale,
    subcritical_output_law,
    supercritical_distance_constant,
    supercritical_far_probability,
)
from ..sampler import sample_top
from ..tails import critical_beta
from ._claims import Claim, mean_se
from ._protocol import Config, reduce  # reduce: the default, a concatenation
from ._stats import KS_ALPHA, ks_1sample, ks_2sample, ks_critical_value
from ._tables import columns, select

if TYPE_CHECKING:
    from matplotlib.figure import Figure


NAME = "output_law"
TITLE = "Output law: Gaussian, critical and nearest-key regimes of y, any value matrix"
SECTION = "3"
#: Claims name their own statement ids (experiments.STATEMENTS).
STATEMENT = ""
WHAT_TO_SEE = (
    "top left: brute-force variances on the diagonal (quadrature); top right: brute-force cdfs of |T| on the "
    "limit law's; bottom: the distance to the closest key follows the near-tie asymptotic, and |T| moves from "
    "the Gaussian end (dashed) to the nearest key (dotted) as c grows."
)
#: Rectangular value matrix of the S11 claims (fixed, seeded).
VALUE_MATRIX = np.random.default_rng(7).standard_normal((4, 3))

#: Columns matched within a relative 1e-12 by select (c is computed, not typed in).
_CLOSE = ("c",)
#: Scaled distances rho of the supercritical probabilities.
RHOS = (0.1, 0.5)
#: Columns of every row (NaN where a kind of task has no value).
COLUMNS = ("radial", "tan_sq", "x0", "x1", "x2", "tn", "angle", "rscaled", "dist", "bias_bound")


def config(quick: bool, seed: int) -> Config:
    """Quick: n = 1e4 brute force, small Monte Carlo; full: n = 1e5 (critical, supercritical) and more draws."""
    return Config(
        {
            "seed": seed,
            "sub_ds": [3, 5],
            "sub_betas": [10.0, 40.0],
            "sub_n": 10_000 if quick else 100_000,
            "sub_reps": 400 if quick else 1600,
            "crit_n": 10_000 if quick else 100_000,
            "crit_ds": [3, 5],
            "crit_cs": [0.25, 0.5, 2.0],
            "fast_draws": 20_000 if quick else 100_000,
            "crit_reps": 600 if quick else 3000,
            "super_cs": [20.0, 50.0],
            "super_reps": 600 if quick else 2000,
            "chunk": 100 if quick else 250,
            "limit_draws": 40_000 if quick else 200_000,
            "asym_c": 200.0,
            "asym_draws": 400_000 if quick else 1_000_000,
            "cross_ds": [3, 5, 9],
            "cross_cs": [float(x) for x in np.round(10.0 ** np.arange(-2.0, 2.01, 0.5), 6)],
            "cross_draws": 2000 if quick else 8000,
            "cross_m": 256,
            "value_beta": 10.0,
            "value_n": 10_000 if quick else 100_000,
            "value_reps": 400 if quick else 1600,
        }
    )


def _table(kind: str, d: int, c: float, beta: float, n: int, **cols: np.ndarray) -> pa.Table:
    size = len(next(iter(cols.values())))
    data = {"kind": [kind] * size, "d": np.full(size, d), "c": np.full(size, c), "beta": np.full(size, beta), "n": np.full(size, n)}
    for name in COLUMNS:
        data[name] = np.asarray(cols[name], dtype=float) if name in cols else np.full(size, np.nan)
    return pa.table(data)


def _axis_query(d: int) -> np.ndarray:
    q = np.zeros(d)
    q[-1] = 1.0
    return q


def _sub_task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    """Subcritical brute force: ``reps`` fresh key sets, every beta from one read of each (``attention_stats_many``)."""
    d, n, reps = cfg["d"], cfg["n"], cfg["reps"]
    betas = np.asarray(cfg["betas"], dtype=float)
    q, law = _axis_query(d), UniformSphere(d)
    queries = np.tile(q, (betas.size, 1))
    x = np.empty((betas.size, reps, d))
    for i, s in enumerate(seed.spawn(reps)):
        x[:, i] = attention_stats_many(queries, law.sample(n, np.random.default_rng(s)), betas).output
    return pa.concat_tables([_sub_table(d, n, beta, x[j]) for j, beta in enumerate(betas)])


def _sub_table(d: int, n: int, beta: float, x: np.ndarray) -> pa.Table:
    q = _axis_query(d)
    radial = x @ q
    tan_sq = np.sum(x * x, axis=1) - radial**2
    pad = np.full((x.shape[0], 3), np.nan)
    pad[:, : min(d, 3)] = x[:, :3]
    return _table("sub", d, beta / _beta_star(d, n), beta, n, radial=radial, tan_sq=tan_sq, x0=pad[:, 0], x1=pad[:, 1], x2=pad[:, 2])


def _beta_star(d: int, n: int) -> float:
    tail = UniformSphere(d).score_tail(_axis_query(d))
    return critical_beta(n, tail)


def _brute_task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    """Critical or supercritical brute force: scaled tangential output, radial deficit, distance to K_(1).

    ``reps`` fresh key sets; every ``c`` of ``cfg["cs"]`` from one read of each (``attention_stats_many``).
    """
    d, n, reps = cfg["d"], cfg["n"], cfg["reps"]
    cs = np.asarray(cfg["cs"], dtype=float)
    q, law = _axis_query(d), UniformSphere(d)
    betas = cs * _beta_star(d, n)
    scale = math.exp(-log_tangential_scale(n, law.score_tail(q)))
    queries = np.tile(q, (cs.size, 1))
    x, nearest = np.empty((cs.size, reps, d)), np.empty((reps, d))
    for i, s in enumerate(seed.spawn(reps)):
        keys = law.sample(n, np.random.default_rng(s))
        x[:, i] = attention_stats_many(queries, keys, betas).output
        nearest[i] = keys[int(np.argmax(keys @ q))]
    tables = []
    for c, beta, xc in zip(cs, betas, x):
        t = (xc @ tangent_basis(q)) * scale
        angle = np.arctan2(t[:, 1], t[:, 0]) if d == 3 else np.full(reps, np.nan)
        tables.append(_table(cfg["kind"], d, float(c), float(beta), n, tn=np.linalg.norm(t, axis=1), angle=angle,
                             rscaled=(1.0 - xc @ q) * scale**2, dist=np.linalg.norm(xc - nearest, axis=1) * scale))
    return pa.concat_tables(tables)


def _limit_task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    d, c = cfg["d"], cfg["c"]
    gamma = (d - 1) / 2.0
    out = CriticalLimit(gamma, c).draw_output(cfg["reps"], np.random.default_rng(seed), cfg.get("m"), dim=d - 1)
    t = out.tangential
    bound = 3.0 * out.draws.remainder * out.draws.weights[:, -1]
    return _table(
        cfg["kind"], d, c, np.nan, 0,
        tn=out.tangential_norm,
        angle=np.arctan2(t[:, 1], t[:, 0]) if d == 3 else np.full(t.shape[0], np.nan),
        rscaled=out.radial,
        dist=out.nearest_distance,
        bias_bound=bound,
    )  # fmt: skip


def _fast_task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    """The sampler's output (exact top m keys, Gaussian remainder) at n (attnscale.sampler.sample_top with output=True)."""
    d, n, c = cfg["d"], cfg["n"], cfg["c"]
    q, law = _axis_query(d), UniformSphere(d)
    log_s = log_tangential_scale(n, law.score_tail(q))
    beta = c * _beta_star(d, n)
    top = sample_top(law, n, beta, cfg["reps"], np.random.default_rng(seed), q=q, output=True)
    t = top.tangential * math.exp(-log_s)
    return _table(
        "fast", d, c, beta, n,
        tn=np.linalg.norm(t, axis=1),
        angle=np.arctan2(t[:, 1], t[:, 0]) if d == 3 else np.full(t.shape[0], np.nan),
        rscaled=top.radial_deficit * math.exp(-2.0 * log_s),
    )  # fmt: skip


def _value_task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    """Attention with the value matrix V (VALUE_MATRIX, 4 x 3: values V K_i) over fresh uniform keys on S^2."""
    n, beta, reps = cfg["n"], cfg["beta"], cfg["reps"]
    q, law = _axis_query(3), UniformSphere(3)
    v = np.asarray(cfg["values"])
    ys = np.array([attention_stats(q, k, beta, values=v).output for k in (law.sample(n, np.random.default_rng(s)) for s in seed.spawn(reps))])
    return _table("value", 3, beta / _beta_star(3, n), beta, n, x0=ys[:, 0], x1=ys[:, 1], x2=ys[:, 2], tn=ys[:, 3])


def task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    kind = cfg["kind"]
    if kind == "value":
        return _value_task(cfg, seed)
    if kind == "sub":
        return _sub_task(cfg, seed)
    if kind == "fast":
        return _fast_task(cfg, seed)
    if kind in ("crit", "super"):
        return _brute_task(cfg, seed)
    return _limit_task(cfg, seed)


def tasks(cfg: Config) -> list[dict]:
    """Brute-force chunks (subcritical, critical, supercritical: every beta or c of a d per chunk) and limit-law draws; one row per draw and cell."""
    tasks: list[dict] = []
    chunk = cfg["chunk"]
    for d in cfg["sub_ds"]:  # every beta over the same keys (one read each)
        for k in range(cfg["sub_reps"] // chunk):
            tasks.append({"kind": "sub", "d": d, "betas": cfg["sub_betas"], "n": cfg["sub_n"], "reps": chunk, "chunk": k})
    for d in cfg["crit_ds"]:
        for k in range(cfg["crit_reps"] // chunk):  # every c over the same keys
            tasks.append({"kind": "crit", "d": d, "cs": cfg["crit_cs"], "n": cfg["crit_n"], "reps": chunk, "chunk": k})
        for c in cfg["crit_cs"]:
            tasks.append({"kind": "fast", "d": d, "c": c, "n": cfg["crit_n"], "reps": cfg["fast_draws"]})
            # d = 5: the KS claim's width is set by the brute-force draws; a quarter of the d = 3 limit
            # draws widens its critical distance by under 2% (sqrt(1/600 + 1/10000) vs sqrt(1/600 + 1/40000))
            reps = cfg["limit_draws"] if d == 3 else cfg["limit_draws"] // 4
            tasks.append({"kind": "limit", "d": d, "c": c, "reps": reps, "m": None})
    for k in range(cfg["super_reps"] // chunk):
        tasks.append({"kind": "super", "d": 3, "cs": cfg["super_cs"], "n": cfg["crit_n"], "reps": chunk, "chunk": k})
    for c in cfg["super_cs"]:
        tasks.append({"kind": "limit", "d": 3, "c": c, "reps": cfg["limit_draws"], "m": None})
    for k in range(cfg["value_reps"] // chunk):
        tasks.append({"kind": "value", "n": cfg["value_n"], "beta": cfg["value_beta"], "reps": chunk, "chunk": k,
                      "values": VALUE_MATRIX.tolist()})
    tasks.append({"kind": "asym", "d": 3, "c": cfg["asym_c"], "reps": cfg["asym_draws"], "m": 16})
    tasks.append({"kind": "asym", "d": 5, "c": cfg["asym_c"], "reps": cfg["asym_draws"], "m": 16})
    for d in cfg["cross_ds"]:
        for c in cfg["cross_cs"]:
            tasks.append({"kind": "cross", "d": d, "c": c, "reps": cfg["cross_draws"], "m": cfg["cross_m"]})
    return tasks


# ---------------------------------------------------------------------------
# Selection helpers
# ---------------------------------------------------------------------------


def _values(table: pa.Table, kind: str, column: str, d: int | None = None) -> list:
    cols = columns(table)
    sel = cols["kind"] == kind
    if d is not None:
        sel &= cols["d"] == d
    return sorted(set(cols[column][sel].tolist()))


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def _claim(claim: str, theory: float, measured: float, half_width: float, note: str, statement: str = "") -> Claim:
    return Claim.within(claim, theory, measured, half_width, section=SECTION, experiment=NAME, note=note, statement=statement)


def _ks_claim(claim: str, dist: float, crit: float, note: str, statement: str = "") -> Claim:
    return _claim(claim, 0.0, dist, crit, f"KS distance, level {KS_ALPHA:g}; {note}", statement)


def _check_value(table: pa.Table) -> list[Claim]:
    """S11: attention over values V K_i (fresh keys) has mean V mu and covariance V Sigma V^T."""
    rows = select(table, kind="value", isclose=_CLOSE)
    title = "d=3, V 4x3: n tr Cov(sum_i w_i V K_i) = n tr(V Sigma V^T) (quadrature)"
    if rows["x0"].size == 0:
        return [Claim.missing(title, math.nan, "no value-matrix draws", SECTION, NAME, "S11")]
    y = np.column_stack([rows["x0"], rows["x1"], rows["x2"], rows["tn"]])
    n, beta = int(rows["n"][0]), float(rows["beta"][0])
    law = subcritical_output_law(n, 3, beta, q=_axis_query(3), values=VALUE_MATRIX)
    dev = n * np.sum((y - y.mean(axis=0)) ** 2, axis=1) * y.shape[0] / (y.shape[0] - 1)
    tr, tr_se = mean_se(dev)
    claims = [_claim(title, float(np.trace(law.cov)) * n, tr, 4 * tr_se + 3.0 / law.n_eff * tr,
                     "brute force with values V K_i; 4 SE + 3/n_eff delta-method remainder", "S11")]
    # the mean along V q, the direction the mean moves in (V mu = A V q)
    u = VALUE_MATRIX @ _axis_query(3)
    proj = y @ u / (u @ u)
    mean, se = mean_se(proj)
    theory = float(law.mean @ u / (u @ u))
    claims.append(_claim("d=3, V 4x3: E <y, Vq>/|Vq|^2 = A_3(beta) + ratio bias (quadrature)", theory, mean, 4 * se,
                         "brute force with values V K_i; 4 SE", "S11"))
    return claims


def _check_sub(table: pa.Table) -> list[Claim]:
    claims = []
    for d in _values(table, "sub", "d"):
        for beta in _values(table, "sub", "beta", d=d):
            rows = select(table, kind="sub", d=d, beta=beta, isclose=_CLOSE)
            n = int(rows["n"][0])
            law = subcritical_output_law(n, int(d), beta)
            q = _axis_query(int(d))
            bias = 3.0 / law.n_eff  # delta-method remainder, measured 1.1/n_eff at d = 3
            radial, tan_sq = rows["radial"], rows["tan_sq"]
            mean, se = mean_se(radial)
            theory = float(law.mean @ q)
            exact_bias = theory - float(subcritical_output_law(10**18, int(d), beta).mean @ q)
            claims.append(
                _claim(
                    f"d={d}, beta={beta:g}, n={n:.0e}: E<y,q> = A_d + ratio bias {exact_bias:.2e}",
                    theory, mean, 4 * se + bias * abs(exact_bias),
                    "4 SE + 3/n_eff of the bias (its next order)", "S4",
                )
            )  # fmt: skip
            dev = (radial - mean) ** 2 * n
            var, var_se = mean_se(dev)
            claims.append(
                _claim(
                    f"d={d}, beta={beta:g}: n Var<y,q> = quadrature (radial, second order)",
                    float(law.cov @ q @ q) * n, var, 4 * var_se + bias * var, "4 SE + 3/n_eff delta-method remainder", "S5",
                )
            )  # fmt: skip
            tan = n * tan_sq / (d - 1)
            var, var_se = mean_se(tan)
            theory_tan = float(np.trace(law.cov) - law.cov @ q @ q) * n / (d - 1)
            claims.append(
                _claim(
                    f"d={d}, beta={beta:g}: n Var_tan = quadrature",
                    theory_tan, var, 4 * var_se + bias * var, "4 SE + 3/n_eff delta-method remainder", "S5",
                )
            )  # fmt: skip
    return claims


def _check_fast(table: pa.Table) -> list[Claim]:
    claims = []
    for d in _values(table, "crit", "d"):
        for c in _values(table, "crit", "c", d=d):
            brute = select(table, kind="crit", d=d, c=c, isclose=_CLOSE)
            fast = select(table, kind="fast", d=d, c=c, isclose=_CLOSE)
            n = int(brute["n"][0])
            crit2 = ks_critical_value(brute["tn"].size, fast["tn"].size)
            claims.append(_ks_claim(f"d={d}, c={c:g}, n={n:.0e}: |T| of the sampler (exact top m, Gaussian rest) = brute force", ks_2sample(brute["tn"], fast["tn"]), crit2, "two-sample; sample_top(output=True)", "S7"))
            claims.append(_ks_claim(f"d={d}, c={c:g}, n={n:.0e}: radial deficit of the sampler = brute force", ks_2sample(brute["rscaled"], fast["rscaled"]), crit2, "two-sample", "S7"))  # fmt: skip
    return claims


def _check_crit(table: pa.Table) -> list[Claim]:
    claims = []
    for c in _values(table, "crit", "c", d=3):
        brute = select(table, kind="crit", d=3, c=c, isclose=_CLOSE)
        limit = select(table, kind="limit", d=3, c=c, isclose=_CLOSE)
        n = int(brute["n"][0])
        finite_n = 10.0 / n  # O(1/n) convergence at d = 3
        crit2 = ks_critical_value(brute["tn"].size, limit["tn"].size)
        claims.append(_ks_claim(f"c={c:g}: law of |T| = (kappa n)^(1/2)|P_tan y| at n={n:.0e} is the limit law", ks_2sample(brute["tn"], limit["tn"]), crit2, "two-sample against 'draw_output'", "S7"))
        mean, se = mean_se(brute["tn"] ** 2)
        exact = critical_tangential_second_moment(1.0, c)
        claims.append(_claim(f"c={c:g}: E|T|^2 at n={n:.0e} = exact quadrature {exact:.5f}", exact, mean, 4 * se + finite_n * exact, "4 SE + 10/n", "S7"))
        angle = (brute["angle"] + math.pi) / (2 * math.pi)
        claims.append(_ks_claim(f"c={c:g}: direction of T is uniform on the circle", ks_1sample(angle, "uniform"), ks_critical_value(angle.size), "one-sample", "S7"))
        claims.append(_ks_claim(f"c={c:g}: law of (kappa n)(1 - <y,q>) is the limit law (radial, second order)", ks_2sample(brute["rscaled"], limit["rscaled"]), crit2, "two-sample", "S7"))
        mean, se = mean_se(brute["rscaled"])
        exact = critical_radial_mean(1.0, c)
        claims.append(_claim(f"c={c:g}: E (kappa n)(1 - <y,q>) = exact quadrature {exact:.5f}", exact, mean, 4 * se + finite_n * exact, "4 SE + 10/n", "S7"))
    for c in _values(table, "crit", "c", d=5):
        brute = select(table, kind="crit", d=5, c=c, isclose=_CLOSE)
        limit = select(table, kind="limit", d=5, c=c, isclose=_CLOSE)
        title = f"d=5, c={c:g}: law of |T| = (kappa n)^(1/4)|P_tan y| at n={int(brute['n'][0]):.0e} is the limit law"
        if limit["tn"].size == 0:
            claims.append(Claim.missing(title, 0.0, "no limit-law draws at d = 5", SECTION, NAME, "S7"))
            continue
        claims.append(_ks_claim(title, ks_2sample(brute["tn"], limit["tn"]), ks_critical_value(brute["tn"].size, limit["tn"].size), "two-sample against 'draw_output'; finite-n bias O(n^-1/2)", "S7"))
    return claims  # fmt: skip


def _check_super(table: pa.Table) -> list[Claim]:
    claims = []
    for c in _values(table, "super", "c"):
        brute = select(table, kind="super", d=3, c=c, isclose=_CLOSE)
        limit = select(table, kind="limit", d=3, c=c, isclose=_CLOSE)
        n = int(brute["n"][0])
        claims.append(
            _ks_claim(
                f"c={c:g}: law of (kappa n)^(1/2)|y - K_(1)| at n={n:.0e} is the limit law",
                ks_2sample(brute["dist"], limit["dist"]), ks_critical_value(brute["dist"].size, limit["dist"].size), "two-sample", "S9",
            )
        )  # fmt: skip
    for d in _values(table, "asym", "d"):
        rows = select(table, kind="asym", d=d, isclose=_CLOSE)
        c, gamma, dim = float(rows["c"][0]), (d - 1) / 2.0, int(d) - 1
        mean, se = mean_se(c * rows["dist"])
        theory = supercritical_distance_constant(gamma, dim)
        claims.append(_claim(f"d={d}, c={c:g}: c E (kappa n)^(1/(2 gamma))|y - K_(1)| = near-tie constant {theory:.4f}", theory, mean, 4 * se + theory / c, "limit law; 4 SE + O(1/c) (measured 0.5/c)", "S9"))
        for rho in RHOS:
            p = float(np.mean(rows["dist"] > rho))
            se = math.sqrt(p * (1 - p) / rows["dist"].size)
            theory = supercritical_far_probability(gamma, c, rho, dim)
            claims.append(_claim(f"d={d}, c={c:g}: P(scaled |y - K_(1)| > {rho:g}) = near-tie asymptotic {theory:.5f}", theory, p, 4 * se + theory / c, "limit law; 4 SE + O(1/c) relative", "S9"))  # fmt: skip
    return claims


def _check_cross(table: pa.Table) -> list[Claim]:
    claims = []
    for d in _values(table, "cross", "d"):
        gamma, dim = (d - 1) / 2.0, int(d) - 1
        cs = _values(table, "cross", "c", d=d)
        for c in cs:
            rows = select(table, kind="cross", d=d, c=c, isclose=_CLOSE)
            mean, se = mean_se(rows["tn"] ** 2)
            exact = critical_tangential_second_moment(gamma, c)
            bias = float(np.mean(rows["bias_bound"])) * exact
            claims.append(_claim(f"d={d}, c={c:g}: E|T|^2 of the limit law = exact quadrature {exact:.4g}", exact, mean, 4 * se + bias, "4 SE + 3 (remainder share) W_m", "S7"))
        lo = select(table, kind="cross", d=d, c=min(cs), isclose=_CLOSE)["tn"]
        claims.append(_ks_claim(f"d={d}, c={min(cs):g}: |T| is chi with {dim} d.o.f. (Gaussian end)", ks_1sample(lo, lambda r: gaussian_end_cdf(r, gamma, min(cs), dim)), ks_critical_value(lo.size), "one-sample; bias O(c^gamma)", "S7"))  # fmt: skip
    return claims


def claims(table: pa.Table) -> list[Claim]:
    """Subcritical moments and V; critical and supercritical brute force vs the limit law; crossover ends."""
    return (
        _check_sub(table) + _check_value(table) + _check_crit(table) + _check_fast(table) + _check_super(table)
        + _check_cross(table)
    )  # fmt: skip


# ---------------------------------------------------------------------------
# Figure
# ---------------------------------------------------------------------------


def figure(table: pa.Table) -> Figure:
    """Four panels: subcritical variances, critical |T| laws, supercritical distances, crossover."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 9))
    axes = fig.subplots(2, 2)
    _panel_sub(axes[0, 0], table)
    _panel_crit(axes[0, 1], table)
    _panel_super(axes[1, 0], table)
    _panel_cross(axes[1, 1], table)
    fig.tight_layout()
    return fig


def _panel_sub(ax, table: pa.Table) -> None:
    for k, d in enumerate(_values(table, "sub", "d")):
        for beta in _values(table, "sub", "beta", d=d):
            rows = select(table, kind="sub", d=d, beta=beta, isclose=_CLOSE)
            n = int(rows["n"][0])
            law = subcritical_output_law(n, int(d), beta)
            q = _axis_query(int(d))
            meas = [n * np.var(rows["radial"]), n * np.mean(rows["tan_sq"]) / (d - 1)]
            theo = [float(law.cov @ q @ q) * n, float(np.trace(law.cov) - law.cov @ q @ q) * n / (d - 1)]
            ax.plot(theo, meas, "o^"[k % 2], color=f"C{k}", label=f"d={d}, beta={beta:g} (radial, tangential)", ms=7, mfc="none" if beta > 20 else None)
    lims = ax.get_xlim()
    ax.plot(lims, lims, "k--", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel="n Var, quadrature", ylabel="n Var, brute force", title="Subcritical: radial and tangential variances")
    ax.legend(fontsize=7)


def _panel_crit(ax, table: pa.Table) -> None:
    for k, c in enumerate(_values(table, "crit", "c", d=3)):
        curves = [(3, "crit", "-", "brute"), (3, "limit", ":", "limit"), (5, "crit", "-", "brute"), (5, "fast", "--", "fast")]
        for d, kind, style, label in curves:
            x = select(table, kind=kind, d=d, c=c, isclose=_CLOSE)["tn"]
            if x.size == 0:
                continue
            xs = np.sort(x)
            ax.plot(xs, (np.arange(xs.size) + 0.5) / xs.size, style, color=f"C{k}", lw=1.5 if d == 3 else 0.8, label=f"d={d}, c={c:g} {label}")
    ax.set(xlabel="|T| = (kappa n)^(1/(2 gamma)) |P_tan y|  (d = 3: thick, d = 5: thin)", ylabel="cdf", title="Critical: |T|, brute force vs limit law (d=3) and the sampler (d=5)")
    ax.legend(fontsize=6, ncol=2)


def _panel_super(ax, table: pa.Table) -> None:
    rhos = np.geomspace(1e-3, 2.0, 25)
    for k, c in enumerate(_values(table, "super", "c")):
        brute = select(table, kind="super", d=3, c=c, isclose=_CLOSE)["dist"]
        limit = select(table, kind="limit", d=3, c=c, isclose=_CLOSE)["dist"]
        ax.plot(rhos, [np.mean(brute > r) for r in rhos], "o", ms=3, color=f"C{k}", label=f"c={c:g} brute force")
        ax.plot(rhos, [np.mean(limit > r) for r in rhos], "-", color=f"C{k}", label=f"c={c:g} limit law")
        ax.plot(rhos, [supercritical_far_probability(1.0, c, r, 2) for r in rhos], "--", color=f"C{k}", lw=1, label=f"c={c:g} near-tie asymptotic")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel="rho", ylabel="P((kappa n)^(1/2) |y - K_(1)| > rho)", title="Supercritical: distance of the output to the closest key (d = 3)")
    ax.legend(fontsize=6)


def _panel_cross(ax, table: pa.Table) -> None:
    for k, d in enumerate(_values(table, "cross", "d")):
        gamma = (d - 1) / 2.0
        cs = np.array(_values(table, "cross", "c", d=d))
        tns = [select(table, kind="cross", d=d, c=c, isclose=_CLOSE)["tn"] for c in cs]
        q = np.array([np.quantile(tn, [0.05, 0.5, 0.95]) for tn in tns])
        ax.fill_between(cs, q[:, 0], q[:, 2], color=f"C{k}", alpha=0.2)
        ax.plot(cs, q[:, 1], "o-", color=f"C{k}", label=f"d={d}: median, 5-95% of |T|")
        grid = np.geomspace(cs.min(), cs.max(), 60)
        from scipy.stats import chi

        gauss = np.sqrt(2.0 ** -gamma * grid ** (gamma - 1.0) / math.gamma(gamma) / (d - 1)) * chi.median(d - 1)
        ax.plot(grid[grid < 1], gauss[grid < 1], "k--", lw=1)
        ax.plot(grid[grid > 1], np.full((grid > 1).sum(), math.sqrt(2.0) * math.log(2.0) ** (0.5 / gamma)), ":", color=f"C{k}", lw=1.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("c = beta / beta*(n)")
    ax.set_ylabel("|T| = (kappa n)^(1/(2 gamma)) |P_tan y|")
    ax.set_title("Crossover of |T| (limit law): Gaussian end (dashed) to nearest key (dotted)", fontsize=10)
    ax.legend(fontsize=7)
