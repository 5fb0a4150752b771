"""Draws of the attention statistics at (n, beta) by one of three methods.

``brute``: real keys from the key law and one exact streaming pass
(:func:`attnscale.attention.attention_stats`); ``fast``: the order-statistic
sampler (:func:`attnscale.sampler.sample_top`, docs/theory.md section 4), exact for the top ``m`` keys
with a Gaussian for the other ``n - m`` (its error bounded by the choice of ``m``);
``limit``: the critical limit law (:class:`attnscale.limits.CriticalLimit`,
section 3), which needs only ``gamma`` and ``c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._validate import (
    InputTypeError,
    InputError,
    RngLike,
    check_beta,
    check_choice,
    check_int,
    check_matrix,
    check_n,
    check_positive,
    check_unit_vector,
)
from .laws import KeyLaw
from .runtime.progress import track
from .tails import critical_beta

METHODS = ("brute", "fast", "limit")

#: Brute force refuses key arrays larger than this (bytes); use ``fast`` beyond.
BRUTE_MAX_BYTES = 4 * 2**30


@dataclass(frozen=True)
class SimulationResult:
    r"""Per-draw statistics of one simulation (arrays of length ``reps``).

    ``output`` holds the outputs :math:`y = V\sum_i w_i K_i` (rows; identity
    ``V`` unless ``values`` was given); ``radial`` is :math:`\langle x, q\rangle`
    and ``scaled_tangential_norm`` is :math:`(\kappa n)^{1/(2\gamma)}|x - \langle x, q\rangle q|`
    for the key-space output :math:`x = \sum_i w_i K_i`; ``tangential_var`` is the
    sample variance of :math:`x - \langle x,q\rangle q` per tangent direction
    (trace of its sample covariance over ``d - 1``; docs/theory.md section 3).
    The ``fast`` method draws the output only where key directions are uniform
    given the score (:meth:`attnscale.laws.KeyLaw.tangent_frame`) and ``beta > 0``;
    elsewhere these four fields are ``None``.
    """

    method: str
    n: int | None
    beta: float | None
    c: float
    reps: int
    max_weight: np.ndarray
    n_eff: np.ndarray
    entropy: np.ndarray
    output: np.ndarray | None
    radial: np.ndarray | None
    scaled_tangential_norm: np.ndarray | None
    tangential_var: float | None

    def to_dict(self) -> dict[str, np.ndarray]:
        """The per-draw arrays, as saved by ``--save-samples`` (outputs when drawn).

        Examples
        --------
        >>> from attnscale.laws import UniformSphere
        >>> sorted(simulate_stats(UniformSphere(3), [1.0, 0, 0], n=100, c=1.0, reps=2).to_dict())
        ['entropy', 'max_weight', 'n_eff', 'output', 'scaled_tangential_norm']
        """
        out = {"max_weight": self.max_weight, "n_eff": self.n_eff, "entropy": self.entropy}
        if self.output is not None:
            out["output"] = self.output
            out["scaled_tangential_norm"] = self.scaled_tangential_norm
        return out


def _with_output(
    method: str, n: int, beta: float, c: float, stats: tuple[np.ndarray, ...], x: np.ndarray, q: np.ndarray,
    values: np.ndarray | None, tail, scaled_norm: np.ndarray | None = None,
) -> SimulationResult:
    """Assemble a result from the weight statistics and the key-space outputs ``x`` (rows)."""
    from .output import scaled_tangential_norm

    radial = x @ q
    tan = x - np.outer(radial, q)
    if scaled_norm is None:
        scaled_norm = scaled_tangential_norm(x, q, n, tail)
    d = q.size
    # trace of the sample covariance, without forming the d x d matrix (d up to 1e5)
    tvar = float(np.sum(np.var(tan, axis=0, ddof=1)) / (d - 1)) if x.shape[0] > 1 else 0.0
    out = x if values is None else x @ values.T
    return SimulationResult(method, n, beta, c, x.shape[0], *stats, out, radial, scaled_norm, tvar)


def simulate_stats(
    law: KeyLaw,
    q,
    n: int,
    *,
    beta: float | None = None,
    c: float | None = None,
    reps: int = 200,
    rng: RngLike = 0,
    method: str = "brute",
    m: int | None = None,
    gamma: float | None = None,
    progress: bool = False,
    values=None,
) -> SimulationResult:
    r"""Draw ``reps`` independent contexts, their top-weight statistics and outputs.

    Exactly one of ``beta`` and ``c = beta / beta*(n)`` is given.  ``rng`` is an
    int seed, a SeedSequence, a Generator or None; with an int or a SeedSequence
    draw ``i`` uses ``SeedSequence(rng).spawn(reps)[i]`` (brute), while fast and
    limit use one generator seeded by it (vectorized over draws); a Generator is
    used as is (brute: its ``spawn(reps)`` children).  ``values`` is a value matrix :math:`V` of shape
    ``(d_v, d)`` applied to the outputs (identity by default).

    The ``limit`` method maps the critical limit law of the output
    (:meth:`attnscale.limits.CriticalLimit.draw_output`, tangent dimension ``d - 1``)
    back to ``n``: :math:`x = (1 - s^2 R)\,q + s\,B T` with
    :math:`s = (\kappa n)^{-1/(2\gamma)}`, ``B`` an orthonormal basis of the
    tangent space, ``T`` and ``R`` the limit's tangential and radial parts;
    its ``scaled_tangential_norm`` is :math:`|T|` (docs/theory.md section 3).

    Examples
    --------
    >>> from attnscale.laws import UniformSphere
    >>> r = simulate_stats(UniformSphere(3), [1.0, 0, 0], n=1000, c=1.0, reps=5)
    >>> r.max_weight.shape, r.output.shape
    ((5,), (5, 3))
    """
    check_choice(method, "method", METHODS)
    if not isinstance(law, KeyLaw):
        raise InputTypeError(f"law: got {type(law).__name__}; expected a KeyLaw such as UniformSphere(d)")
    q = check_unit_vector(q, "q", law.d)
    n = check_n(n)
    reps = check_int(reps, "reps")
    seq = _root(rng)
    if (beta is None) == (c is None):
        raise InputError("beta/c: give exactly one of beta and c")
    v = None if values is None else check_matrix(values, "values", cols=law.d)
    tail = law.score_tail(q)
    beta_star = critical_beta(n, tail)
    if beta is None:
        c = check_positive(c, "c")
        beta = c * beta_star
    else:
        beta = check_beta(beta)
        c = beta / beta_star

    if method == "limit":
        from .limits import CriticalLimit
        from .laws import TangentMap
        from .output import log_tangential_scale

        g = tail.gamma if gamma is None else check_positive(gamma, "gamma")
        limit = CriticalLimit(g, check_positive(c, "c"))
        out = limit.draw_output(reps, np.random.default_rng(seq), m, dim=law.d - 1, keep=0)
        draws = out.draws
        log_s = log_tangential_scale(n, tail if gamma is None else _with_gamma(tail, g))
        x = np.outer(1.0 - math.exp(2.0 * log_s) * out.radial, q) + math.exp(log_s) * TangentMap.at(q).apply(out.tangential)
        stats = (draws.max_weight, draws.n_eff, draws.entropy)
        return _with_output(method, n, beta, c, stats, x, q, v, tail, scaled_norm=out.tangential_norm)
    if method == "fast":
        from .output import log_tangential_scale
        from .sampler import sample_top

        with_output = beta > 0 and law.tangent_frame(q) is not None
        top = sample_top(law, n, beta, reps, np.random.default_rng(seq), m, q=q, output=with_output)
        stats = (top.max_weight, top.n_eff, top.entropy)
        if not with_output:
            return SimulationResult(method, n, beta, c, reps, *stats, None, None, None, None)
        norms = np.linalg.norm(top.tangential, axis=1) * math.exp(-log_tangential_scale(n, tail))
        result = _with_output(method, n, beta, c, stats, top.output, q, v, tail, scaled_norm=norms)
        # the radial part keeps its relative accuracy through the deficit (1 - <x,q> can be ~1e-18)
        return _replace(result, radial=1.0 - top.radial_deficit)
    return _brute(law, q, n, beta, c, reps, seq, progress, v, tail)


def _root(rng: RngLike) -> np.random.SeedSequence | np.random.Generator:
    """The root of the random streams: a Generator as is, else the SeedSequence of the seed."""
    if isinstance(rng, (np.random.Generator, np.random.SeedSequence)):
        return rng
    return np.random.SeedSequence(None if rng is None else check_int(rng, "rng", 0))


def _replace(result: SimulationResult, **changes) -> SimulationResult:
    import dataclasses

    return dataclasses.replace(result, **changes)


def _with_gamma(tail, gamma: float):
    from .tails import ScoreTail

    return ScoreTail.from_log_kappa(tail.endpoint, gamma, tail.log_kappa, tail.kind)


def _brute(
    law: KeyLaw,
    q: np.ndarray,
    n: int,
    beta: float,
    c: float,
    reps: int,
    seq: np.random.SeedSequence | np.random.Generator,
    progress: bool,
    values: np.ndarray | None,
    tail,
):
    from .attention import attention_stats

    if n * law.d * 8 > BRUTE_MAX_BYTES:
        raise InputError(
            f"n: got {n:.3g}; brute force would hold {n * law.d * 8 / 2**30:.1f} GiB of keys "
            f"(limit {BRUTE_MAX_BYTES / 2**30:.0f} GiB): use --method fast"
        )
    stats = np.empty((reps, 3))
    x = np.empty((reps, law.d))
    children = seq.spawn(reps)
    for i in track(range(reps), reps, f"brute n={n:.3g}", enabled=progress):
        keys = law.sample(n, np.random.default_rng(children[i]))
        s = attention_stats(q, keys, beta)
        stats[i] = (s.max_weight, s.n_eff, s.entropy)
        x[i] = s.output
    return _with_output("brute", n, beta, c, (stats[:, 0], stats[:, 1], stats[:, 2]), x, q, values, tail)
