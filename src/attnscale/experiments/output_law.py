"""The law of the attention output in every regime, for any value matrix (theory section 3).

Brute-force attention over real uniform keys on the sphere against the output theory of
:mod:`attnscale.output` and the critical limit law (:meth:`attnscale.limits.CriticalLimit.draw_output`):

- **subcritical**: the joint Gaussian law of ``y`` (d = 3, 5): the radial variance (second order
  next to the tangential one), the ratio bias of the radial mean and the tangential variance, each
  against its quadrature value; with a random orthogonal and a diagonal value matrix ``V`` the
  covariance of ``Vx`` is ``V Sigma V^T``;
- **critical** (d = 3, three c): the scaled tangential output ``T = (kappa n)^(1/2) P_tan y`` has the
  limit law (norm by KS and by ``E|T|^2`` against its exact quadrature; direction uniform on the
  circle), and the radial deficit ``(kappa n)(1 - <y, q>)`` too (second order); for d = 3 and 5 the
  exact sampler's output (:func:`attnscale.sampler.sample_top` with ``output=True``) has the law of
  brute force at the same n;
- **supercritical** (d = 3, c = 20, 50): the scaled distance of ``y`` to the closest key has the
  limit law; at c = 200 the limit law's mean distance and far probability match the near-tie
  asymptotics;
- **crossover**: the law of ``|T|`` for c from 1e-2 to 1e2 and d = 3, 5, 9 (limit law), with
  ``E|T|^2`` against its exact quadrature (which tends to both ends), joining the Gaussian end
  (chi law, checked by KS at c = 1e-2) and the nearest-key end ``sqrt(2) Gamma_1^(1/(2 gamma))``
  (shown; it is approached only like ``gamma Gamma(2 - 1/gamma) / c``, the density of near-ties,
  so at d = 9 a tenth of the draws are still split between two keys at c = 100).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from ..attention import attention, attention_stats
from ..laws import UniformSphere
from ..limits import CriticalLimit
from ..output import (
    critical_radial_mean,
    critical_tangential_second_moment,
    gaussian_end_cdf,
    log_tangential_scale,
    subcritical_output_law,
    supercritical_distance_constant,
    supercritical_far_probability,
    tangent_basis,
)
from ..parallel import run_tasks
from ..sampler import sample_top
from ..tails import critical_beta
from ._claims import Claim, mean_se

NAME = "output_law"
TITLE = "Output law: Gaussian, critical and nearest-key regimes of y, any value matrix"
SECTION = "3"

#: Level of the KS claims.
KS_ALPHA = 1e-3
#: Scaled distances rho of the supercritical probabilities.
RHOS = (0.1, 0.5)
#: Columns of every row (NaN where a kind of task has no value).
COLUMNS = ("radial", "tan_sq", "x0", "x1", "x2", "tn", "angle", "rscaled", "dist", "bias_bound")


def config(quick: bool, seed: int) -> dict:
    """Quick: n = 1e4 brute force, small Monte Carlo; full: n = 1e5 (critical, supercritical) and more draws."""
    return {
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
    }


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
    d, n, beta, reps = cfg["d"], cfg["n"], cfg["beta"], cfg["reps"]
    q, law = _axis_query(d), UniformSphere(d)
    x = np.array([attention_stats(q, law.sample(n, np.random.default_rng(s)), beta).output for s in seed.spawn(reps)])
    radial = x @ q
    tan_sq = np.sum(x * x, axis=1) - radial**2
    pad = np.full((reps, 3), np.nan)
    pad[:, : min(d, 3)] = x[:, :3]
    return _table("sub", d, beta / _beta_star(d, n), beta, n, radial=radial, tan_sq=tan_sq, x0=pad[:, 0], x1=pad[:, 1], x2=pad[:, 2])


def _beta_star(d: int, n: int) -> float:
    tail = UniformSphere(d).score_tail(_axis_query(d))
    return critical_beta(n, tail)


def _brute_task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    """Critical or supercritical brute force: scaled tangential output, radial deficit, distance to K_(1)."""
    d, n, c, reps = cfg["d"], cfg["n"], cfg["c"], cfg["reps"]
    q, law = _axis_query(d), UniformSphere(d)
    tail = law.score_tail(q)
    beta = c * _beta_star(d, n)
    log_s = log_tangential_scale(n, tail)
    basis = tangent_basis(q)
    rows = np.empty((reps, 4))
    for i, s in enumerate(seed.spawn(reps)):
        keys = law.sample(n, np.random.default_rng(s))
        att = attention(q, keys, beta)
        x = att.output
        t = (basis.T @ x) * math.exp(-log_s)
        nearest = keys[int(np.argmax(att.weights))]
        rows[i] = (
            float(np.linalg.norm(t)),
            math.atan2(t[1], t[0]) if d == 3 else np.nan,
            float((1.0 - x @ q) * math.exp(-2.0 * log_s)),
            float(np.linalg.norm(x - nearest) * math.exp(-log_s)),
        )
    return _table(cfg["kind"], d, c, beta, n, tn=rows[:, 0], angle=rows[:, 1], rscaled=rows[:, 2], dist=rows[:, 3])


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
    """The exact sampler's output at n (attnscale.sampler.sample_top with output=True)."""
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


def _task(cfg: dict, seed: np.random.SeedSequence) -> pa.Table:
    kind = cfg["kind"]
    if kind == "sub":
        return _sub_task(cfg, seed)
    if kind == "fast":
        return _fast_task(cfg, seed)
    if kind in ("crit", "super"):
        return _brute_task(cfg, seed)
    return _limit_task(cfg, seed)


def run(cfg: dict, store, executor, progress=None) -> pa.Table:
    """Brute-force chunks (subcritical, critical, supercritical) and limit-law draws; one row per draw."""
    tasks: list[dict] = []
    chunk = cfg["chunk"]
    for d in cfg["sub_ds"]:
        for b in cfg["sub_betas"]:
            for k in range(cfg["sub_reps"] // chunk):
                tasks.append({"kind": "sub", "d": d, "beta": b, "n": cfg["sub_n"], "reps": chunk, "chunk": k})
    for d in cfg["crit_ds"]:
        for c in cfg["crit_cs"]:
            for k in range(cfg["crit_reps"] // chunk):
                tasks.append({"kind": "crit", "d": d, "c": c, "n": cfg["crit_n"], "reps": chunk, "chunk": k})
            tasks.append({"kind": "fast", "d": d, "c": c, "n": cfg["crit_n"], "reps": cfg["fast_draws"]})
            if d == 3:
                tasks.append({"kind": "limit", "d": 3, "c": c, "reps": cfg["limit_draws"], "m": None})
    for c in cfg["super_cs"]:
        for k in range(cfg["super_reps"] // chunk):
            tasks.append({"kind": "super", "d": 3, "c": c, "n": cfg["crit_n"], "reps": chunk, "chunk": k})
        tasks.append({"kind": "limit", "d": 3, "c": c, "reps": cfg["limit_draws"], "m": None})
    tasks.append({"kind": "asym", "d": 3, "c": cfg["asym_c"], "reps": cfg["asym_draws"], "m": 16})
    tasks.append({"kind": "asym", "d": 5, "c": cfg["asym_c"], "reps": cfg["asym_draws"], "m": 16})
    for d in cfg["cross_ds"]:
        for c in cfg["cross_cs"]:
            tasks.append({"kind": "cross", "d": d, "c": c, "reps": cfg["cross_draws"], "m": cfg["cross_m"]})
    tables = run_tasks(_task, tasks, store, executor, cfg["seed"], name=NAME, progress=progress, description=NAME)
    return pa.concat_tables(tables)


# ---------------------------------------------------------------------------
# Selection helpers
# ---------------------------------------------------------------------------


def _select(table: pa.Table, kind: str, d: int | None = None, c: float | None = None, beta: float | None = None) -> dict:
    kinds = np.asarray(table["kind"].to_pylist())
    sel = kinds == kind
    if d is not None:
        sel &= table["d"].to_numpy() == d
    if c is not None:
        sel &= np.isclose(table["c"].to_numpy(), c, rtol=1e-12)
    if beta is not None:
        sel &= table["beta"].to_numpy() == beta
    return {name: table[name].to_numpy()[sel] for name in table.column_names if name != "kind"}


def _values(table: pa.Table, kind: str, column: str) -> list:
    kinds = np.asarray(table["kind"].to_pylist())
    return sorted(set(table[column].to_numpy()[kinds == kind].tolist()))


def _ks_critical(n1: int, n2: int | None = None) -> float:
    """Asymptotic KS critical distance at level ``KS_ALPHA`` (one-sample when ``n2`` is None).

    Examples
    --------
    >>> round(_ks_critical(1000, 1000), 4)
    0.0872
    """
    scale = math.sqrt(1.0 / n1 + (1.0 / n2 if n2 else 0.0))
    return math.sqrt(-0.5 * math.log(KS_ALPHA / 2.0)) * scale


def _ks2(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import ks_2samp

    return float(ks_2samp(a, b).statistic)


def _ks1(a: np.ndarray, cdf) -> float:
    from scipy.stats import kstest

    return float(kstest(a, cdf).statistic)


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def _claim(claim: str, theory: float, measured: float, half_width: float, note: str) -> Claim:
    return Claim.within(claim, theory, measured, half_width, section=SECTION, experiment=NAME, note=note)


def _ks_claim(claim: str, dist: float, crit: float, note: str) -> Claim:
    return _claim(claim, 0.0, dist, crit, f"KS distance, level {KS_ALPHA:g}; {note}")


def _random_orthogonal(d: int) -> np.ndarray:
    """A fixed random orthogonal matrix (seeded, so the claim is reproducible)."""
    qm, r = np.linalg.qr(np.random.default_rng(2024).standard_normal((d, d)))
    return qm * np.sign(np.diag(r))


#: Value matrices of the V claims (d = 3).
VALUE_MATRICES = {"random orthogonal V": _random_orthogonal(3), "diagonal V = diag(3, 0.5, -2)": np.diag([3.0, 0.5, -2.0])}


def _check_sub(table: pa.Table) -> list[Claim]:
    claims = []
    for d in _values(table, "sub", "d"):
        for beta in _values(_filter(table, "sub", d), "sub", "beta"):
            rows = _select(table, "sub", d=d, beta=beta)
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
                    "4 SE + 3/n_eff of the bias (its next order)",
                )
            )  # fmt: skip
            dev = (radial - mean) ** 2 * n
            var, var_se = mean_se(dev)
            claims.append(
                _claim(
                    f"d={d}, beta={beta:g}: n Var<y,q> = quadrature (radial, second order)",
                    float(law.cov @ q @ q) * n, var, 4 * var_se + bias * var, "4 SE + 3/n_eff delta-method remainder",
                )
            )  # fmt: skip
            tan = n * tan_sq / (d - 1)
            var, var_se = mean_se(tan)
            theory_tan = float(np.trace(law.cov) - law.cov @ q @ q) * n / (d - 1)
            claims.append(
                _claim(
                    f"d={d}, beta={beta:g}: n Var_tan = quadrature",
                    theory_tan, var, 4 * var_se + bias * var, "4 SE + 3/n_eff delta-method remainder",
                )
            )  # fmt: skip
            if d == 3:
                x = np.column_stack([rows["x0"], rows["x1"], rows["x2"]])
                for name, v in VALUE_MATRICES.items():
                    theory_v = subcritical_output_law(n, 3, beta, q=q, values=v)
                    y = x @ v.T
                    for i in range(3):
                        dev_i = n * (y[:, i] - y[:, i].mean()) ** 2
                        var, var_se = mean_se(dev_i)
                        claims.append(
                            _claim(
                                f"d=3, beta={beta:g}, {name}: n Var (Vy)_{i} = n (V Sigma V^T)_{i}{i}",
                                float(theory_v.cov[i, i]) * n, var, 4 * var_se + bias * var,
                                "4 SE + 3/n_eff; y = Vx for the same keys",
                            )
                        )  # fmt: skip
    return claims


def _filter(table: pa.Table, kind: str, d: int) -> pa.Table:
    kinds = np.asarray(table["kind"].to_pylist())
    return table.filter(pa.array((kinds == kind) & (table["d"].to_numpy() == d)))


def _check_fast(table: pa.Table) -> list[Claim]:
    claims = []
    for d in _values(table, "crit", "d"):
        for c in _values(_filter(table, "crit", d), "crit", "c"):
            brute, fast = _select(table, "crit", d=d, c=c), _select(table, "fast", d=d, c=c)
            n = int(brute["n"][0])
            crit2 = _ks_critical(brute["tn"].size, fast["tn"].size)
            claims.append(_ks_claim(f"d={d}, c={c:g}, n={n:.0e}: |T| of the exact sampler = brute force", _ks2(brute["tn"], fast["tn"]), crit2, "two-sample; sample_top(output=True)"))
            claims.append(_ks_claim(f"d={d}, c={c:g}, n={n:.0e}: radial deficit of the exact sampler = brute force", _ks2(brute["rscaled"], fast["rscaled"]), crit2, "two-sample"))  # fmt: skip
    return claims


def _check_crit(table: pa.Table) -> list[Claim]:
    claims = []
    for c in _values(_filter(table, "crit", 3), "crit", "c"):
        brute, limit = _select(table, "crit", d=3, c=c), _select(table, "limit", d=3, c=c)
        n = int(brute["n"][0])
        finite_n = 10.0 / n  # O(1/n) convergence at d = 3
        crit2 = _ks_critical(brute["tn"].size, limit["tn"].size)
        claims.append(_ks_claim(f"c={c:g}: law of |T| = (kappa n)^(1/2)|P_tan y| at n={n:.0e} is the limit law", _ks2(brute["tn"], limit["tn"]), crit2, "two-sample against 'draw_output'"))
        mean, se = mean_se(brute["tn"] ** 2)
        exact = critical_tangential_second_moment(1.0, c)
        claims.append(_claim(f"c={c:g}: E|T|^2 at n={n:.0e} = exact quadrature {exact:.5f}", exact, mean, 4 * se + finite_n * exact, "4 SE + 10/n"))
        angle = (brute["angle"] + math.pi) / (2 * math.pi)
        claims.append(_ks_claim(f"c={c:g}: direction of T is uniform on the circle", _ks1(angle, "uniform"), _ks_critical(angle.size), "one-sample"))
        claims.append(_ks_claim(f"c={c:g}: law of (kappa n)(1 - <y,q>) is the limit law (radial, second order)", _ks2(brute["rscaled"], limit["rscaled"]), crit2, "two-sample"))
        mean, se = mean_se(brute["rscaled"])
        exact = critical_radial_mean(1.0, c)
        claims.append(_claim(f"c={c:g}: E (kappa n)(1 - <y,q>) = exact quadrature {exact:.5f}", exact, mean, 4 * se + finite_n * exact, "4 SE + 10/n"))  # fmt: skip
    return claims


def _check_super(table: pa.Table) -> list[Claim]:
    claims = []
    for c in _values(table, "super", "c"):
        brute, limit = _select(table, "super", d=3, c=c), _select(table, "limit", d=3, c=c)
        n = int(brute["n"][0])
        claims.append(
            _ks_claim(
                f"c={c:g}: law of (kappa n)^(1/2)|y - K_(1)| at n={n:.0e} is the limit law",
                _ks2(brute["dist"], limit["dist"]), _ks_critical(brute["dist"].size, limit["dist"].size), "two-sample",
            )
        )  # fmt: skip
    for d in _values(table, "asym", "d"):
        rows = _select(table, "asym", d=d)
        c, gamma, dim = float(rows["c"][0]), (d - 1) / 2.0, int(d) - 1
        mean, se = mean_se(c * rows["dist"])
        theory = supercritical_distance_constant(gamma, dim)
        claims.append(_claim(f"d={d}, c={c:g}: c E (kappa n)^(1/(2 gamma))|y - K_(1)| = near-tie constant {theory:.4f}", theory, mean, 4 * se + theory / c, "limit law; 4 SE + O(1/c) (measured 0.5/c)"))
        for rho in RHOS:
            p = float(np.mean(rows["dist"] > rho))
            se = math.sqrt(p * (1 - p) / rows["dist"].size)
            theory = supercritical_far_probability(gamma, c, rho, dim)
            claims.append(_claim(f"d={d}, c={c:g}: P(scaled |y - K_(1)| > {rho:g}) = near-tie asymptotic {theory:.5f}", theory, p, 4 * se + theory / c, "limit law; 4 SE + O(1/c) relative"))  # fmt: skip
    return claims


def _check_cross(table: pa.Table) -> list[Claim]:
    claims = []
    for d in _values(table, "cross", "d"):
        gamma, dim = (d - 1) / 2.0, int(d) - 1
        cs = _values(_filter(table, "cross", d), "cross", "c")
        for c in cs:
            rows = _select(table, "cross", d=d, c=c)
            mean, se = mean_se(rows["tn"] ** 2)
            exact = critical_tangential_second_moment(gamma, c)
            bias = float(np.mean(rows["bias_bound"])) * exact
            claims.append(_claim(f"d={d}, c={c:g}: E|T|^2 of the limit law = exact quadrature {exact:.4g}", exact, mean, 4 * se + bias, "4 SE + 3 (remainder share) W_m"))
        lo = _select(table, "cross", d=d, c=min(cs))["tn"]
        claims.append(_ks_claim(f"d={d}, c={min(cs):g}: |T| is chi with {dim} d.o.f. (Gaussian end)", _ks1(lo, lambda r: gaussian_end_cdf(r, gamma, min(cs), dim)), _ks_critical(lo.size), "one-sample; bias O(c^gamma)"))  # fmt: skip
    return claims


def check(table: pa.Table) -> list[Claim]:
    """Subcritical moments and V; critical and supercritical brute force vs the limit law; crossover ends."""
    return _check_sub(table) + _check_crit(table) + _check_fast(table) + _check_super(table) + _check_cross(table)


# ---------------------------------------------------------------------------
# Figure
# ---------------------------------------------------------------------------


def figure(table: pa.Table):
    """Four panels: subcritical variances, critical |T| laws, supercritical distances, crossover."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    _panel_sub(axes[0, 0], table)
    _panel_crit(axes[0, 1], table)
    _panel_super(axes[1, 0], table)
    _panel_cross(axes[1, 1], table)
    fig.tight_layout()
    return fig


def _panel_sub(ax, table: pa.Table) -> None:
    for k, d in enumerate(_values(table, "sub", "d")):
        for beta in _values(_filter(table, "sub", d), "sub", "beta"):
            rows = _select(table, "sub", d=d, beta=beta)
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
    ax.set_xlabel("n Var, quadrature")
    ax.set_ylabel("n Var, brute force")
    ax.set_title("Subcritical: radial and tangential variances")
    ax.legend(fontsize=7)


def _panel_crit(ax, table: pa.Table) -> None:
    for k, c in enumerate(_values(_filter(table, "crit", 3), "crit", "c")):
        curves = [(3, "crit", "-", "brute"), (3, "limit", ":", "limit"), (5, "crit", "-", "brute"), (5, "fast", "--", "fast")]
        for d, kind, style, label in curves:
            x = _select(table, kind, d=d, c=c)["tn"]
            if x.size == 0:
                continue
            xs = np.sort(x)
            ax.plot(xs, (np.arange(xs.size) + 0.5) / xs.size, style, color=f"C{k}", lw=1.5 if d == 3 else 0.8, label=f"d={d}, c={c:g} {label}")
    ax.set_xlabel("|T| = (kappa n)^(1/(2 gamma)) |P_tan y|  (d = 3: thick, d = 5: thin)")
    ax.set_ylabel("cdf")
    ax.set_title("Critical: |T|, brute force vs limit law (d=3) and exact sampler (d=5)")
    ax.legend(fontsize=6, ncol=2)


def _panel_super(ax, table: pa.Table) -> None:
    rhos = np.geomspace(1e-3, 2.0, 25)
    for k, c in enumerate(_values(table, "super", "c")):
        brute, limit = _select(table, "super", d=3, c=c)["dist"], _select(table, "limit", d=3, c=c)["dist"]
        ax.plot(rhos, [np.mean(brute > r) for r in rhos], "o", ms=3, color=f"C{k}", label=f"c={c:g} brute force")
        ax.plot(rhos, [np.mean(limit > r) for r in rhos], "-", color=f"C{k}", label=f"c={c:g} limit law")
        ax.plot(rhos, [supercritical_far_probability(1.0, c, r, 2) for r in rhos], "--", color=f"C{k}", lw=1, label=f"c={c:g} near-tie asymptotic")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rho")
    ax.set_ylabel("P((kappa n)^(1/2) |y - K_(1)| > rho)")
    ax.set_title("Supercritical: distance of the output to the closest key (d = 3)")
    ax.legend(fontsize=6)


def _panel_cross(ax, table: pa.Table) -> None:
    for k, d in enumerate(_values(table, "cross", "d")):
        gamma = (d - 1) / 2.0
        cs = np.array(_values(_filter(table, "cross", d), "cross", "c"))
        q = np.array([np.quantile(_select(table, "cross", d=d, c=c)["tn"], [0.05, 0.5, 0.95]) for c in cs])
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
