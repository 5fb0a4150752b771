r"""The quantile lattice and the conditional moments of the remainder (docs/theory.md section 4).

Steps 2 and 3 of :mod:`attnscale.sampler`: the quantile :math:`G(v)` of a score law,
tabulated as a verified cubic spline in :math:`v = \operatorname{logit} p` on a lattice of
spacing ``PANEL`` (built and widened lazily), and the conditional moments
:math:`m_{a,b}(P)` of the keys beyond the top ``m``, by Gauss-Legendre on the lattice
cells (a table at the lattice points plus the partial cell of each draw) or
Gauss-Laguerre in :math:`y` where :math:`y` rises fast.  See the module docstring of
:mod:`attnscale.sampler` for the method and its accuracy.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy.interpolate import CubicSpline

from .laws import ScoreLaw

#: Lattice spacing in ``v = logit p`` of the quantile table and of the quadrature cells.
PANEL = 0.1
#: Upper end of the lattice: ``1 - p = e^{-37}`` (about 1e-16, below float64 resolution of ``p``).
V_MAX = 37.0
#: Gauss-Legendre nodes per lattice cell.
GL_ORDER = 4
#: Bound on the relative error of the quantile spline; a cell is accepted when the spline
#: matches ``gap_ppf`` within a quarter of it at the cell's four Gauss-Legendre nodes (the
#: margin covers the points between nodes), elsewhere ``gap_ppf`` is used directly.
QUANTILE_RTOL = 1e-8
#: Cells are split so that ``y = beta (G - G_ref)`` grows by at most this across a piece.
KAPPA_SUB = 0.1
#: Most pieces per lattice cell in the moment table, and in the partial cell of a draw.
K_TABLE = 64
K_PARTIAL = 16
#: Above this rise of ``y`` across the partial cell, the moments use Gauss-Laguerre in ``y``.
KAPPA_LAGUERRE = 0.8
#: ``e^{-Y_STOP}`` is negligible: cells this far above every table row only add their mass.
Y_STOP = 60.0
#: Gauss-Laguerre nodes.
LAGUERRE_ORDER = 16
#: Bound on the relative error of the gap density taken from the quantile spline (checked per
#: cell at its nodes against ``gap_pdf``, within a quarter of it).
DENSITY_RTOL = 1e-6
#: Newton steps inverting the quantile spline.
_NEWTON_STEPS = 6
#: Elements of the temporary arrays of one vectorized quadrature pass; table rows per pass.
_BLOCK_ELEMENTS = 2**20
_ROW_BLOCK = 16
#: Exponents beyond this are zero anyway; capping keeps ``y**2`` finite for any finite beta.
_Y_CAP = 1e100

_GL_X, _GL_W = np.polynomial.legendre.leggauss(GL_ORDER)
_LAG_X, _LAG_W = np.polynomial.laguerre.laggauss(LAGUERRE_ORDER)
for _arr in (_GL_X, _GL_W, _LAG_X, _LAG_W):
    _arr.setflags(write=False)


def _overflow_is_capped(fn):
    """Run ``fn`` with float overflow silenced: ``beta * gap`` can exceed 1e308 for beta near the
    largest float, and every such exponent is capped at ``_Y_CAP`` (its exponential is 0)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore"):
            return fn(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------
# Quantile lattice and quadrature cells
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Grid:
    """Quantile lattice in ``v = logit p`` for one score law.

    ``v[j] = v0 + j * PANEL`` (j = 0..J), ``g[j]`` the gaps there; cell ``j`` is
    ``[v[j], v[j+1]]`` with Gauss-Legendre nodes ``node_g`` and weights
    ``node_w`` (measure ``dp``).  ``coef`` are the cubic-spline coefficients
    of ``log g`` per cell; ``cell_ok[j]`` says the spline matched ``gap_ppf``
    within ``QUANTILE_RTOL / 4`` at the four nodes of cell ``j`` (elsewhere
    ``gap_ppf`` is called directly).  ``node_f`` are the exact densities
    ``gap_pdf`` at the nodes, and ``dens_ok[j]`` says the spline's density
    :math:`p(1-p)/(dG/dv)` matched them within ``DENSITY_RTOL / 4``.
    ``tail_mass[j]`` is the quadrature mass of cells ``j..J-1`` plus the exact
    mass ``1 - p`` beyond the lattice.
    """

    law: ScoreLaw
    v: np.ndarray
    g: np.ndarray
    node_g: np.ndarray
    node_f: np.ndarray
    node_w: np.ndarray
    coef: np.ndarray
    cell_ok: np.ndarray
    dens_ok: np.ndarray
    tail_mass: np.ndarray


def _cell_nodes(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes (in ``v``) and ``dp``-weights on cells ``[left, right]``."""
    half = 0.5 * (right - left)
    nodes = (0.5 * (left + right))[..., None] + half[..., None] * _GL_X
    weights = half[..., None] * _GL_W * special.expit(nodes) * special.expit(-nodes)
    return nodes, weights


def _lattice(v_lo: float, v_hi: float) -> np.ndarray:
    """Lattice points ``j * PANEL`` covering ``[v_lo, v_hi]``, capped at ``V_MAX``."""
    j_top = math.ceil(V_MAX / PANEL)
    j1 = min(math.ceil(v_hi / PANEL), j_top)
    j0 = min(math.floor(v_lo / PANEL), j1 - 1)
    return np.arange(j0, j1 + 1) * PANEL


def _evaluate(law: ScoreLaw, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact gaps at lattice points ``v``, and gaps and densities at the nodes of the cells between them."""
    nodes, _ = _cell_nodes(v[:-1], v[1:])
    g = np.asarray(law.gap_ppf(special.expit(v)), dtype=float)
    node_g = np.asarray(law.gap_ppf(special.expit(nodes)), dtype=float)
    node_f = np.asarray(law.gap_pdf(node_g), dtype=float)
    return g, node_g, node_f


def _assemble(law: ScoreLaw, v: np.ndarray, g: np.ndarray, node_g: np.ndarray, node_f: np.ndarray) -> _Grid:
    """Spline, per-cell verification and quadrature weights of a lattice whose exact gaps are known."""
    nodes, weights = _cell_nodes(v[:-1], v[1:])
    coef = np.zeros((4, v.size - 1))
    cell_ok = np.zeros(v.size - 1, dtype=bool)
    dens_ok = np.zeros(v.size - 1, dtype=bool)
    if np.all((g > 0) & np.isfinite(g)):
        spline = CubicSpline(v, np.log(g))
        fit = np.exp(spline(nodes))
        cell_ok = np.all(np.abs(fit - node_g) <= 0.25 * QUANTILE_RTOL * node_g, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            dens = special.expit(nodes) * special.expit(-nodes) / (fit * spline(nodes, 1))
        good = np.isfinite(dens) & (dens > 0) & (np.abs(dens - node_f) <= 0.25 * DENSITY_RTOL * node_f)
        dens_ok = cell_ok & np.all(good, axis=1)
        coef = np.ascontiguousarray(spline.c)
    # mass of the cells above each lattice point, plus the exact mass 1 - p beyond the lattice
    tail_mass = np.append(np.cumsum(weights.sum(axis=1)[::-1])[::-1], 0.0) + special.expit(-v[-1])
    for arr in (v, g, node_g, node_f, weights, coef, cell_ok, dens_ok, tail_mass):
        arr.setflags(write=False)
    return _Grid(law, v, g, node_g, node_f, weights, coef, cell_ok, dens_ok, tail_mass)


def _build_grid(law: ScoreLaw, v_lo: float, v_hi: float = V_MAX) -> _Grid:
    """The lattice over ``[v_lo, v_hi]`` (rounded out to lattice points)."""
    v = _lattice(v_lo, v_hi)
    return _assemble(law, v, *_evaluate(law, v))


def _extend_grid(grid: _Grid, v_lo: float, v_hi: float) -> _Grid:
    """``grid`` widened to cover ``[v_lo, v_hi]``; only the new lattice points call ``gap_ppf``."""
    want = _lattice(min(v_lo, grid.v[0]), max(v_hi, grid.v[-1]))
    j_old = np.rint(grid.v / PANEL).astype(np.int64)
    j_new = np.rint(want / PANEL).astype(np.int64)
    below, above = j_new[j_new <= j_old[0]], j_new[j_new >= j_old[-1]]
    g_parts, node_parts, dens_parts = [], [], []
    if below.size > 1:
        g_lo, n_lo, f_lo = _evaluate(grid.law, below * PANEL)
        g_parts.append(g_lo[:-1])
        node_parts.append(n_lo)
        dens_parts.append(f_lo)
    g_parts.append(grid.g)
    node_parts.append(grid.node_g)
    dens_parts.append(grid.node_f)
    if above.size > 1:
        g_hi, n_hi, f_hi = _evaluate(grid.law, above * PANEL)
        g_parts.append(g_hi[1:])
        node_parts.append(n_hi)
        dens_parts.append(f_hi)
    if len(g_parts) == 1:
        return grid
    v = np.arange(min(below[0], j_old[0]), max(above[-1], j_old[-1]) + 1) * PANEL
    return _assemble(grid.law, v, np.concatenate(g_parts), np.concatenate(node_parts), np.concatenate(dens_parts))


@_overflow_is_capped
def _covering_grid(
    law: ScoreLaw, grid: _Grid | None, v_lo: float, v_hi: float, beta: float, v_ref: float | None
) -> _Grid:
    r"""A lattice covering the logits ``[v_lo, v_hi]`` and, above the remainder's largest
    :math:`v_P` = ``v_ref``, far enough that :math:`\beta (G - G(v_{ref})) > Y_{\mathrm{STOP}}`
    at its top (keys beyond add nothing but their mass) or up to ``V_MAX``.

    Built or extended lazily: each lattice point's ``gap_ppf`` is computed once.
    """
    top = v_hi if v_ref is None else max(v_hi, v_ref)
    if grid is None:
        grid = _build_grid(law, v_lo - PANEL, top + PANEL)
    elif v_lo < grid.v[0] or top + PANEL > grid.v[-1]:
        grid = _extend_grid(grid, v_lo - PANEL, top + PANEL)
    if v_ref is None:
        return grid
    g_ref = float(_gaps(grid, np.array([v_ref]))[0])
    step = 2.0
    while grid.v[-1] < V_MAX - 0.5 * PANEL and not beta * (grid.g[-1] - g_ref) > Y_STOP:
        grid = _extend_grid(grid, grid.v[0], grid.v[-1] + step)
        step *= 2.0
    return grid


def _spline(grid: _Grid, v: np.ndarray, derivative: bool = False):
    r"""Cell index, inside-lattice flag, :math:`\log G` and (optionally) :math:`d\log G/dv` of the spline at ``v``."""
    j = np.floor((v - grid.v[0]) / PANEL)
    inside = (j >= 0) & (j < grid.v.size - 1)
    j = np.clip(j, 0, grid.v.size - 2).astype(np.int64)
    x = v - grid.v[j]
    c0, c1, c2, c3 = grid.coef[0, j], grid.coef[1, j], grid.coef[2, j], grid.coef[3, j]
    log_g = ((c0 * x + c1) * x + c2) * x + c3
    slope = ((3.0 * c0 * x + 2.0 * c1) * x + c2) if derivative else None
    return j, inside, log_g, slope


def _gaps(grid: _Grid, v: np.ndarray) -> np.ndarray:
    """Gaps at logits ``v``: the spline in verified cells, ``gap_ppf`` elsewhere."""
    v = np.asarray(v, dtype=float)
    j, inside, log_g, _ = _spline(grid, v)
    out = np.exp(log_g)
    exact = ~(inside & grid.cell_ok[j])
    if np.any(exact):
        out[exact] = grid.law.gap_ppf(special.expit(v[exact]))
    return out


def _density(grid: _Grid, g: np.ndarray, v_start: np.ndarray) -> np.ndarray:
    r"""Gap density :math:`f_G(g) = p(1-p) / (dG/dv)` from the spline, inverted by Newton from ``v_start``.

    Where the inversion does not converge or lands in a cell whose spline
    density was not verified (``dens_ok``), ``gap_pdf`` is called directly.
    """
    target = np.log(g)
    v = np.array(v_start, dtype=float)
    lo, hi = grid.v[0], grid.v[-1]
    for _ in range(_NEWTON_STEPS):
        _, _, log_g, slope = _spline(grid, v, derivative=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.clip(v - (log_g - target) / slope, lo, hi)
    j, inside, log_g, slope = _spline(grid, v, derivative=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = special.expit(v) * special.expit(-v) / (np.exp(log_g) * slope)
    good = inside & grid.dens_ok[j] & (np.abs(log_g - target) <= 1e-13 * np.maximum(1.0, np.abs(target)))
    good &= np.isfinite(f) & (f > 0)
    if not np.all(good):
        f[~good] = grid.law.gap_pdf(g[~good])
    return f


# ---------------------------------------------------------------------------
# Conditional moments of the remainder
# ---------------------------------------------------------------------------


def _moment_sums(y: np.ndarray, w: np.ndarray, n_a: int, n_b: int) -> np.ndarray:
    r""":math:`\sum_k w_k e^{-a y_k} y_k^b` over the last axis, for a = 1..n_a, b = 0..n_b-1.

    ``y >= 0`` and ``w`` of shape ``(rows, k)``; returns ``(rows, n_a, n_b)``.
    """
    y = np.minimum(y, _Y_CAP)
    out = np.empty(y.shape[:-1] + (n_a, n_b))
    for a in range(1, n_a + 1):
        t = np.exp(-a * y) * w
        for b in range(n_b):
            out[..., a - 1, b] = t.sum(axis=-1)
            if b + 1 < n_b:
                t = t * y
    return out


def _shift(moments: np.ndarray, delta: np.ndarray) -> np.ndarray:
    r"""Moments about a reference ``delta`` lower: :math:`e^{-a\delta}\sum_{b'} \binom{b}{b'}\delta^{b-b'} M_{a,b'}`.

    ``moments`` has shape ``(..., n_a, n_b)``, ``delta >= 0`` shape ``(...)``.
    Every term is non-negative, so the shift is exact to rounding.
    """
    delta = np.minimum(np.maximum(delta, 0.0), _Y_CAP)
    n_a, n_b = moments.shape[-2:]
    a = np.arange(1, n_a + 1, dtype=float)
    e = np.exp(-delta[..., None] * a)
    out = np.empty_like(moments)
    d = delta[..., None]
    out[..., 0] = moments[..., 0]
    if n_b > 1:
        out[..., 1] = moments[..., 1] + d * moments[..., 0]
    if n_b > 2:
        out[..., 2] = moments[..., 2] + 2.0 * d * moments[..., 1] + d * d * moments[..., 0]
    return out * e[..., None]


def _subcells(grid: _Grid, beta: float, j_lo: int, j_hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Quadrature of cells ``j_lo..j_hi-1``, each split so that :math:`y` grows by at most ``KAPPA_SUB`` per piece.

    Returns ``(cell, node_g, node_w)``: per piece its lattice cell, and the
    gaps and ``dp``-weights of its Gauss-Legendre nodes (the lattice's exact
    ones for unsplit cells, the verified spline for pieces).
    """
    cells = np.arange(j_lo, j_hi)
    kappa = beta * (grid.g[cells + 1] - grid.g[cells])
    k = np.clip(np.ceil(kappa / KAPPA_SUB), 1, K_TABLE).astype(np.int64)
    if np.all(k == 1):
        return cells, grid.node_g[j_lo:j_hi], grid.node_w[j_lo:j_hi]
    cell = np.repeat(cells, k)
    start = np.repeat(np.cumsum(k) - k, k)
    i = np.arange(cell.size) - start
    width = PANEL / np.repeat(k, k)
    left = grid.v[cell] + i * width
    nodes, weights = _cell_nodes(left, left + width)
    split = np.repeat(k > 1, k)
    node_g = np.empty_like(nodes)
    node_g[split] = _gaps(grid, nodes[split])
    node_g[~split] = grid.node_g[cell[~split]]
    weights[~split] = grid.node_w[cell[~split]]
    return cell, node_g, weights


@dataclass(frozen=True, eq=False)
class _Table:
    """Unnormalized moments at lattice points ``j_lo..j_hi``: ``mom[r]`` (n_a, n_b), ``mass[r] ~ 1 - p``."""

    j_lo: int
    mom: np.ndarray
    mass: np.ndarray


def _table(grid: _Grid, beta: float, j_lo: int, j_hi: int, n_a: int, n_b: int) -> _Table:
    r""":math:`M_{a,b}(t_j) = \sum_{\text{nodes above } t_j} w\, e^{-a y} y^b`, :math:`y = \beta (G - G(t_j))`.

    Direct sums (rows ``j_lo..j_hi`` against the cells above ``j_lo``, each
    split by :func:`_subcells`): differences of gaps, no cancellation.  Cells
    where :math:`y > Y_{\mathrm{STOP}}` for every row add nothing but their
    mass.
    """
    rows = np.arange(j_lo, j_hi + 1)
    n_cells = grid.v.size - 1
    y_top = beta * (grid.g[j_lo + 1 :] - grid.g[j_hi])
    far = np.flatnonzero(y_top > Y_STOP)
    j_stop = min(n_cells, j_lo + 1 + int(far[0])) if far.size else n_cells
    j_stop = max(j_stop, min(j_hi + 1, n_cells))
    cell, node_g, weights = _subcells(grid, beta, j_lo, j_stop)
    above = np.repeat(cell, GL_ORDER)[None, :] >= rows[:, None]
    y = beta * (node_g.ravel()[None, :] - grid.g[rows][:, None])
    y = np.where(above, np.maximum(y, 0.0), _Y_CAP)
    w = weights.ravel()
    mom = np.concatenate(
        [_moment_sums(y[i : i + _ROW_BLOCK], w[None, :], n_a, n_b) for i in range(0, rows.size, _ROW_BLOCK)]
    )
    near_mass = np.where(above, w[None, :], 0.0).sum(axis=1)
    mass = near_mass + grid.tail_mass[j_stop]
    return _Table(j_lo=j_lo, mom=mom, mass=mass)


def _partial_cells(
    grid: _Grid,
    beta: float,
    v_p: np.ndarray,
    g_p: np.ndarray,
    j_next: np.ndarray,
    tab: _Table,
    k: int,
    n_a: int,
    n_b: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Moments from the partial cell ``[v_P, t_{j+1}]`` (split into ``k`` pieces) plus the shifted table row."""
    kappa = beta * np.maximum(grid.g[j_next] - g_p, 0.0)
    part = np.empty((v_p.size, n_a, n_b))
    part_mass = np.empty(v_p.size)
    block = max(1, _BLOCK_ELEMENTS // (k * GL_ORDER))
    for i in range(0, v_p.size, block):
        sl = slice(i, i + block)
        edges = v_p[sl, None] + (grid.v[j_next[sl]] - v_p[sl])[:, None] * (np.arange(k + 1) / k)
        nodes, weights = _cell_nodes(edges[:, :-1], edges[:, 1:])
        nodes, weights = nodes.reshape(nodes.shape[0], -1), weights.reshape(weights.shape[0], -1)
        y = beta * (_gaps(grid, nodes) - g_p[sl, None])
        part[sl] = _moment_sums(np.maximum(y, 0.0), weights, n_a, n_b)
        part_mass[sl] = weights.sum(axis=1)
    r = j_next - tab.j_lo
    return part + _shift(tab.mom[r], kappa), part_mass + tab.mass[r]


def _laguerre(grid: _Grid, beta: float, v_p: np.ndarray, g_p: np.ndarray, n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Moments where :math:`y` rises fast above :math:`P`: Gauss-Laguerre in :math:`y = \beta (g - G_P)`.

    .. math::
        (1-P)\,m_{a,b} = \frac{1}{\beta}\int_0^\infty e^{-a y} y^b f_G(G_P + y/\beta)\,dy
        \approx \frac{1}{\beta a^{b+1}} \sum_k \omega_k \xi_k^b f_G\bigl(G_P + \xi_k/(a\beta)\bigr),

    valid when :math:`f_G` is smooth on the scale :math:`1/\beta` (which is
    what a fast rise of :math:`y` in :math:`v` means) and
    :math:`\beta (g_{\max} - G_P) \ge` ``Y_STOP``.  The density comes from
    the verified spline (:func:`_density`), so that slow ``gap_pdf``
    implementations are called only where the spline is not trusted.
    """
    a = np.arange(1, n_a + 1, dtype=float)
    g = g_p[:, None, None] + _LAG_X[None, None, :] / (a[None, :, None] * beta)
    # Newton start: the spline's tangent at v_P
    _, _, _, slope_p = _spline(grid, v_p, derivative=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        v0 = v_p[:, None, None] + np.log(g / g_p[:, None, None]) / slope_p[:, None, None]
    v0 = np.where(np.isfinite(v0), v0, v_p[:, None, None])
    f = _density(grid, g, v0)
    mom = np.empty((v_p.size, n_a, n_b))
    for b in range(n_b):
        mom[:, :, b] = (f * (_LAG_W * _LAG_X**b)).sum(axis=2) / (beta * a ** (b + 1))
    return mom, special.expit(-v_p)


@_overflow_is_capped
def _moments_at(
    grid: _Grid, beta: float, v_p: np.ndarray, g_p: np.ndarray, n_a: int, n_b: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""Conditional moments :math:`m_{a,b}(P)` at per-draw :math:`v_P = \operatorname{logit} P`.

    Where :math:`y` rises slowly across the cell above :math:`P`: the partial
    cell ``[v_P, t_{j+1}]`` by Gauss-Legendre plus the table at
    :math:`t_{j+1}` shifted down to :math:`G(P)` (positive terms only: exact to
    quadrature accuracy even when the sums are dominated by far-away keys).
    Where it rises by more than ``KAPPA_LAGUERRE`` across that cell:
    :func:`_laguerre`.  Returns ``(m, mass)`` with ``m`` of shape
    ``(draws, n_a, n_b)`` (divided by the mass :math:`\approx 1 - P`).
    """
    j = np.clip(np.floor((v_p - grid.v[0]) / PANEL).astype(np.int64), 0, grid.v.size - 2)
    j_next = j + 1
    kappa = beta * (grid.g[j_next] - g_p)
    gmax = grid.law.reference - grid.law.lower
    lag = (kappa > KAPPA_LAGUERRE) & (beta * (gmax - g_p) >= Y_STOP)
    mom = np.empty((v_p.size, n_a, n_b))
    mass = np.empty(v_p.size)
    if np.any(lag):
        mom[lag], mass[lag] = _laguerre(grid, beta, v_p[lag], g_p[lag], n_a, n_b)
    cell = ~lag
    if np.any(cell):
        tab = _table(grid, beta, int(j_next[cell].min()), int(j_next[cell].max()), n_a, n_b)
        # pieces per partial cell, rounded up to a power of two: one vectorized pass per group
        pieces = np.clip(np.ceil(np.maximum(kappa, 0.0) / KAPPA_SUB), 1, K_PARTIAL)
        pieces = 2 ** np.ceil(np.log2(pieces)).astype(np.int64)
        for k in np.unique(pieces[cell]):
            sel = cell & (pieces == k)
            mom[sel], mass[sel] = _partial_cells(grid, beta, v_p[sel], g_p[sel], j_next[sel], tab, int(k), n_a, n_b)
    return mom / mass[:, None, None], mass
