r"""The simplex model of Chen, Lin, Polyanskiy and Rigollet (2025): the atom-plus-gap class.

Tokens :math:`y_1, \dots, y_n` on the unit sphere with :math:`\langle y_i, y_j\rangle = \rho`
for :math:`i \ne j` (:math:`0 \le \rho < 1`), self-attention with queries = keys =
values = the tokens and :math:`\beta = g \log n`.  Seen from token ``i`` its own key
scores 1 (an atom of one key) and the ``n - 1`` others score :math:`\rho` (a gap
:math:`1 - \rho`), so (docs/theory.md section 2)

.. math::
    w_{\mathrm{self}} = \frac{n^{g(1-\rho)}}{n^{g(1-\rho)} + n - 1},
    \qquad g_c = \frac{1}{1-\rho},

and :math:`w_{\mathrm{self}} \to 0, 1/2, 1` for :math:`g <, =, > g_c`.  The outputs
:math:`\mathrm{ATT}(y_i) = \sum_j w_{ij} y_j` of two tokens then have cosine

.. math::
    \cos\theta_{\mathrm{out}} = \frac{a^2\rho + 2auP + u^2 nP}{a^2 + 2auP + u^2 nP},
    \quad u = \frac{1 - w_{\mathrm{self}}}{n-1},\ a = w_{\mathrm{self}} - u,\ P = 1 + (n-1)\rho,

which tends to 1 (all outputs collapse to one direction), :math:`4\rho/(1+3\rho)` and
:math:`\rho` (attention is the identity) in the three phases.  (For :math:`\rho = 0`
the common part of the outputs has norm :math:`n^{-1/2}`, so the self term wins the
angle as soon as :math:`w_{\mathrm{self}} \gg n^{-1/2}`: the output-angle limits are
1, 1/2, 0 for :math:`g <, =, > 1/2`.)

The *almost-simplex* variant (:class:`ClusteredSimplex`) lets the inner products
take values in :math:`[\rho_1, \rho_2]`: the tokens form clusters of
:math:`n^\alpha` tokens with inner product :math:`\rho_2` inside a cluster and
:math:`\rho_1` across.  The self, cluster and rest masses grow like
:math:`n^{g}`, :math:`n^{\alpha + g\rho_2}`, :math:`n^{1 + g\rho_1}`; when the
middle one wins, attention averages over the token's own cluster: the middle
phase between collapse and identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from ._validate import InputError, check_finite, check_n, check_nonnegative
from .tails import ScoreTail

__all__ = ["PHASES", "ClusteredSimplex", "SimplexModel"]

#: Phases of the (clustered) simplex model, by which group holds the attention mass.
PHASES = ("collapse", "cluster", "identity")


def _check_rho(rho: Any, name: str = "rho") -> float:
    r = check_finite(rho, name)
    if not 0.0 <= r < 1.0:
        raise InputError(f"{name}: got {rho!r}; expected an inner product in [0, 1)")
    return r


def _check_n2(n: Any) -> int:
    n = check_n(n)
    if n < 2:
        raise InputError(f"n: got {n}; the simplex model needs n >= 2 tokens")
    return n


@dataclass(frozen=True)
class SimplexModel:
    r"""Regular simplex of tokens with pairwise inner product ``rho`` (docs/theory.md section 2).

    Examples
    --------
    >>> model = SimplexModel(0.5)
    >>> model.critical_g
    2.0
    >>> round(model.self_weight(10**6, 2.0), 6)   # at g_c: n / (2n - 1)
    0.5
    >>> [model.limit_self_weight(g) for g in (1.0, 2.0, 3.0)]
    [0.0, 0.5, 1.0]
    """

    rho: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "rho", _check_rho(self.rho))

    @property
    def critical_g(self) -> float:
        r""":math:`g_c = 1/(1-\rho)`."""
        return 1.0 / (1.0 - self.rho)

    def score_tail(self) -> ScoreTail:
        r"""Atom of one key at 1, gap :math:`1 - \rho` (``tails.critical_beta`` gives :math:`\log(n-1)/(1-\rho)`)."""
        return ScoreTail(1.0, 0.0, kind="atom", gap=1.0 - self.rho, atom_count=1.0)

    def self_weight(self, n: Any, g: Any) -> float:
        r""":math:`n^{g(1-\rho)} / (n^{g(1-\rho)} + n - 1)`, as a logistic function (no overflow)."""
        n = _check_n2(n)
        g = check_nonnegative(g, "g")
        return float(special.expit(g * (1.0 - self.rho) * math.log(n) - math.log(n - 1)))

    def output_cosine(self, n: Any, g: Any) -> float:
        r"""Cosine of the angle between the outputs of two tokens (module docstring)."""
        n = _check_n2(n)
        w = self.self_weight(n, g)
        u = (1.0 - w) / (n - 1)
        a = w - u
        p = 1.0 + (n - 1) * self.rho
        cross = 2.0 * a * u * p + u * u * n * p
        return float((a * a * self.rho + cross) / (a * a + cross))

    def limit_self_weight(self, g: Any) -> float:
        """Limit of the self weight as ``n -> inf``: 0, 1/2 or 1."""
        g = check_nonnegative(g, "g")
        gc = self.critical_g
        return 0.0 if g < gc else (0.5 if g == gc else 1.0)

    def limit_output_cosine(self, g: Any) -> float:
        r"""Limit of :meth:`output_cosine`: 1, :math:`4\rho/(1+3\rho)` or :math:`\rho` (:math:`\rho = 0`: 1, 1/2, 0 around :math:`g = 1/2`)."""
        if self.rho == 0.0:
            g = check_nonnegative(g, "g")
            return 1.0 if g < 0.5 else (0.5 if g == 0.5 else 0.0)
        w = self.limit_self_weight(g)
        if w == 0.0:
            return 1.0
        if w == 1.0:
            return self.rho
        return 4.0 * self.rho / (1.0 + 3.0 * self.rho)

    def tokens(self, n: Any) -> np.ndarray:
        r"""Explicit tokens :math:`y_i = \sqrt\rho\, e_0 + \sqrt{1-\rho}\, e_i`, shape ``(n, n + 1)``."""
        n = _check_n2(n)
        y = np.zeros((n, n + 1))
        y[:, 0] = math.sqrt(self.rho)
        y[np.arange(n), np.arange(1, n + 1)] = math.sqrt(1.0 - self.rho)
        return y


@dataclass(frozen=True)
class ClusteredSimplex:
    r"""Almost-simplex tokens: clusters of :math:`\lceil n^\alpha\rceil` with inner products :math:`\rho_2` inside, :math:`\rho_1` across.

    All pairwise inner products lie in :math:`[\rho_1, \rho_2]`.  Seen from a
    token: itself at 1, :math:`c - 1` cluster mates at :math:`\rho_2`, :math:`n - c`
    others at :math:`\rho_1` (:math:`c` the cluster size).  At :math:`\beta = g\log n`
    the three groups carry masses proportional to :math:`n^g`,
    :math:`n^{\alpha + g\rho_2}`, :math:`n^{1 + g\rho_1}`, so the limit phase is the
    largest exponent: ``"identity"``, ``"cluster"`` (the middle phase) or
    ``"collapse"`` (docs/theory.md section 2).

    Examples
    --------
    >>> model = ClusteredSimplex(0.0, 0.8, 0.5)
    >>> [model.limit_phase(g) for g in (0.5, 1.5, 3.0)]
    ['collapse', 'cluster', 'identity']
    >>> [round(b, 12) for b in model.boundaries()]   # collapse/cluster, cluster/identity
    [0.625, 2.5]
    """

    rho1: float
    rho2: float
    alpha: float

    def __post_init__(self) -> None:
        r1, r2 = _check_rho(self.rho1, "rho1"), _check_rho(self.rho2, "rho2")
        if r2 < r1:
            raise InputError(f"rho2: got {self.rho2!r}; expected rho2 >= rho1 = {r1!r}")
        a = check_finite(self.alpha, "alpha")
        if not 0.0 < a < 1.0:
            raise InputError(f"alpha: got {self.alpha!r}; expected a cluster-size exponent in (0, 1)")
        object.__setattr__(self, "rho1", r1)
        object.__setattr__(self, "rho2", r2)
        object.__setattr__(self, "alpha", a)

    def cluster_size(self, n: Any) -> int:
        r""":math:`\min(n, \lceil n^\alpha \rceil)`, at least 2."""
        n = _check_n2(n)
        return int(min(n, max(2, math.ceil(n**self.alpha - 1e-9))))

    def masses(self, n: Any, g: Any) -> tuple[float, float, float]:
        """Attention mass on (self, cluster mates, the rest) of one token, exactly (log-sum-exp)."""
        n = _check_n2(n)
        g = check_nonnegative(g, "g")
        c = self.cluster_size(n)
        beta = g * math.log(n)
        logs = np.array(
            [
                beta,
                beta * self.rho2 + math.log(c - 1),
                beta * self.rho1 + math.log(n - c) if n > c else -math.inf,
            ]
        )
        w = np.exp(logs - special.logsumexp(logs))
        return float(w[0]), float(w[1]), float(w[2])

    def exponents(self, g: Any) -> tuple[float, float, float]:
        r"""Growth exponents in :math:`\log n` of the three masses: :math:`(g, \alpha + g\rho_2, 1 + g\rho_1)`."""
        g = check_nonnegative(g, "g")
        return g, self.alpha + g * self.rho2, 1.0 + g * self.rho1

    def limit_phase(self, g: Any) -> str:
        """Which group holds all the mass as ``n -> inf`` (ties go to the larger group)."""
        e_self, e_cluster, e_rest = self.exponents(g)
        if e_rest >= max(e_self, e_cluster):
            return "collapse"
        if e_cluster >= e_self:
            return "cluster"
        return "identity"

    def boundaries(self) -> tuple[float, float]:
        r"""The ``g`` where the phase changes: (collapse -> next, next -> identity).

        With a middle phase: :math:`(1-\alpha)/(\rho_2 - \rho_1)` and
        :math:`\alpha/(1-\rho_2)`; without (when :math:`n^{1+g\rho_1}` beats the cluster
        until the self term does), both equal :math:`1/(1-\rho_1)`.
        """
        g_self_rest = 1.0 / (1.0 - self.rho1)
        if self.rho2 > self.rho1:
            g_rest_cluster = (1.0 - self.alpha) / (self.rho2 - self.rho1)
            g_cluster_self = self.alpha / (1.0 - self.rho2)
            if g_rest_cluster < g_cluster_self:
                return g_rest_cluster, g_cluster_self
        return g_self_rest, g_self_rest

    def tokens(self, n: Any) -> np.ndarray:
        r"""Explicit tokens :math:`\sqrt{\rho_1} e_0 + \sqrt{\rho_2 - \rho_1} f_{c(i)} + \sqrt{1-\rho_2}\, e_i`.

        Clusters are consecutive blocks of :meth:`cluster_size` tokens (the last
        may be smaller); shape ``(n, 1 + n_clusters + n)``.
        """
        n = _check_n2(n)
        c = self.cluster_size(n)
        n_clusters = -(-n // c)
        y = np.zeros((n, 1 + n_clusters + n))
        idx = np.arange(n)
        y[:, 0] = math.sqrt(self.rho1)
        y[idx, 1 + idx // c] = math.sqrt(self.rho2 - self.rho1)
        y[idx, 1 + n_clusters + idx] = math.sqrt(1.0 - self.rho2)
        return y
