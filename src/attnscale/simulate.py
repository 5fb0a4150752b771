"""Draws of the attention statistics at (n, beta) by one of three methods.

``brute``: real keys from the key law and one exact streaming pass
(:func:`attnscale.attention.attention_stats`); ``fast``: the exact order-statistic
sampler (:func:`attnscale.sampler.sample_top`, docs/theory.md section 4);
``limit``: the critical limit law (:class:`attnscale.limits.CriticalLimit`,
section 3), which needs only ``gamma`` and ``c``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import check_beta, check_choice, check_int, check_n, check_positive, check_unit_vector
from .laws import KeyLaw
from .progress import track
from .tails import critical_beta

METHODS = ("brute", "fast", "limit")

#: Brute force refuses key arrays larger than this (bytes); use ``fast`` beyond.
BRUTE_MAX_BYTES = 4 * 2**30


@dataclass(frozen=True)
class SimulationResult:
    """Per-draw statistics of one simulation (arrays of length ``reps``)."""

    method: str
    n: int | None
    beta: float | None
    c: float
    reps: int
    max_weight: np.ndarray
    n_eff: np.ndarray
    entropy: np.ndarray

    def samples(self) -> dict[str, np.ndarray]:
        """The per-draw arrays, as saved by ``--save-samples``."""
        return {"max_weight": self.max_weight, "n_eff": self.n_eff, "entropy": self.entropy}


def simulate_stats(
    law: KeyLaw,
    q,
    n: int,
    *,
    beta: float | None = None,
    c: float | None = None,
    reps: int = 200,
    seed: int | np.random.SeedSequence = 0,
    method: str = "brute",
    m: int | None = None,
    gamma: float | None = None,
    progress: bool = False,
) -> SimulationResult:
    r"""Draw ``reps`` independent contexts and their top-weight statistics.

    Exactly one of ``beta`` and ``c = beta / beta*(n)`` is given.  ``seed`` is
    an int or a SeedSequence; draw ``i`` uses ``SeedSequence(seed).spawn(reps)[i]``
    (brute), while fast and limit use one generator seeded by ``seed``
    (vectorized over draws).

    Examples
    --------
    >>> from attnscale.laws import UniformSphere
    >>> r = simulate_stats(UniformSphere(3), [1.0, 0, 0], n=1000, c=1.0, reps=5)
    >>> r.max_weight.shape
    (5,)
    """
    check_choice(method, "method", METHODS)
    if not isinstance(law, KeyLaw):
        raise TypeError(f"law: got {type(law).__name__}; expected a KeyLaw such as UniformSphere(d)")
    q = check_unit_vector(q, "q", law.d)
    n = check_n(n)
    reps = check_int(reps, "reps")
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(check_int(seed, "seed", 0))
    if (beta is None) == (c is None):
        raise ValueError("beta/c: give exactly one of beta and c")
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

        g = tail.gamma if gamma is None else check_positive(gamma, "gamma")
        draws = CriticalLimit(g, check_positive(c, "c")).draw(reps, np.random.default_rng(seq), m)
        return SimulationResult(method, n, beta, c, reps, draws.max_weight, draws.n_eff, draws.entropy)
    if method == "fast":
        from .sampler import sample_top

        top = sample_top(law, n, beta, reps, np.random.default_rng(seq), m, q=q)
        return SimulationResult(method, n, beta, c, reps, top.max_weight, top.n_eff, top.entropy)
    return _brute(law, q, n, beta, c, reps, seq, progress)


def _brute(
    law: KeyLaw, q: np.ndarray, n: int, beta: float, c: float, reps: int, seq: np.random.SeedSequence, progress: bool
):
    from .attention import attention_stats

    if n * law.d * 8 > BRUTE_MAX_BYTES:
        raise ValueError(
            f"n: got {n:.3g}; brute force would hold {n * law.d * 8 / 2**30:.1f} GiB of keys "
            f"(limit {BRUTE_MAX_BYTES / 2**30:.0f} GiB): use --method fast"
        )
    stats = np.empty((reps, 3))
    children = seq.spawn(reps)
    for i in track(range(reps), reps, f"brute n={n:.3g}", enabled=progress):
        keys = law.sample(n, np.random.default_rng(children[i]))
        s = attention_stats(q, keys, beta)
        stats[i] = (s.max_weight, s.n_eff, s.entropy)
    return SimulationResult("brute", n, beta, c, reps, stats[:, 0], stats[:, 1], stats[:, 2])
