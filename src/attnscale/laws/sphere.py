r"""Geometry of the unit sphere shared by the key laws: angles, caps, uniform directions (private helpers and :func:`uniform_directions`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from .._numerics.special import log_betainc_lower
from .._validate import check_unit_vector

__all__ = ["TangentMap", "tangent_basis", "uniform_directions"]

def _log_kappa_uniform(a: float) -> float:
    r"""``log kappa`` of the uniform law on :math:`S^{2a}`: :math:`\kappa = 2^{-a}/(a B(a,a))` (section 2)."""
    return -a * math.log(2.0) - math.log(a) - float(special.betaln(a, a))


def _angle(q: np.ndarray, pole: np.ndarray) -> float:
    r"""Angle between unit vectors, :math:`2\,\mathrm{atan2}(|q-p|, |q+p|)` (accurate near 0 and pi)."""
    theta = 2.0 * math.atan2(float(np.linalg.norm(q - pole)), float(np.linalg.norm(q + pole)))
    if theta < 1e-300:
        return 0.0
    if math.pi - theta < 1e-300:
        return math.pi
    return theta


def _psi_of_gap(g: np.ndarray) -> np.ndarray:
    r"""Angle :math:`\psi = 2\arcsin\sqrt{g/2}` with :math:`1 - \cos\psi = g` (no cancellation for small ``g``)."""
    return 2.0 * np.arcsin(np.minimum(np.sqrt(g) * math.sqrt(0.5), 1.0))


def _cap_angles(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Angles :math:`\psi` with :math:`1 - \cos\psi = g` and :math:`\pi - \psi`, each from the nearer end.

    :math:`\psi(g)` below ``g = 1`` and :math:`\pi - \psi(2 - g)` above (``2 - g``
    is exact there), so neither angle loses the digits of a small ``g`` or ``2 - g``.
    """
    low = g <= 1.0
    near = _psi_of_gap(np.clip(g, 0.0, 1.0))
    far = _psi_of_gap(np.clip(2.0 - g, 0.0, 1.0))
    return np.where(low, near, math.pi - far), np.where(low, math.pi - near, far)


def _log_beta_cap(a1: float, a2: float, angle: np.ndarray) -> np.ndarray:
    r""":math:`\log I_u(a_1, a_2)` at :math:`u = \sin^2(\text{angle}/2)`: a cap of a zonal law with :math:`U \sim B(a_1, a_2)`.

    Up to a hemisphere from ``u``; beyond, from :math:`v = \sin^2((\pi - \text{angle})/2)`
    as :math:`\log(1 - I_v(a_2, a_1))` where that complement is at most 1/2, else
    :math:`\log I_{1-v}(a_1, a_2)`: no digits of a tiny value are lost either way.
    """
    out = np.where(angle >= math.pi, 0.0, np.where(np.isnan(angle), np.nan, -np.inf))
    near = (angle > 0.0) & (angle <= 0.5 * math.pi)
    far = (angle > 0.5 * math.pi) & (angle < math.pi)
    if np.any(near):
        out[near] = log_betainc_lower(a1, a2, np.sin(0.5 * angle[near]) ** 2)
    if np.any(far):
        v = np.sin(0.5 * (math.pi - angle[far])) ** 2
        other = log_betainc_lower(a2, a1, v)
        with np.errstate(divide="ignore"):
            out[far] = np.where(other <= -math.log(2.0), np.log(-np.expm1(other)), log_betainc_lower(a1, a2, 1.0 - v))
    return out


def _uv_from_angle(phi: np.ndarray, zeta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""``u = sin^2(phi/2)``, ``v = cos^2(phi/2) = 1 - u`` from ``phi`` and ``zeta = pi - phi``.

    Whichever of ``u``, ``v`` is below 1/2 is computed from the smaller angle, so
    both keep relative accuracy.
    """
    near = phi <= zeta
    su = np.sin(0.5 * phi) ** 2
    sv = np.sin(0.5 * zeta) ** 2
    u = np.where(near, su, 1.0 - sv)
    v = np.where(near, 1.0 - su, sv)
    return u, v


def uniform_directions(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform points on :math:`S^{d-1}` (normalized Gaussians), shape ``(n, d)``."""
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _beta_pair(a1: float, a2: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(U, 1 - U)`` with ``U ~ Beta(a1, a2)``, both from gamma variates (no cancellation)."""
    g1 = rng.standard_gamma(a1, n)
    g2 = rng.standard_gamma(a2, n)
    total = g1 + g2
    return g1 / total, g2 / total


def _read_only(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=float, copy=True)
    x.setflags(write=False)
    return x


def _axis(d: int, i: int = 0) -> np.ndarray:
    e = np.zeros(d)
    e[i] = 1.0
    e.setflags(write=False)
    return e


def tangent_basis(q: Any) -> np.ndarray:
    r"""Orthonormal basis of the tangent space :math:`q^\perp` at a unit vector ``q``.

    Parameters
    ----------
    q : array_like, shape (d,)
        Unit vector, ``d >= 2``.

    Returns
    -------
    ndarray, shape (d, d - 1)
        Columns orthonormal and orthogonal to ``q`` (docs/theory.md section 3).

    Examples
    --------
    >>> b = tangent_basis([0.0, 0.0, 1.0])
    >>> b.shape, bool(np.allclose(b.T @ b, np.eye(2))), bool(np.allclose(b.T @ [0, 0, 1.0], 0))
    ((3, 2), True, True)
    """
    qv = check_unit_vector(q, "q")
    full, _ = np.linalg.qr(np.column_stack([qv, np.eye(qv.size)]))
    return full[:, 1 : qv.size]


@dataclass(frozen=True)
class TangentMap:
    r"""Orthonormal frame of a tangent space, applied without forming its ``d x dim`` matrix.

    The frame of :math:`p^\perp` inside the first ``dim + 1`` coordinates of
    :math:`R^d` (``p`` a unit vector there) is the last ``dim`` columns of the
    Householder reflection :math:`H = I - 2vv^T/|v|^2`, :math:`v = e_1 + \sigma p`
    (:math:`\sigma = \pm 1`, the sign of :math:`p_1`, so :math:`|v|^2 \ge 2`):
    :math:`He_1 = -\sigma p` and :math:`He_j \perp p` for :math:`j \ge 2`.  Applying it
    costs :math:`O(d)` per row, so ``d = 1e5`` needs no :math:`d^2` matrix.

    Examples
    --------
    >>> f = TangentMap.at([0.0, 0.6, 0.8])
    >>> b = f.matrix()
    >>> b.shape, bool(np.allclose(b.T @ b, np.eye(2))), bool(np.allclose(b.T @ [0.0, 0.6, 0.8], 0))
    ((3, 2), True, True)
    >>> bool(np.allclose(f.apply(np.array([[1.0, 2.0]])), np.array([[1.0, 2.0]]) @ b.T))
    True
    """

    d: int
    v: np.ndarray  # Householder vector, length dim + 1

    @classmethod
    def at(cls, p: Any, d: int | None = None) -> TangentMap:
        r"""The frame of :math:`p^\perp` for a unit ``p`` of length ``k``, padded with zeros to ``d >= k``."""
        pv = check_unit_vector(p, "q")
        v = pv.copy()
        v *= 1.0 if pv[0] >= 0 else -1.0
        v[0] += 1.0
        v.setflags(write=False)
        return cls(pv.size if d is None else int(d), v)

    @property
    def dim(self) -> int:
        """Dimension of the tangent space."""
        return self.v.size - 1

    def apply(self, coords: np.ndarray) -> np.ndarray:
        """Rows of frame coordinates, shape ``(rows, dim)``, as vectors of :math:`R^d`, shape ``(rows, d)``."""
        coords = np.asarray(coords, dtype=float)
        k = self.v.size
        out = np.zeros((coords.shape[0], self.d))
        out[:, 1:k] = coords
        scale = (2.0 / float(self.v @ self.v)) * (coords @ self.v[1:])
        out[:, :k] -= scale[:, None] * self.v[None, :]
        return out

    def matrix(self) -> np.ndarray:
        """The frame as a ``(d, dim)`` matrix with orthonormal columns."""
        return self.apply(np.eye(self.dim)).T
