r"""Limit laws and asymptotic formulas of the attention regimes.

Implements docs/theory.md section 3 (with the Poisson representation of
section 2):

- the critical limit law of the ordered weights, :class:`CriticalLimit`,
  sampled with *truncation by expected remainder*;
- the global-average mean :func:`mean_resultant_length` (von Mises-Fisher
  mean resultant length :math:`A_d`, no Bessel underflow);
- the subcritical formulas: :func:`subcritical_mean_asymptotic`,
  :func:`tangential_variance_exact` (quadrature),
  :func:`tangential_variance_asymptotic`, :func:`n_eff_subcritical`;
- the supercritical approach of the top weight:
  :func:`supercritical_constant`, :func:`supercritical_one_minus_w1`.

Everything is float64 and computed in log space where magnitudes demand it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import integrate, special

from ._numerics.arrays import as_float_array, as_output
from ._numerics.special import bessel_ratio_cf, log_upper_gamma_scaled
from ._validate import (
    InputTypeError,
    InputError,
    RngLike,
    as_generator,
    check_beta,
    check_dimension,
    check_int,
    check_matrix,
    check_n,
    check_positive,
)
from .laws.sphere import uniform_directions

__all__ = [
    "CriticalLimit",
    "LimitDraws",
    "LimitOutput",
    "mean_resultant_length",
    "n_eff_subcritical",
    "subcritical_mean_asymptotic",
    "supercritical_constant",
    "supercritical_one_minus_w1",
    "tangential_variance_asymptotic",
    "tangential_variance_exact",
]

#: Largest dimension accepted by :func:`mean_resultant_length` (its large-beta
#: Hankel series needs ``d**2 / beta`` small at ``beta = 5e8``).
MAX_D_BESSEL = 32768

#: Bounds on the default number of Poisson points (:meth:`CriticalLimit.default_m`).
DEFAULT_M_MIN = 16
DEFAULT_M_MAX = 2**16

#: Pilot used by :meth:`CriticalLimit.default_m`: fixed seed, so the answer is deterministic.
_PILOT_DRAWS = 256
_PILOT_SEED = 20240531

#: Elements of one working block (rows x points) when sampling.
_CHUNK_ELEMENTS = 2**20


# ---------------------------------------------------------------------------
# Argument helpers (array versions of the scalar checks in _validate)
# ---------------------------------------------------------------------------


def _beta_array(beta: Any, name: str = "beta", positive: bool = False) -> np.ndarray:
    """``beta`` as a float array; the first bad entry is reported by the scalar check."""
    try:
        arr = as_float_array(beta)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name}: got {beta!r} ({type(beta).__name__}); expected a real number or array") from None
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else (arr < 0))
    if np.any(bad):
        first = arr[bad].flat[0]
        (check_positive if positive else check_beta)(float(first), name)
    return arr


# ---------------------------------------------------------------------------
# Critical limit law
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitDraws:
    r"""Draws of the critical limit law, truncated by expected remainder.

    Attributes
    ----------
    weights : ndarray, shape (size, m)
        Ordered top weights :math:`W_1 \ge \dots \ge W_m`.
    remainder : ndarray, shape (size,)
        Share of the mass carried by the Poisson points beyond the ``m``-th
        (their expected contribution given :math:`\Gamma_m`), so each row of
        ``weights`` sums to ``1 - remainder``.
    max_weight : ndarray, shape (size,)
        :math:`W_1`.
    n_eff : ndarray, shape (size,)
        :math:`1/\sum_k W_k^2`, the points beyond ``m`` entering by the expected
        value of their sum of squares.
    entropy : ndarray, shape (size,)
        :math:`-\sum_k W_k \log W_k`, the points beyond ``m`` entering by the
        expected value of their terms.
    remainder_sd : ndarray, shape (size,), optional
        Conditional standard deviation of the remainder's mass given the first
        ``m`` points (Campbell: :math:`\sqrt{\int_g^\infty e^{-2c x^{1/\gamma}}dx}`),
        over the normalization; entering by its expectation biases the statistics
        by about ``remainder_sd**2`` (relative), see :meth:`CriticalLimit.default_m`.
    """

    weights: np.ndarray
    remainder: np.ndarray
    max_weight: np.ndarray
    n_eff: np.ndarray
    entropy: np.ndarray
    remainder_sd: np.ndarray | None = None


@dataclass(frozen=True)
class _Core:
    """Intermediate arrays of :func:`_limit_core` (rows of one block)."""

    e: np.ndarray  # e^{-l_k}, shape (rows, m)
    ell: np.ndarray  # l_k = z_k - z_1
    log_g: np.ndarray  # log Gamma_k
    z_m: np.ndarray  # c Gamma_m^{1/gamma}
    ell_m: np.ndarray  # l_m
    finite: np.ndarray  # rows whose remainder terms are finite
    log_rem: np.ndarray  # log of the expected remainder mass (units e^{-l})
    log_z: np.ndarray  # log normalization
    stats: tuple[np.ndarray, ...]  # (w, remainder, w1, n_eff, entropy, remainder_sd)


def _limit_core(gamma: float, c: float, arrivals: np.ndarray) -> _Core:
    r"""Weights and statistics from arrival times ``arrivals`` (rows increasing, > 0).

    With :math:`z_k = c\,\Gamma_k^{1/\gamma}` and :math:`\ell_k = z_k - z_1 \ge 0`,
    the unnormalized weights are :math:`e^{-\ell_k}`; the points beyond
    :math:`\Gamma_m = g` add, in expectation (they form a unit-rate Poisson
    process on :math:`(g, \infty)`),

    .. math::
        e^{z_1}\int_g^\infty e^{-c x^{1/\gamma}}\,dx
        = e^{z_1}\,\gamma c^{-\gamma}\,\Gamma(\gamma, z_m)

    to the normalization, :math:`e^{2 z_1}\gamma (2c)^{-\gamma}\Gamma(\gamma, 2 z_m)` to the
    sum of squares and :math:`e^{z_1}\gamma c^{-\gamma}\Gamma(\gamma+1, z_m)` to
    :math:`\sum_k e^{-z_k} z_k` (entropy).  All in log space: no overflow for
    any ``gamma``, ``c``.
    """
    big = 1e300  # stands for overflow: exp(-big) = 0 and 0 * big = 0 (no NaN)
    g = np.maximum(arrivals, 1e-300)
    log_c = math.log(c)
    lg = np.log(g)
    with np.errstate(over="ignore"):
        if gamma == 1.0:
            z1 = c * g[:, 0]
            ell = c * (g - g[:, :1])
        else:
            # l_k = z_k - z_1 = z_1 expm1((log G_k - log G_1) / gamma): no cancellation
            z1 = np.exp(log_c + lg[:, 0] / gamma)
            ell = np.minimum(z1, big)[:, None] * np.expm1((lg - lg[:, :1]) / gamma)
        ell = np.minimum(ell, big)
        e = np.exp(-ell)
        ell_m = ell[:, -1]
        z_m = np.exp(log_c + lg[:, -1] / gamma)
    finite = (z_m < big) & (ell_m < big)
    zf = z_m[finite]

    log_rem = np.full(z_m.shape, -np.inf)
    log_sq = np.full(z_m.shape, -np.inf)
    mean_minus_z1 = np.zeros(z_m.shape)
    if zf.size:
        lgs = log_upper_gamma_scaled(gamma, zf)
        log_rem[finite] = math.log(gamma) - gamma * log_c + lgs - ell_m[finite]
        log_sq[finite] = (
            math.log(gamma) - gamma * math.log(2.0 * c) + log_upper_gamma_scaled(gamma, 2.0 * zf) - 2.0 * ell_m[finite]
        )
        # E[z | z > z_m] - z_1 = gamma + z_m^gamma e^{-z_m} / Gamma(gamma, z_m) - z_m + l_m
        with np.errstate(divide="ignore"):
            hazard = np.exp(gamma * np.log(zf) - lgs)
        mean_minus_z1[finite] = gamma + hazard - zf + ell_m[finite]

    log_z = np.logaddexp(np.log(np.sum(e, axis=1)), log_rem)
    inv_z = np.exp(-log_z)
    w = e * inv_z[:, None]
    remainder = np.exp(log_rem - log_z)
    rem_sq = np.exp(log_sq - 2.0 * log_z)
    with np.errstate(divide="ignore"):  # gamma -> inf: the mass spreads over ever more points, n_eff = inf
        n_eff = 1.0 / (np.einsum("ij,ij->i", e, e) * inv_z**2 + rem_sq)
    # -sum w log w over the top m: sum_k w_k (l_k + log Z); the remainder likewise in expectation
    top_entropy = np.einsum("ij,ij->i", e, ell) * inv_z + (1.0 - remainder) * log_z
    entropy = top_entropy + remainder * (mean_minus_z1 + log_z)
    stats = (w, remainder, w[:, 0].copy(), n_eff, entropy, np.sqrt(rem_sq))
    return _Core(e, ell, lg, z_m, ell_m, finite, log_rem, log_z, stats)


def _limit_kernel(gamma: float, c: float, arrivals: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(w, remainder, w1, n_eff, entropy, remainder_sd)`` of :func:`_limit_core`."""
    return _limit_core(gamma, c, arrivals).stats


def _arrivals(rng: np.random.Generator, rows: int, m: int) -> np.ndarray:
    """Arrival times of a unit-rate Poisson process: cumulative sums of exponentials."""
    return np.cumsum(rng.standard_exponential((rows, m)), axis=1)


@functools.lru_cache(maxsize=512)
def _default_m(gamma: float, c: float, tol: float) -> int:
    """Pilot estimate of the smallest power of two whose remainder has relative variance < tol."""
    rng = np.random.default_rng(_PILOT_SEED)
    m = DEFAULT_M_MIN
    arrivals = _arrivals(rng, _PILOT_DRAWS, m)
    while True:
        rel_var = _limit_kernel(gamma, c, arrivals)[5] ** 2
        upper = rel_var.mean() + 2.0 * rel_var.std(ddof=1) / math.sqrt(_PILOT_DRAWS)
        if upper < tol or m >= DEFAULT_M_MAX:
            return m
        more = arrivals[:, -1:] + _arrivals(rng, _PILOT_DRAWS, m)
        arrivals = np.concatenate([arrivals, more], axis=1)
        m *= 2


@dataclass(frozen=True)
class LimitOutput:
    r"""Draws of the critical limit law of the output (docs/theory.md section 3).

    Scaled coordinates in the ``dim``-dimensional tangent space at the query:
    a key at gap :math:`g = (\Gamma/(\kappa n))^{1/\gamma}` below the score
    endpoint sits at tangential position :math:`(\kappa n)^{-1/(2\gamma)}\sqrt2\,\Gamma^{1/(2\gamma)}\theta`.

    Attributes
    ----------
    draws : LimitDraws
        The weights and their statistics.
    tangential : ndarray, shape (size, dim)
        :math:`T = \sqrt2\sum_k W_k\Gamma_k^{1/(2\gamma)}\theta_k`, the limit of
        :math:`(\kappa n)^{1/(2\gamma)}P_{tan}y`.
    radial : ndarray, shape (size,)
        :math:`\sum_k W_k\Gamma_k^{1/\gamma}`, the limit of :math:`(\kappa n)^{1/\gamma}(1 - \langle y, q\rangle)`.
    nearest : ndarray, shape (size, dim)
        :math:`\sqrt2\,\Gamma_1^{1/(2\gamma)}\theta_1`, the nearest key's scaled tangential position.
    tangential_remainder_sd : ndarray, shape (size,)
        Standard deviation per coordinate of the points beyond the ``m``-th in
        ``tangential`` (they enter as a centred Gaussian, see :meth:`CriticalLimit.draw_output`).
    """

    draws: LimitDraws
    tangential: np.ndarray
    radial: np.ndarray
    nearest: np.ndarray
    tangential_remainder_sd: np.ndarray

    @property
    def tangential_norm(self) -> np.ndarray:
        r""":math:`|T|`, the limit of the scaled tangential norm :math:`(\kappa n)^{1/(2\gamma)}|P_{tan}y|`."""
        return np.linalg.norm(self.tangential, axis=1)

    @property
    def nearest_distance(self) -> np.ndarray:
        r""":math:`|T - \sqrt2\Gamma_1^{1/(2\gamma)}\theta_1|`, the limit of :math:`(\kappa n)^{1/(2\gamma)}|P_{tan}(y - K_{(1)})|`."""
        return np.linalg.norm(self.tangential - self.nearest, axis=1)


def _output_kernel(
    gamma: float, c: float, arrivals: np.ndarray, directions: np.ndarray, noise: np.ndarray | None
) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Weights, tangential and radial output from arrivals, unit directions and standard normal noise.

    The points beyond :math:`\Gamma_m = g` (a Poisson process on :math:`(g,\infty)`)
    contribute to the unnormalized tangential sum a centred vector with covariance
    (Campbell) :math:`\frac{2}{dim}\,e^{2z_1}\int_g^\infty x^{1/\gamma}e^{-2cx^{1/\gamma}}dx\;I
    = \frac{2}{dim}\,e^{2z_1}\gamma(2c)^{-\gamma-1}\Gamma(\gamma+1, 2z_m)\,I`, drawn as a
    Gaussian (``noise``), and to the radial sum their expected value
    :math:`e^{z_1}\gamma c^{-\gamma-1}\Gamma(\gamma+1, z_m)`.
    """
    core = _limit_core(gamma, c, arrivals)
    dim = directions.shape[2]
    inv_z = np.exp(-core.log_z)
    with np.errstate(over="ignore", under="ignore"):
        amp = math.sqrt(2.0) * np.exp(core.log_g / (2.0 * gamma) - core.ell)
        rad_top = np.exp(core.log_g / gamma - core.ell).sum(axis=1)
    top = np.einsum("rk,rkd->rd", amp, directions)
    log_var = np.full(core.z_m.shape, -np.inf)
    log_rad = np.full(core.z_m.shape, -np.inf)
    f = core.finite
    if np.any(f):
        zf, ellf = core.z_m[f], core.ell_m[f]
        log_var[f] = (
            math.log(2.0 / dim)
            + math.log(gamma)
            - (gamma + 1.0) * math.log(2.0 * c)
            + log_upper_gamma_scaled(gamma + 1.0, 2.0 * zf)
            - 2.0 * ellf
        )
        log_rad[f] = math.log(gamma) - (gamma + 1.0) * math.log(c) + log_upper_gamma_scaled(gamma + 1.0, zf) - ellf
    # remainder terms over the normalization in log space: both can overflow alone (large gamma)
    sd_share = np.exp(0.5 * log_var - core.log_z)
    tangential = top * inv_z[:, None]
    if noise is not None:
        tangential = tangential + sd_share[:, None] * noise
    radial = rad_top * inv_z + np.exp(log_rad - core.log_z)
    with np.errstate(over="ignore"):
        nearest = math.sqrt(2.0) * np.exp(core.log_g[:, 0] / (2.0 * gamma))[:, None] * directions[:, 0, :]
    return core.stats, tangential, radial, nearest, sd_share


@dataclass(frozen=True)
class CriticalLimit:
    r"""Critical limit law of the ordered attention weights (docs/theory.md section 3).

    With :math:`\Gamma_1 < \Gamma_2 < \dots` the arrival times of a unit-rate
    Poisson process (section 2),

    .. math::
        W_k = \frac{e^{-c\,\Gamma_k^{1/\gamma}}}{\sum_j e^{-c\,\Gamma_j^{1/\gamma}}}.

    **Truncation by expected remainder.**  Only the first ``m`` points are
    drawn.  Given :math:`\Gamma_m = g` the later points form a unit-rate
    Poisson process on :math:`(g, \infty)`, so they enter the normalization by
    their exact expected contribution

    .. math::
        \int_g^\infty e^{-c x^{1/\gamma}}\,dx
        = \gamma\,c^{-\gamma}\,\Gamma\!\left(\gamma,\; c\,g^{1/\gamma}\right)

    (upper incomplete gamma function, unregularized, in log space), and
    likewise the sum of squares (:math:`\gamma (2c)^{-\gamma}\Gamma(\gamma, 2c g^{1/\gamma})`)
    and the entropy terms (via :math:`\Gamma(\gamma+1, c g^{1/\gamma})`).  The
    share of mass they carry is reported as ``remainder``.

    Parameters
    ----------
    gamma : float
        Tail exponent :math:`\gamma > 0` (uniform keys on :math:`S^{d-1}`: :math:`(d-1)/2`).
    c : float
        :math:`c = \beta/\beta^*(n) > 0`.

    Examples
    --------
    >>> law = CriticalLimit(1.0, 2.0)
    >>> w = law.sample(3, rng=0, m=32)
    >>> w.shape
    (3, 32)
    >>> bool(np.all(np.diff(w, axis=1) <= 0))
    True
    >>> draws = law.draw(2000, rng=1)
    >>> bool(np.allclose(draws.weights.sum(axis=1) + draws.remainder, 1.0))
    True
    >>> round(float(draws.max_weight.mean()), 2)  # reference 0.7299
    0.73
    """

    gamma: float
    c: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "gamma", check_positive(self.gamma, "gamma"))
        object.__setattr__(self, "c", check_positive(self.c, "c"))

    def default_m(self, tol: float = 1e-4) -> int:
        r"""Smallest power of two ``m`` whose remainder's relative variance is below ``tol``.

        Given the first ``m`` points the later ones enter by their exact
        conditional expectation, so each statistic :math:`h(Z)` of the
        normalization :math:`Z = S_m + R` is unbiased to first order in the
        remainder's fluctuation :math:`R - E[R \mid \Gamma_m]`; what is left is
        second order, of relative size :math:`\mathrm{Var}(R \mid \Gamma_m)/Z^2`
        (Campbell: :math:`\mathrm{Var}(R\mid\Gamma_m) = \int_{\Gamma_m}^\infty e^{-2c x^{1/\gamma}}dx`,
        ``remainder_sd**2`` of :meth:`draw`).  That, not the remainder's share of
        the mass (which may stay large: for large ``gamma`` the mass spreads over
        ever more points with a vanishing relative fluctuation), is what ``tol``
        bounds.  Its mean is estimated from a pilot of 256 draws with a fixed
        seed (so the answer is deterministic), plus two standard errors; ``m``
        runs over ``16, 32, ...`` and is capped at ``2**16``.  Results are
        cached (docs/theory.md section 3).

        Examples
        --------
        >>> CriticalLimit(1.0, 2.0).default_m()
        16
        >>> CriticalLimit(3.0, 0.5).default_m()   # remainder share ~1e-2, relative variance < 1e-4
        512
        """
        tol = check_positive(tol, "tol")
        if tol >= 1.0:
            raise InputError(f"tol: got {tol!r}; expected a number in (0, 1)")
        return _default_m(self.gamma, self.c, tol)

    def _m(self, m: Any) -> int:
        return self.default_m() if m is None else check_int(m, "m", minimum=1)

    def from_arrivals(self, arrivals: Any) -> LimitDraws:
        r"""Weights and statistics from given Poisson arrival times.

        Parameters
        ----------
        arrivals : array_like, shape (size, m)
            Rows of increasing positive arrival times :math:`\Gamma_1 < \dots < \Gamma_m`.
            Sharing them between calls couples draws (common random numbers).

        Returns
        -------
        LimitDraws
            As :meth:`draw`, truncated after the ``m`` given points by expected remainder.

        Examples
        --------
        >>> law = CriticalLimit(1.0, 1.0)
        >>> d = law.from_arrivals([[1.0, 2.0]])
        >>> round(float(d.remainder[0]), 6)  # e^{-2} / (e^{-1} + e^{-2} + e^{-2})
        0.211942
        """
        arr = check_matrix(arrivals, "arrivals")
        bad = np.any(arr <= 0, axis=1) | np.any(np.diff(arr, axis=1) < 0, axis=1)
        if np.any(bad):
            row = int(np.argmax(bad))
            raise InputError(
                f"arrivals: got row {row} = {arr[row, :4]}...; expected positive times, nondecreasing along each row"
            )
        return LimitDraws(*_limit_kernel(self.gamma, self.c, arr))

    def draw(self, size: int, rng: RngLike = None, m: int | None = None, keep: int | None = None) -> LimitDraws:
        r"""Draw ``size`` independent copies of the top-``m`` weights and their statistics.

        Works in blocks of about :data:`_CHUNK_ELEMENTS` arrival times, so the
        working memory does not grow with ``size``; only the per-draw
        statistics and the ``keep`` leading weights of each draw are kept.  The
        arrival times are read from ``rng`` row after row, so the result does
        not depend on the block size.

        Parameters
        ----------
        size : int
            Number of draws, >= 1.
        rng : Generator, int, SeedSequence or None
            Randomness (see ``_validate.as_generator``).
        m : int, optional
            Poisson points drawn per copy; default :meth:`default_m`.
        keep : int, optional
            Leading weights kept in ``weights`` (default all ``m``; 0 keeps none,
            for statistics of many draws in bounded memory).

        Returns
        -------
        LimitDraws
            ``weights`` (size, keep), ``remainder``, ``max_weight``, ``n_eff``,
            ``entropy``, ``remainder_sd`` (size,), with truncation by expected remainder.

        Examples
        --------
        >>> d = CriticalLimit(2.0, 0.5).draw(4, rng=0, m=64)
        >>> d.weights.shape, d.n_eff.shape
        ((4, 64), (4,))
        >>> CriticalLimit(2.0, 0.5).draw(4, rng=0, m=64, keep=1).weights.shape
        (4, 1)
        """
        size = check_int(size, "size", minimum=1)
        m = self._m(m)
        keep = m if keep is None else check_int(keep, "keep", minimum=0, maximum=m)
        gen = as_generator(rng)
        rows = max(1, _CHUNK_ELEMENTS // m)
        parts = []
        for start in range(0, size, rows):
            k = min(rows, size - start)
            w, *rest = _limit_kernel(self.gamma, self.c, _arrivals(gen, k, m))
            parts.append((w[:, :keep].copy(), *rest))
        return LimitDraws(*(np.concatenate(x, axis=0) for x in zip(*parts)))

    def sample(self, size: int, rng: RngLike = None, m: int | None = None) -> np.ndarray:
        r"""Ordered top-``m`` weights, shape ``(size, m)`` (docs/theory.md section 3).

        Rows sum to ``1 - remainder`` (truncation by expected remainder, see
        :meth:`draw`).

        Examples
        --------
        >>> CriticalLimit(1.0, 0.5).sample(2, rng=0, m=8).shape
        (2, 8)
        """
        return self.draw(size, rng, m).weights

    def _dim(self, dim: Any) -> int:
        if dim is not None:
            return check_int(dim, "dim", minimum=1)
        twice = 2.0 * self.gamma
        if abs(twice - round(twice)) > 1e-9 or round(twice) < 1:
            raise InputError(
                f"dim: got None with gamma = {self.gamma!r}; give the tangent dimension (d - 1 for keys on S^(d-1))"
            )
        return int(round(twice))

    def output_from_arrivals(self, arrivals: Any, directions: Any, noise: Any = None) -> LimitOutput:
        r"""Output from given arrivals, tangent directions and remainder noise (common random numbers).

        Parameters
        ----------
        arrivals : array_like, shape (size, m)
            Increasing positive Poisson arrival times.
        directions : array_like, shape (size, m, dim)
            Unit vectors :math:`\theta_k` of the tangent space.
        noise : array_like, shape (size, dim), optional
            Standard normal vectors for the remainder's tangential term; ``None``
            leaves it at its mean 0 (then :math:`E|T|^2` lacks the remainder's share).

        Returns
        -------
        LimitOutput

        Examples
        --------
        >>> law = CriticalLimit(1.0, 1.0)
        >>> out = law.output_from_arrivals([[1.0, 2.0]], [[[1.0, 0.0], [0.0, 1.0]]])
        >>> w = out.draws.weights[0]                       # e^{-1}, e^{-2} over Z
        >>> bool(np.allclose(out.tangential[0], np.sqrt(2) * w * np.sqrt([1.0, 2.0])))
        True
        """
        arr = self.from_arrivals(arrivals)  # validates the arrivals
        del arr
        a = np.asarray(arrivals, dtype=np.float64)
        dirs = np.asarray(directions, dtype=np.float64)
        if dirs.ndim != 3 or dirs.shape[:2] != a.shape:
            raise InputError(f"directions: got shape {dirs.shape}; expected {a.shape + ('dim',)}")
        if not np.all(np.isfinite(dirs)) or not np.allclose(np.linalg.norm(dirs, axis=2), 1.0, atol=1e-6):
            raise InputError("directions: expected finite unit vectors along the last axis")
        z = None
        if noise is not None:
            z = check_matrix(noise, "noise", cols=dirs.shape[2])
            if z.shape[0] != a.shape[0]:
                raise InputError(f"noise: got shape {z.shape}; expected ({a.shape[0]}, {dirs.shape[2]})")
        stats, tan, rad, near, sd = _output_kernel(self.gamma, self.c, a, dirs, z)
        return LimitOutput(LimitDraws(*stats), tan, rad, near, sd)

    def draw_output(
        self, size: int, rng: RngLike = None, m: int | None = None, dim: int | None = None, keep: int | None = None
    ) -> LimitOutput:
        r"""Draw the critical limit law of the output (docs/theory.md section 3).

        .. math::
            (\kappa n)^{1/(2\gamma)}P_{tan}\,y \to T = \sqrt2\sum_k W_k\Gamma_k^{1/(2\gamma)}\theta_k,
            \qquad (\kappa n)^{1/\gamma}(1 - \langle y, q\rangle) \to \sum_k W_k\Gamma_k^{1/\gamma},

        :math:`\theta_k` i.i.d. uniform on the unit sphere of the ``dim``-dimensional
        tangent space.  Truncation after ``m`` points: the mass and the radial sum
        of the later points enter by their exact conditional expectation (as in
        :meth:`draw`); their tangential sum has mean 0, so its expectation alone
        would drop its variance from :math:`E|T|^2` (a bias of the size of the
        remainder share of :math:`E\sum W_k^2\Gamma_k^{1/\gamma}`).  It therefore
        enters as a centred Gaussian with its exact conditional covariance
        (Campbell's formula), :math:`\frac{2}{dim}e^{2z_1}\gamma(2c)^{-\gamma-1}\Gamma(\gamma+1, 2z_m)\,I`:
        :math:`E|T|^2` is then exact given the normalization, and the law is right
        whenever the remainder is a sum of many small terms (its Gaussian part)
        or negligible.  The remaining approximation is the normalization's
        fluctuation, as in :meth:`draw`.

        Parameters
        ----------
        size : int
            Number of draws.
        rng : Generator, int, SeedSequence or None
        m : int, optional
            Poisson points per draw; default :meth:`default_m`.
        dim : int, optional
            Tangent dimension; default :math:`2\gamma` (uniform keys on :math:`S^{2\gamma}`).
        keep : int, optional
            Leading weights kept in ``draws.weights`` (default all ``m``), as in :meth:`draw`.

        Returns
        -------
        LimitOutput
            Blocks of about :data:`_CHUNK_ELEMENTS` numbers bound the working memory;
            arrival times come from ``rng`` itself, directions and remainder noise from
            two generators spawned from it, each read row after row, so the draws do
            not depend on the block size.

        Examples
        --------
        >>> out = CriticalLimit(1.0, 2.0).draw_output(20000, rng=0)
        >>> out.tangential.shape
        (20000, 2)
        >>> round(float(np.mean(out.tangential_norm ** 2)), 1)   # exact 1.3113
        1.3
        """
        size = check_int(size, "size", minimum=1)
        m = self._m(m)
        dim = self._dim(dim)
        keep = m if keep is None else check_int(keep, "keep", minimum=0, maximum=m)
        gen = as_generator(rng)
        # three streams, each read row after row: the draws do not depend on the block size
        dir_gen, noise_gen = gen.spawn(2)
        rows = max(1, _CHUNK_ELEMENTS // (m * (dim + 1)))
        parts = []
        for start in range(0, size, rows):
            k = min(rows, size - start)
            arrivals = _arrivals(gen, k, m)
            dirs = uniform_directions(k * m, dim, dir_gen).reshape(k, m, dim)
            noise = noise_gen.standard_normal((k, dim))
            (w, *rest), *out = _output_kernel(self.gamma, self.c, arrivals, dirs, noise)
            parts.append(((w[:, :keep].copy(), *rest), *out))
        stats = tuple(np.concatenate(x, axis=0) for x in zip(*(p[0] for p in parts)))
        tan, rad, near, sd = (np.concatenate(x, axis=0) for x in zip(*(p[1:] for p in parts)))
        return LimitOutput(LimitDraws(*stats), tan, rad, near, sd)


# ---------------------------------------------------------------------------
# Global average: von Mises-Fisher mean resultant length
# ---------------------------------------------------------------------------


def _bessel_ratio_hankel(nu: float, x: np.ndarray) -> np.ndarray:
    r"""Large-``x`` (Hankel) series: :math:`e^{-x}I_\nu(x)\sqrt{2\pi x} \sim \sum_k (-1)^k a_k(\nu)/x^k`,
    :math:`a_k(\nu) = \prod_{j\le k}(4\nu^2 - (2j-1)^2)/(k!\,8^k)`; the ratio of the
    series for :math:`\nu+1` and :math:`\nu`.  Used for :math:`x > 5\times10^8`,
    :math:`4\nu^2/(8x) \le 0.27`, where it converges to machine precision."""

    def series(mu: float) -> np.ndarray:
        total = np.ones_like(x)
        term = np.ones_like(x)
        for k in range(1, 200):
            term = -term * (mu - (2 * k - 1) ** 2) / (8.0 * k * x)
            total = total + term
            if np.all(np.abs(term) < 1e-18 * np.abs(total)):
                break
        return total

    return series(4.0 * (nu + 1.0) ** 2) / series(4.0 * nu**2)


def mean_resultant_length(d: int, beta: Any) -> float | np.ndarray:
    r"""Von Mises-Fisher mean resultant length :math:`A_d(\beta) = I_{d/2}(\beta)/I_{d/2-1}(\beta)`.

    With uniform keys on :math:`S^{d-1}` and ``n -> inf`` at fixed ``beta``, the
    output tends to :math:`A_d(\beta)\,q` (docs/theory.md section 3).
    Evaluated without Bessel underflow: for ``beta < 1e-5`` the series
    :math:`\beta/d\,(1 - \beta^2/(d(d+2)))`; up to ``beta = 500``, or wherever the
    exponentially scaled Bessel function underflows, the Gauss continued
    fraction; up to ``5e8`` the ratio of ``scipy.special.ive``; beyond, the
    Hankel series.  Relative accuracy about 1e-13 for ``2 <= d <= 1024`` and
    ``0 <= beta <= 1e12``; :math:`A_d(0) = 0`.

    Parameters
    ----------
    d : int
        Ambient dimension, ``2 <= d <= 32768``.
    beta : float or array_like
        Inverse temperature(s), finite and >= 0.

    Returns
    -------
    float or ndarray
        :math:`A_d(\beta)` in :math:`[0, 1)`, shaped like ``beta``.

    Examples
    --------
    >>> round(mean_resultant_length(3, 2.0), 12)  # coth(2) - 1/2
    0.537314720728
    >>> a = mean_resultant_length(1024, [0.0, 1e12])
    >>> float(a[0]), round(float(1.0 - a[1]) * 1e10, 3)  # 1 - A ~ (d-1)/(2 beta)
    (0.0, 5.115)
    """
    d = check_int(d, "d", minimum=2, maximum=MAX_D_BESSEL)
    x = _beta_array(beta)
    x = np.atleast_1d(x).astype(np.float64)
    nu = d / 2.0 - 1.0
    out = np.zeros_like(x)

    tiny = (x > 0) & (x < 1e-5)
    out[tiny] = x[tiny] / d * (1.0 - x[tiny] ** 2 / (d * (d + 2.0)))

    mid = (x > 500.0) & (x <= 5e8)
    cf = (x >= 1e-5) & (x <= 500.0)
    if np.any(mid):
        xm = x[mid]
        with np.errstate(all="ignore"):
            num, den = special.ive(nu + 1.0, xm), special.ive(nu, xm)
            ratio = num / den
        good = np.isfinite(ratio) & (num > 1e-280) & (den > 1e-280)
        vals = np.where(good, ratio, 0.0)
        out[mid] = vals
        cf_extra = np.zeros_like(mid)
        cf_extra[np.flatnonzero(mid)[~good]] = True
        cf |= cf_extra
    if np.any(cf):
        out[cf] = bessel_ratio_cf(nu, x[cf])
    big = x > 5e8
    if np.any(big):
        out[big] = _bessel_ratio_hankel(nu, x[big])
    return as_output(out.reshape(np.shape(beta)))


def subcritical_mean_asymptotic(d: int, beta: Any) -> float | np.ndarray:
    r"""Large-``beta`` mean length :math:`A_d(\beta) \approx 1 - (d-1)/(2\beta)`.

    Subcritical mean of the output along ``q`` to order :math:`\beta^{-1}`
    (docs/theory.md section 3); compare :func:`mean_resultant_length`.

    Parameters
    ----------
    d : int
        Ambient dimension, >= 2.
    beta : float or array_like
        Inverse temperature(s), finite and > 0.

    Examples
    --------
    >>> subcritical_mean_asymptotic(3, 100.0)
    0.99
    """
    d = check_dimension(d)
    b = _beta_array(beta, positive=True)
    return as_output(1.0 - (d - 1.0) / (2.0 * b))


# ---------------------------------------------------------------------------
# Subcritical fluctuations: quadrature over t = <q, K>
# ---------------------------------------------------------------------------


def _log_sine_laplace(p: float, lam: float) -> float:
    r""":math:`\log \int_0^\pi \sin^p\theta\; e^{-\lambda \sin^2(\theta/2)}\,d\theta` by quadrature.

    With :math:`t = \cos\theta`, :math:`\sin^2(\theta/2) = (1-t)/2 = u`: this is the
    Laplace transform of the :math:`\mathrm{Beta}` law of ``u`` up to constants,
    with no endpoint singularity for :math:`p \ge 0`.  The integrand is
    factored by its value at the peak :math:`\theta^*` (closed form:
    :math:`1 - \cos\theta^* = 2p/(\lambda + p + \sqrt{p^2+\lambda^2})`) and
    integrated by adaptive Gauss-Kronrod with breakpoints at multiples of the
    peak width, so nothing overflows or underflows for ``lam`` up to 4e12.
    """
    if p > 0:
        one_minus_cos = 2.0 * p / (lam + p + math.hypot(p, lam))
        theta_star = 2.0 * math.asin(math.sqrt(one_minus_cos / 2.0))
        curv = p / math.sin(theta_star) ** 2 + 0.5 * lam * math.cos(theta_star)
    else:
        theta_star = 0.0
        curv = 0.5 * lam
    width = 1.0 / math.sqrt(max(curv, 1e-300))

    def psi(theta: float) -> float:
        s = math.sin(theta)
        log_sin = math.log(s) if s > 0 else -math.inf
        return (p * log_sin if p > 0 else 0.0) - lam * math.sin(theta / 2.0) ** 2

    peak = psi(theta_star)

    def f(theta: float) -> float:
        return math.exp(psi(theta) - peak)

    pts = sorted({min(max(theta_star + k * width, 0.0), math.pi) for k in (-20, -5, -1, 0, 1, 5, 20, 60)} - {0.0, math.pi})
    val, _ = integrate.quad(f, 0.0, math.pi, points=pts or None, epsabs=0.0, epsrel=1e-13, limit=500)
    return peak + math.log(val)


def _log_tangential_variance_exact(d: int, beta: float) -> float:
    r""":math:`\log(n\,\mathrm{Var}_{tan})`: with :math:`K_p(\lambda)` from :func:`_log_sine_laplace`,
    :math:`n\,\mathrm{Var}_{tan} = K_d(4\beta)\,K_{d-2}(0) / ((d-1) K_{d-2}(2\beta)^2)`."""
    p = d - 2.0
    log_norm = special.betaln(0.5, (d - 1) / 2.0)  # K_{d-2}(0)
    return (
        _log_sine_laplace(p + 2.0, 4.0 * beta) + log_norm - math.log(d - 1.0) - 2.0 * _log_sine_laplace(p, 2.0 * beta)
    )


def tangential_variance_exact(d: int, beta: Any) -> float | np.ndarray:
    r"""Subcritical tangential variance per direction, exact (delta method), times ``n``.

    .. math::
        n\,\mathrm{Var}_{tan} = \frac{E[e^{2\beta t}(1-t^2)]}{(d-1)\,E[e^{\beta t}]^2},
        \qquad t = \langle q, K\rangle,\ K \sim \mathrm{Unif}(S^{d-1}),

    docs/theory.md section 3.  With :math:`t = \cos\theta` (density
    :math:`\propto \sin^{d-2}\theta`) and :math:`e^{\beta t} = e^{\beta} e^{-2\beta\sin^2(\theta/2)}`
    the factors :math:`e^{\beta}` cancel; the remaining integrals are done by
    quadrature in log space.  Values above the float64 range (e.g. ``d = 64``,
    ``beta = 1e12``, where a Gaussian law would need ``n > 1e308``) are ``inf``.

    Parameters
    ----------
    d : int
        Ambient dimension, >= 2.
    beta : float or array_like
        Inverse temperature(s), finite and >= 0.

    Returns
    -------
    float or ndarray
        :math:`n\,\mathrm{Var}_{tan}`; equals :math:`1/d` at ``beta = 0``.

    Examples
    --------
    >>> round(tangential_variance_exact(4, 0.0), 12)
    0.25
    >>> round(tangential_variance_exact(3, 1e4) / 0.5, 4)  # d=3: -> 1/2
    1.0
    """
    d = check_dimension(d)
    b = _beta_array(beta)
    flat = np.array([_log_tangential_variance_exact(d, float(x)) for x in np.atleast_1d(b).ravel()])
    with np.errstate(over="ignore"):
        out = np.exp(flat).reshape(b.shape)
    return as_output(out)


def tangential_variance_asymptotic(d: int, beta: Any, corrected: bool = True) -> float | np.ndarray:
    r"""Large-``beta`` expansion of :math:`n\,\mathrm{Var}_{tan}` (docs/theory.md section 3).

    .. math::
        n\,\mathrm{Var}_{tan} \approx \frac{B(a,a)\,\beta^{a-1}}{2\,\Gamma(a)}
        \left[1 + \frac{a(3a-5)}{4\beta}\right], \qquad a = \frac{d-1}{2},

    with the bracket when ``corrected`` (error :math:`O(\beta^{-2})`), the bare
    leading term otherwise (error :math:`O(\beta^{-1})`: at d=10, beta=30 the
    exact value is 1.38 times the bare term, and 1.05 times the corrected one).
    Log space; ``inf`` above the float64 range.

    Parameters
    ----------
    d : int
        Ambient dimension, >= 2.
    beta : float or array_like
        Inverse temperature(s), finite and > 0.
    corrected : bool
        Include the :math:`1/\beta` correction.

    Examples
    --------
    >>> round(tangential_variance_asymptotic(3, 100.0, corrected=False), 12)
    0.5
    >>> round(tangential_variance_asymptotic(3, 100.0), 12)  # 0.5 (1 - 1/200)
    0.4975
    """
    d = check_dimension(d)
    b = _beta_array(beta, positive=True)
    a = (d - 1) / 2.0
    log_lead = special.betaln(a, a) + (a - 1.0) * np.log(b) - math.log(2.0) - special.gammaln(a)
    with np.errstate(over="ignore"):
        lead = np.exp(log_lead)
    out = lead * (1.0 + a * (3.0 * a - 5.0) / (4.0 * b)) if corrected else lead
    return as_output(out)


def n_eff_subcritical(n: Any, d: int, beta: Any) -> float | np.ndarray:
    r"""Subcritical effective number of keys (docs/theory.md section 3).

    .. math::
        n_{\mathrm{eff}} \approx n\,\frac{2^{2a-1}\,\Gamma(a)\,\beta^{-a}}{B(1/2, a)},
        \qquad a = \frac{d-1}{2}

    (the large-``beta`` form of :math:`n\,E[e^{\beta t}]^2/E[e^{2\beta t}]`;
    d = 3: :math:`n/\beta`).  Log space.

    Parameters
    ----------
    n : int
        Context length, ``1 <= n <= 1e18``.
    d : int
        Ambient dimension, >= 2.
    beta : float or array_like
        Inverse temperature(s), finite and > 0.

    Examples
    --------
    >>> round(n_eff_subcritical(1000, 3, 10.0), 9)
    100.0
    """
    n = check_n(n)
    d = check_dimension(d)
    b = _beta_array(beta, positive=True)
    a = (d - 1) / 2.0
    log_val = (
        math.log(n) + (2.0 * a - 1.0) * math.log(2.0) + special.gammaln(a) - a * np.log(b) - special.betaln(0.5, a)
    )
    out = np.exp(log_val)
    return as_output(out)


# ---------------------------------------------------------------------------
# Supercritical approach of the top weight
# ---------------------------------------------------------------------------


def supercritical_constant(gamma: float) -> float:
    r"""Constant of :math:`1 - E W_1 \sim C_\gamma / c` as :math:`c \to \infty`.

    .. math::
        C_\gamma = \ln 2\;\gamma\;\Gamma(2 - 1/\gamma), \qquad \gamma > 1/2

    (docs/theory.md section 3).  It comes from near-ties of the two closest
    keys; for :math:`\gamma \le 1/2` the mean gap to the second key diverges
    and the approach is not of order ``1/c``.

    Examples
    --------
    >>> round(supercritical_constant(1.0), 12)  # ln 2
    0.69314718056
    """
    gamma = check_positive(gamma, "gamma")
    if gamma <= 0.5:
        raise InputError(f"gamma: got {gamma!r}; the supercritical constant needs gamma > 1/2")
    return math.log(2.0) * gamma * math.gamma(2.0 - 1.0 / gamma)


def supercritical_one_minus_w1(gamma: float, c: Any) -> float | np.ndarray:
    r"""Leading-order supercritical :math:`1 - E W_1 \approx C_\gamma / c` (docs/theory.md section 3).

    See :func:`supercritical_constant`; the relative error is :math:`O(1/c)`.

    Examples
    --------
    >>> round(supercritical_one_minus_w1(1.0, 100.0), 12)
    0.006931471806
    """
    const = supercritical_constant(gamma)
    cc = _beta_array(c, "c", positive=True)
    return as_output(const / cc)
