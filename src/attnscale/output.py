r"""The law of the attention output :math:`y = V\sum_i w_i K_i` in every regime.

Implements docs/theory.md section 3 for the output (the weights are in
:mod:`attnscale.limits`).  Uniform keys on :math:`S^{d-1}` unless said otherwise;
``values`` is the value matrix :math:`V` of shape ``(d_v, d)`` (identity when
``None``): every output law here is the key-space law pushed through :math:`V`,
so its mean is :math:`V\mu` and its covariance :math:`V\Sigma V^\top`.

- **Subcritical** (many keys share the mass): :func:`subcritical_moments` (the
  per-key constants by quadrature or asymptotics) and
  :func:`subcritical_output_law` (the joint Gaussian law of ``y``: radial and
  tangential parts, the :math:`O(1/n)` ratio bias of the mean, the effective
  sample size and the excess kurtosis that says when the Gaussian can be
  trusted); :func:`smooth_density_mean` (a general smooth key density:
  the bias :math:`\beta^{-1}\nabla_S\log\rho(q)`) and its exact von Mises-Fisher
  case :func:`vmf_output_mean`.
- **Critical** (``c`` fixed): the scaled tangential output
  :math:`T = (\kappa n)^{1/(2\gamma)} P_{tan} y` tends to
  :math:`\sqrt2\sum_k W_k\Gamma_k^{1/(2\gamma)}\theta_k`
  (sampled by :meth:`attnscale.limits.CriticalLimit.draw_output`);
  :func:`critical_tangential_second_moment` and :func:`critical_radial_mean`
  give :math:`E|T|^2` and :math:`E\sum_k W_k\Gamma_k^{1/\gamma}` exactly, by quadrature.
- **Supercritical** (``c -> inf``): ``y - K_(1)`` lives on the scale
  :func:`tangential_scale`; :func:`supercritical_distance_constant`,
  :func:`supercritical_far_probability` and :func:`supercritical_within_probability`
  give its size and the probability that the output is within a given distance of
  the closest key.
- **Crossover**: :func:`gaussian_end_second_moment`, :func:`gaussian_end_cdf`,
  :func:`nearest_end_second_moment`, :func:`nearest_end_cdf`: the two ends of the
  law of :math:`|T|` joined by the critical family.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import integrate, special

from ._numerics.quadrature import log_integral
from ._validate import (
    InputTypeError,
    InputError,
    RngLike,
    as_generator,
    check_beta,
    check_choice,
    check_dimension,
    check_int,
    check_matrix,
    check_n,
    check_positive,
    check_unit_vector,
    check_vector,
)
from .limits import mean_resultant_length, tangential_variance_asymptotic
from .output_ends import (
    gaussian_end_cdf,
    gaussian_end_second_moment,
    nearest_end_cdf,
    nearest_end_second_moment,
    supercritical_distance_constant,
    supercritical_far_probability,
    supercritical_within_probability,
)
from .tails import ScoreTail

__all__ = [
    "GaussianOutput",
    "SubcriticalMoments",
    "critical_radial_mean",
    "critical_tangential_second_moment",
    "gaussian_end_cdf",
    "gaussian_end_second_moment",
    "log_tangential_scale",
    "nearest_end_cdf",
    "nearest_end_second_moment",
    "scaled_tangential_norm",
    "smooth_density_mean",
    "subcritical_moments",
    "subcritical_output_law",
    "supercritical_distance_constant",
    "supercritical_far_probability",
    "supercritical_within_probability",
    "tangential_scale",
    "vmf_output_mean",
]

#: Methods of the subcritical constants.
METHODS = ("exact", "asymptotic")


def _check_tail(tail: Any) -> ScoreTail:
    if not isinstance(tail, ScoreTail):
        raise InputTypeError(f"tail: got {type(tail).__name__}; expected a ScoreTail (law.score_tail(q))")
    if tail.kind != "weibull":
        raise InputError(f"tail: got kind {tail.kind!r}; the output scales need a weibull tail")
    return tail


def log_tangential_scale(n: Any, tail: ScoreTail) -> float:
    r"""``log`` of :func:`tangential_scale`: :math:`-\log(\kappa n)/(2\gamma)`.

    Examples
    --------
    >>> round(log_tangential_scale(2e4, ScoreTail(1.0, 1.0, 0.5)), 12)   # -log(1e4)/2
    -4.605170185988
    """
    n = check_n(n)
    t = _check_tail(tail)
    return -(t.log_kappa + math.log(n)) / (2.0 * t.gamma)


def tangential_scale(n: Any, tail: ScoreTail) -> float:
    r"""Scale :math:`(\kappa n)^{-1/(2\gamma)}` of the tangential output near and above criticality.

    The nearest key sits at gap :math:`g_{(1)} \approx (\Gamma_1/(\kappa n))^{1/\gamma}`
    below the score endpoint, i.e. at tangential distance
    :math:`\sqrt{2 g_{(1)}} \approx \sqrt2\,\Gamma_1^{1/(2\gamma)}(\kappa n)^{-1/(2\gamma)}`
    from the query (docs/theory.md section 3): the critical tangential output and
    ``y - K_(1)`` in the supercritical regime both live on this scale.

    Parameters
    ----------
    n : int
        Context length, ``1 <= n <= 1e18``.
    tail : ScoreTail
        Weibull score tail seen from the query (``law.score_tail(q)``).

    Examples
    --------
    >>> round(tangential_scale(2e4, ScoreTail(1.0, 1.0, 0.5)), 12)   # uniform keys, d = 3
    0.01
    """
    return math.exp(log_tangential_scale(n, tail))


def scaled_tangential_norm(outputs: Any, q: Any, n: Any, tail: ScoreTail) -> np.ndarray:
    r"""Scaled tangential norms :math:`(\kappa n)^{1/(2\gamma)}\,|y - \langle y, q\rangle q|` of key-space outputs.

    Parameters
    ----------
    outputs : array_like, shape (size, d)
        Outputs :math:`\sum_i w_i K_i` (identity values), one per row.
    q : array_like, shape (d,)
        The unit query.
    n : int
        Context length.
    tail : ScoreTail
        Weibull tail seen from ``q``.

    Returns
    -------
    ndarray, shape (size,)
        docs/theory.md section 3.

    Examples
    --------
    >>> scaled_tangential_norm([[0.6, 0.0, 0.8]], [0, 0, 1.0], 2e4, ScoreTail(1.0, 1.0, 0.5))
    array([60.])
    """
    qv = check_unit_vector(q, "q")
    y = check_matrix(outputs, "outputs", cols=qv.size)
    tan = y - np.outer(y @ qv, qv)
    return np.linalg.norm(tan, axis=1) * math.exp(-log_tangential_scale(n, tail))


def _check_values(values: Any, d: int) -> np.ndarray:
    if values is None:
        return np.eye(d)
    return check_matrix(values, "values", cols=d)


# ---------------------------------------------------------------------------
# Subcritical: per-key moments of uniform keys by quadrature
# ---------------------------------------------------------------------------


def _log_moment(d: int, lam: float, log_factor: Callable[[np.ndarray], np.ndarray]) -> float:
    r""":math:`\log E[e^{-\lambda u} f(\theta)]` for :math:`K` uniform on :math:`S^{d-1}`.

    :math:`\theta` is the angle from ``q`` (density :math:`\sin^{d-2}\theta / B(1/2, a)`),
    :math:`u = \sin^2(\theta/2) = (1 - t)/2`; ``log_factor`` gives :math:`\log f \ge -\infty`.
    Log-space quadrature (:func:`attnscale._numerics.quadrature.log_integral`): no overflow or
    underflow for any ``lam`` up to 1e13.
    """
    a = (d - 1) / 2.0
    log_norm = float(special.betaln(0.5, a))

    def ell(theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.sin(0.5 * theta) ** 2
            base = special.xlogy(d - 2.0, np.sin(theta)) - lam * u - log_norm
            return base + log_factor(theta)

    return log_integral(ell, 0.0, math.pi)


def _u_power(k: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda th: special.xlogy(2.0 * k, np.sin(0.5 * th))


def _sin_power(p: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda th: special.xlogy(p, np.sin(th))


@dataclass(frozen=True)
class SubcriticalMoments:
    r"""Per-key constants of the subcritical output law, uniform keys (docs/theory.md section 3).

    With :math:`t = \langle q, K\rangle`, :math:`e = e^{\beta t}`, :math:`A = E[e\,t]/E[e]`
    and the delta method for :math:`y = \sum_i e_i K_i / \sum_i e_i` as :math:`n \to \infty`:

    Attributes
    ----------
    d : int
    beta : float
    method : str
        ``"exact"`` (quadrature) or ``"asymptotic"`` (large :math:`\beta`).
    radial_mean : float
        :math:`A = A_d(\beta)`, the :math:`n \to \infty` limit of :math:`E\langle y, q\rangle`.
    radial_bias : float
        :math:`n\,(E\langle y,q\rangle - A) \to -E[e^2 (t - A)]/E[e]^2` (ratio bias).
    radial_var : float
        :math:`n\,\mathrm{Var}\langle y,q\rangle \to E[e^2 (t-A)^2]/E[e]^2`.
    tangential_var : float
        :math:`n\,\mathrm{Var}_{tan} \to E[e^2(1-t^2)]/((d-1)E[e]^2)` per tangent direction.
    n_eff_ratio : float
        :math:`n_{\mathrm{eff}}/n \to E[e]^2/E[e^2]`.
    excess_kurtosis : float
        :math:`n` times the excess kurtosis of one tangential coordinate of ``y``
        (leading order :math:`1/n`); see :func:`subcritical_moments`.
    """

    d: int
    beta: float
    method: str
    radial_mean: float
    radial_bias: float
    radial_var: float
    tangential_var: float
    n_eff_ratio: float
    excess_kurtosis: float


def _exp(x: float) -> float:
    return math.inf if x > 709.0 else math.exp(x)


@functools.lru_cache(maxsize=1024)
def _exact_moments(d: int, beta: float) -> SubcriticalMoments:
    lam1, lam2, lam3, lam4 = 2.0 * beta, 4.0 * beta, 6.0 * beta, 8.0 * beta
    zero = lambda th: np.zeros_like(th)  # noqa: E731
    l1 = _log_moment(d, lam1, zero)  # log E e   (the factor e^{beta} is dropped everywhere)
    l2 = _log_moment(d, lam2, zero)  # log E e^2
    one_minus_a = 2.0 * math.exp(_log_moment(d, lam1, _u_power(1.0)) - l1)
    radial_mean = 1.0 - one_minus_a

    def dev_sq(th: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return 2.0 * np.log(np.abs(one_minus_a - 2.0 * np.sin(0.5 * th) ** 2))

    radial_var = _exp(_log_moment(d, lam2, dev_sq) - 2.0 * l1)
    log_e2 = l2 - 2.0 * l1  # log(n / n_eff)
    u_ratio = math.exp(_log_moment(d, lam2, _u_power(1.0)) - l2)  # E[e^2 u] / E[e^2]
    radial_bias = -_exp(log_e2) * (one_minus_a - 2.0 * u_ratio)
    log_sigma = _log_moment(d, lam2, _sin_power(2.0)) - 2.0 * l1 - math.log(d - 1.0)
    # excess kurtosis times n: (k4 - 12 sigma k3 + 12 sigma^2 s_eta) / sigma^2, term by term in
    # log space (each term is O(n / n_eff), their parts overflow long before they do)
    log_e4s4 = _log_moment(d, lam4, _sin_power(4.0)) - 4.0 * l1
    log_e3s2 = _log_moment(d, lam3, _sin_power(2.0)) - 3.0 * l1
    kurt = (
        3.0 * _exp(log_e4s4 - 2.0 * log_sigma) / ((d - 1.0) * (d + 1.0))
        - 12.0 * _exp(log_e3s2 - log_sigma) / (d - 1.0)
        + 12.0 * _exp(log_e2)
        - 3.0
    )
    if math.isnan(kurt):  # terms beyond the float64 range: the sign is the asymptotic constant's
        a = (d - 1) / 2.0
        kurt = math.copysign(math.inf, 3.0 * 2.0 ** (a - 2.0) - 8.0 * (4.0 / 3.0) ** a + 12.0)
    return SubcriticalMoments(
        d, beta, "exact", radial_mean, radial_bias, radial_var, _exp(log_sigma), math.exp(-log_e2), kurt
    )


def _asymptotic_moments(d: int, beta: float) -> SubcriticalMoments:
    a = (d - 1) / 2.0
    with np.errstate(over="ignore"):
        # X = B(a,a) beta^a / Gamma(a) = n / n_eff to leading order
        x = math.exp(min(float(special.betaln(a, a)) + a * math.log(beta) - math.lgamma(a), 700.0))
    lead_tan = x / (2.0 * beta)
    tan = float(tangential_variance_asymptotic(d, beta))
    radial_var = x * a * (a + 1.0) / (4.0 * beta * beta)
    bias = -a * lead_tan
    kurt = x * (3.0 * 2.0 ** (a - 2.0) - 8.0 * (4.0 / 3.0) ** a + 12.0)
    return SubcriticalMoments(d, beta, "asymptotic", 1.0 - a / beta, bias, radial_var, tan, 1.0 / x, kurt)


def subcritical_moments(d: int, beta: float, method: str = "exact") -> SubcriticalMoments:
    r"""Per-key constants of the Gaussian output law, uniform keys on :math:`S^{d-1}`.

    With :math:`t = \langle q, K\rangle`, :math:`e = e^{\beta t}`,
    :math:`A = E[e t]/E[e] = A_d(\beta)` and :math:`y = \sum_i e_i K_i/\sum_i e_i`,
    the delta method gives, as :math:`n \to \infty` at fixed :math:`\beta`
    (docs/theory.md section 3),

    .. math::
        E\langle y,q\rangle &= A - \frac{E[e^2(t-A)]}{n\,E[e]^2} + O(n^{-2}),\qquad
        n\,\mathrm{Var}\langle y,q\rangle \to \frac{E[e^2(t-A)^2]}{E[e]^2},\\
        n\,\mathrm{Var}_{tan} &\to \frac{E[e^2(1-t^2)]}{(d-1)E[e]^2},\qquad
        \frac{n_{\mathrm{eff}}}{n} \to \frac{E[e]^2}{E[e^2]},

    radial and tangential parts uncorrelated, tangential directions independent
    and exchangeable.  The excess kurtosis of one tangential coordinate is, to
    leading order in :math:`1/n`,

    .. math::
        \frac{\kappa_{\zeta\zeta\zeta\zeta} - 12\,\sigma\,\kappa_{\zeta\zeta\eta}
              + 12\,\sigma^2\sigma_{\eta\eta}}{n\,\sigma^2},

    with :math:`\zeta = e k/E e` (``k`` a tangential coordinate of ``K``),
    :math:`\eta = e/Ee - 1`, :math:`\sigma = E\zeta^2 = n\mathrm{Var}_{tan}`,
    :math:`\kappa_{\zeta\zeta\zeta\zeta} = E\zeta^4 - 3\sigma^2`,
    :math:`\kappa_{\zeta\zeta\eta} = E[\zeta^2\eta]`, :math:`\sigma_{\eta\eta} = E\eta^2`
    (fourth cumulant of a ratio of means; the denominator's fluctuations enter
    at the same order as the numerator's).

    ``method="exact"``: every expectation by log-space quadrature over the angle
    to ``q`` (no overflow for ``beta`` up to 1e12).  ``method="asymptotic"``:
    large :math:`\beta`, with :math:`a = (d-1)/2` and
    :math:`X = B(a,a)\beta^a/\Gamma(a) \sim n/n_{\mathrm{eff}}`:
    :math:`A \approx 1 - a/\beta`, :math:`n\mathrm{Var}_{tan}` from
    :func:`attnscale.limits.tangential_variance_asymptotic` (corrected),
    :math:`n\mathrm{Var}_{rad} \approx a(a+1)X/(4\beta^2)` (radial fluctuations are
    smaller by :math:`a(a+1)/(2\beta)`: second order), bias
    :math:`\approx -aX/(2\beta)`, and :math:`n` times the excess kurtosis
    :math:`\approx X\,[3\cdot 2^{a-2} - 8(4/3)^a + 12]` (d = 3: :math:`2.83/n_{\mathrm{eff}}`;
    it changes sign near d = 7 and grows like :math:`2^a` for large d).

    Parameters
    ----------
    d : int
        Ambient dimension, >= 2.
    beta : float
        Inverse temperature, finite and >= 0 (> 0 for ``"asymptotic"``).
    method : {"exact", "asymptotic"}

    Returns
    -------
    SubcriticalMoments

    Examples
    --------
    >>> m = subcritical_moments(3, 0.0)          # beta = 0: one uniform key's moments
    >>> round(m.radial_var, 12), round(m.tangential_var, 12), round(m.excess_kurtosis, 10)
    (0.333333333333, 0.333333333333, -1.2)
    >>> big = subcritical_moments(3, 1e4)
    >>> round(big.tangential_var / 0.5, 3), round(big.n_eff_ratio * 1e4, 3)   # 1/2 and 1/beta
    (1.0, 1.0)
    """
    d = check_dimension(d)
    check_choice(method, "method", METHODS)
    if method == "asymptotic":
        return _asymptotic_moments(d, check_positive(beta, "beta"))
    return _exact_moments(d, check_beta(beta))


# ---------------------------------------------------------------------------
# Subcritical: the joint Gaussian law of the output
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GaussianOutput:
    r"""Gaussian law of the attention output :math:`y = V\sum_i w_i K_i` (docs/theory.md section 3).

    Attributes
    ----------
    mean : ndarray, shape (d_v,)
        :math:`E y`, including the :math:`O(1/n)` ratio bias.
    cov : ndarray, shape (d_v, d_v)
        :math:`\mathrm{Cov}\,y = V\Sigma V^\top/n`.
    n_eff : float
        Expected effective number of keys, :math:`n\,E[e]^2/E[e^2]`.
    excess_kurtosis : float
        Excess kurtosis of one tangential coordinate of the key-space output
        (order :math:`1/n_{\mathrm{eff}}`): the size of the Gaussian law's error.
    """

    mean: np.ndarray
    cov: np.ndarray
    n_eff: float
    excess_kurtosis: float

    def sample(self, size: int, rng: RngLike = None) -> np.ndarray:
        r"""``size`` draws, shape ``(size, d_v)`` (a singular ``cov`` is allowed).

        Examples
        --------
        >>> law = subcritical_output_law(10**4, 3, 10.0)
        >>> law.sample(5, rng=0).shape
        (5, 3)
        """
        size = check_int(size, "size")
        gen = as_generator(rng)
        vals, vecs = np.linalg.eigh(self.cov)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        return self.mean + gen.standard_normal((size, self.mean.size)) @ root.T


def subcritical_output_law(
    n: Any,
    d: int,
    beta: float,
    q: Any = None,
    values: Any = None,
    method: str = "exact",
) -> GaussianOutput:
    r"""Joint Gaussian law of the output for ``n`` uniform keys on :math:`S^{d-1}` (docs/theory.md section 3).

    In key space the output :math:`x = \sum_i w_i K_i` is approximately

    .. math::
        N\!\left(\Big(A + \frac{b}{n}\Big) q,\;
        \frac{1}{n}\big(v_{rad}\, qq^\top + v_{tan}(I - qq^\top)\big)\right),

    with :math:`A, b, v_{rad}, v_{tan}` from :func:`subcritical_moments`; the
    output :math:`y = Vx` is then :math:`N(V\mu, V\Sigma V^\top)` for any value
    matrix :math:`V`.  The law is accurate when ``n_eff`` is large; its excess
    kurtosis (reported) is the size of the error.

    Parameters
    ----------
    n : int
        Number of keys, ``1 <= n <= 1e18``.
    d : int
        Dimension, >= 2.
    beta : float
        Inverse temperature, finite, >= 0.
    q : array_like, shape (d,), optional
        Unit query; ``e_d`` by default.
    values : array_like, shape (d_v, d), optional
        Value matrix :math:`V` (identity by default).
    method : {"exact", "asymptotic"}
        Constants by quadrature or by their large-``beta`` forms.

    Returns
    -------
    GaussianOutput

    Examples
    --------
    >>> law = subcritical_output_law(10**5, 3, 20.0, q=[1.0, 0.0, 0.0])
    >>> round(float(law.mean[0]), 6), round(law.n_eff)         # ~ coth(20) - 1/20, n/beta
    (0.949995, 5000)
    >>> v = np.diag([2.0, 1.0, 1.0])
    >>> scaled = subcritical_output_law(10**5, 3, 20.0, q=[1.0, 0.0, 0.0], values=v)
    >>> bool(np.allclose(scaled.cov, v @ law.cov @ v.T))
    True
    """
    n = check_n(n)
    d = check_dimension(d)
    if q is None:
        qv = np.zeros(d)
        qv[-1] = 1.0
    else:
        qv = check_unit_vector(q, "q", d)
    v = _check_values(values, d)
    mom = subcritical_moments(d, beta, method)
    mean_key = (mom.radial_mean + mom.radial_bias / n) * qv
    proj = np.outer(qv, qv)
    cov_key = (mom.radial_var * proj + mom.tangential_var * (np.eye(d) - proj)) / n
    mean = v @ mean_key
    cov = v @ cov_key @ v.T
    cov = 0.5 * (cov + cov.T)
    for arr in (mean, cov):
        arr.setflags(write=False)
    return GaussianOutput(mean, cov, n * mom.n_eff_ratio, mom.excess_kurtosis / n)


# ---------------------------------------------------------------------------
# A general smooth key density: the bias toward denser regions
# ---------------------------------------------------------------------------


def smooth_density_mean(q: Any, beta: float, grad_log_density: Any, values: Any = None) -> np.ndarray:
    r"""Subcritical mean output for keys with a smooth positive density :math:`\rho` (docs/theory.md section 3).

    .. math::
        E\,y = V\Big[q + \frac{1}{\beta}\Big(\nabla_S\log\rho(q) - \frac{d-1}{2}\,q\Big)\Big]
        + O(\beta^{-2}) + O(1/n),

    where :math:`\nabla_S\log\rho(q) = (I - qq^\top)\nabla\log\rho(q)`: the output is
    biased toward denser regions by :math:`\beta^{-1}\nabla_S\log\rho(q)`.  Any
    ambient gradient may be passed; its radial part is removed here.

    Parameters
    ----------
    q : array_like, shape (d,)
        Unit query.
    beta : float
        Inverse temperature, finite and > 0.
    grad_log_density : array_like, shape (d,)
        :math:`\nabla\log\rho` at ``q`` (von Mises-Fisher :math:`\kappa\mu`).
    values : array_like, shape (d_v, d), optional
        Value matrix (identity by default).

    Examples
    --------
    >>> smooth_density_mean([0.0, 0.0, 1.0], 10.0, [2.0, 0.0, 5.0])   # vMF, kappa mu = (2, 0, 5)
    array([0.2, 0. , 0.9])
    """
    qv = check_unit_vector(q, "q")
    b = check_positive(beta, "beta")
    g = check_vector(grad_log_density, "grad_log_density", qv.size)
    v = _check_values(values, qv.size)
    tan = g - (g @ qv) * qv
    return v @ (qv + (tan - 0.5 * (qv.size - 1) * qv) / b)


def vmf_output_mean(q: Any, beta: float, mu: Any, kappa: float, values: Any = None) -> np.ndarray:
    r"""Exact :math:`n \to \infty` output for von Mises-Fisher keys (docs/theory.md section 3).

    Tilting the density :math:`\propto e^{\kappa\langle\mu,k\rangle}` by the
    softmax factor :math:`e^{\beta\langle q,k\rangle}` gives the von Mises-Fisher
    law with parameter :math:`\xi = \kappa\mu + \beta q`, whose mean is

    .. math:: E\,y = V\,A_d(|\xi|)\,\xi/|\xi| .

    Expanding in :math:`1/\beta` recovers :func:`smooth_density_mean` with
    :math:`\nabla\log\rho = \kappa\mu`.

    Examples
    --------
    >>> y = vmf_output_mean([0.0, 0.0, 1.0], 2.0, [0.0, 0.0, 1.0], 0.0)   # uniform: coth(2) - 1/2
    >>> round(float(y[2]), 12), float(y[0])
    (0.537314720728, 0.0)
    """
    qv = check_unit_vector(q, "q")
    b = check_beta(beta)
    m = check_unit_vector(mu, "mu", qv.size)
    k = check_beta(kappa, "kappa")
    v = _check_values(values, qv.size)
    xi = k * m + b * qv
    norm = float(np.linalg.norm(xi))
    if norm == 0.0:
        return v @ np.zeros(qv.size)
    return v @ (float(mean_resultant_length(qv.size, norm)) * xi / norm)


# ---------------------------------------------------------------------------
# Critical: exact moments of the limit output by quadrature
# ---------------------------------------------------------------------------


def _quad(f: Callable[[float], float], lo: float, hi: float, points: list[float] | None = None) -> float:
    """``scipy.integrate.quad`` to ``1e-11`` relative; its accuracy reports are returned (``full_output``), not warned."""
    pts = [p for p in (points or []) if lo < p < hi] or None
    return float(integrate.quad(f, lo, hi, points=pts, epsabs=0.0, epsrel=1e-11, limit=400, full_output=1)[0])


def _laplace_exponent(gamma: float, sigma: float) -> float:
    r""":math:`M(s) = \int_0^\infty v^{\gamma-1}(1 - e^{-s e^{-v}})\,dv` at :math:`s = e^\sigma`."""
    if gamma == 1.0:  # Ein(s)
        if sigma > 50.0:  # E1(s) < e^{-s} underflows
            return float(np.euler_gamma) + sigma
        s = math.exp(sigma)
        if s < 1e-3:
            return s - s * s / 4 + s**3 / 18 - s**4 / 96
        return float(np.euler_gamma + sigma + special.exp1(s))

    def tail(v: float) -> float:  # v >= max(sigma, 0): no overflow
        return v ** (gamma - 1.0) * -math.expm1(-math.exp(sigma - v))

    if sigma <= 0.0:
        return _quad(tail, 0.0, 60.0, [1.0, 5.0])

    def deficit(v: float) -> float:  # v <= sigma: 1 - (1 - e^{-s e^{-v}})
        x = sigma - v
        return 0.0 if x > 700.0 else v ** (gamma - 1.0) * math.exp(-math.exp(x))

    lo = max(0.0, sigma - 40.0)
    head = sigma**gamma / gamma - _quad(deficit, lo, sigma, [sigma - 5.0, sigma - 1.0])
    return head + _quad(tail, sigma, sigma + 60.0, [sigma + 1.0, sigma + 5.0])


def _scaled_h(gamma: float, j: int, sigma: float) -> float:
    r""":math:`s^j H_j(s)`, :math:`H_j(s) = \int_0^\infty v^\gamma e^{-jv} e^{-s e^{-v}}\,dv`, :math:`s = e^\sigma`.

    For :math:`s > 1` in the variable :math:`w = s e^{-v}`:
    :math:`s^j H_j = \int_0^s (\sigma - \log w)^\gamma w^{j-1} e^{-w}\,dw`.
    """
    if sigma <= 0.0:
        s = math.exp(sigma)
        value = _quad(lambda v: v**gamma * math.exp(-j * v - s * math.exp(-v)), 0.0, 80.0, [1.0, 5.0, 20.0])
        return math.exp(j * sigma) * value

    def f(w: float) -> float:
        return (sigma - math.log(w)) ** gamma * w ** (j - 1) * math.exp(-w) if w > 0 else 0.0

    top = 100.0 if sigma > math.log(100.0) else math.exp(sigma)
    return _quad(f, 0.0, top, [1e-6, 1e-3, 0.1, 1.0, 10.0])


def _outer(gamma: float, c: float, j: int) -> float:
    r""":math:`\int_{-\infty}^{\infty} s^j H_j(s)\, e^{-\gamma c^{-\gamma} M(s)}\,d\sigma`, :math:`s = e^\sigma`."""
    log_pref = math.log(gamma) - gamma * math.log(c)

    def f(sigma: float) -> float:
        lam = math.exp(log_pref + math.log(max(_laplace_exponent(gamma, sigma), 1e-300)))
        if lam > 745.0:
            return 0.0
        return _scaled_h(gamma, j, sigma) * math.exp(-lam)

    # e^{-Lambda} cuts off where gamma c^-gamma M(s) ~ 40: M(s) ~ s Gamma(gamma) for small s,
    # ~ sigma^gamma / gamma for large s.
    hi = max(5.0, c * (800.0 ** (1.0 / gamma)) + 10.0)
    lo = min(-40.0, gamma * math.log(c) - math.lgamma(gamma + 1.0) - 40.0)
    marks = [0.0, c, 2.0 * c, 5.0 * c, 10.0 * c, 30.0 * c]
    marks += [gamma * math.log(c) - math.lgamma(gamma + 1.0) + x for x in (-5.0, 0.0, 3.0)]
    return _quad(f, lo, hi, sorted(set(marks)))


def _check_gamma_c(gamma: Any, c: Any) -> tuple[float, float]:
    return check_positive(gamma, "gamma"), check_positive(c, "c")


@functools.lru_cache(maxsize=256)
def _second_moment(gamma: float, c: float) -> float:
    return 2.0 * gamma * c ** (-gamma - 1.0) * _outer(gamma, c, 2)


@functools.lru_cache(maxsize=256)
def _radial_mean(gamma: float, c: float) -> float:
    return gamma * c ** (-gamma - 1.0) * _outer(gamma, c, 1)


def critical_tangential_second_moment(gamma: float, c: float) -> float:
    r""":math:`E|T|^2` of the critical limit :math:`T = \sqrt2\sum_k W_k\Gamma_k^{1/(2\gamma)}\theta_k`, exactly.

    The directions are independent and centred, so
    :math:`E|T|^2 = 2E\sum_k W_k^2\Gamma_k^{1/\gamma}`.  By the Mecke formula for
    the Poisson process and :math:`(a+Z)^{-2} = \int_0^\infty s e^{-s(a+Z)}ds`,

    .. math::
        E|T|^2 = 2\gamma c^{-\gamma-1}\int_0^\infty s\,H_2(s)\,
        e^{-\gamma c^{-\gamma} M(s)}\,ds,

    :math:`H_2(s) = \int_0^\infty v^\gamma e^{-2v - s e^{-v}}dv`,
    :math:`M(s) = \int_0^\infty v^{\gamma-1}(1 - e^{-s e^{-v}})dv` (:math:`\gamma = 1`:
    :math:`\mathrm{Ein}(s)`): nested quadrature in :math:`\log s` (docs/theory.md
    section 3).  The ends: :func:`gaussian_end_second_moment` (:math:`c \to 0`)
    and :func:`nearest_end_second_moment` (:math:`c \to \infty`).  Relative
    accuracy about 1e-9; results are cached.

    Parameters
    ----------
    gamma : float
        Tail exponent, > 0.
    c : float
        :math:`\beta/\beta^*(n)`, > 0.

    Examples
    --------
    >>> round(critical_tangential_second_moment(1.0, 1e-3) / gaussian_end_second_moment(1.0, 1e-3), 2)
    1.0
    >>> round(critical_tangential_second_moment(1.0, 1e3), 3)          # 2 - 2/c
    1.998
    """
    g, cc = _check_gamma_c(gamma, c)
    return _second_moment(g, cc)


def critical_radial_mean(gamma: float, c: float) -> float:
    r""":math:`E\sum_k W_k\Gamma_k^{1/\gamma}`: limit of :math:`(\kappa n)^{1/\gamma}(1 - E\langle y, q\rangle)`, exactly.

    The radial deficit of the output is :math:`\sum_i w_i g_i` with gaps
    :math:`g_{(k)} \approx (\Gamma_k/(\kappa n))^{1/\gamma}`: second order next to
    the tangential part.  As in :func:`critical_tangential_second_moment`,

    .. math::
        E\sum_k W_k\Gamma_k^{1/\gamma} = \gamma c^{-\gamma-1}\int_0^\infty H_1(s)\,
        e^{-\gamma c^{-\gamma}M(s)}\,ds,\qquad
        H_1(s) = \int_0^\infty v^\gamma e^{-v - s e^{-v}}dv

    (docs/theory.md section 3).  Tends to :math:`\gamma/c` as :math:`c \to 0`
    (subcritical :math:`1 - A_d \approx (d-1)/(2\beta)`) and to
    :math:`E\Gamma_1^{1/\gamma} = \Gamma(1 + 1/\gamma)` as :math:`c \to \infty`.

    Examples
    --------
    >>> round(critical_radial_mean(1.0, 1e-3) * 1e-3, 3)                # gamma / c
    1.0
    >>> round(critical_radial_mean(2.0, 1e3), 2)                        # Gamma(3/2)
    0.89
    """
    g, cc = _check_gamma_c(gamma, c)
    return _radial_mean(g, cc)
