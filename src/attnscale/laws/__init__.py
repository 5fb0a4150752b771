r"""Key laws on the sphere and the exact 1-D laws of their scores ``<q, K>``.

A *key law* draws keys ``K`` (``sample``) and, for a query ``q``, gives the exact
law of the score ``S = <q, K>`` (``score_law``) and its top (``score_tail``).

Score laws are parameterized by the *gap* ``G = r - S >= 0`` below a reference
point ``r`` (``ScoreLaw.reference``: the endpoint ``s*`` of a bounded law, 40 standard
deviations for Gaussian scores, whose ``endpoint`` is ``inf``): the top of the law, where attention lives, is then computed
without cancellation (``1 - <q, K>`` is never formed by subtraction), and
quantiles of probabilities as small as ``1e-300`` stay accurate
(docs/theory.md sections 2 and 4).

The package holds one module per family: ``base`` (the two bases), ``beta``,
``zonal``, ``mixture``, ``discrete``, ``gaussian``, and ``sphere`` (geometry).
"""

from __future__ import annotations

from typing import Any

from .._names import LAW_NAMES, LAW_PARAMS
from .._numerics.special import robust_betaincinv
from .._validate import InputError, check_choice, check_dimension, check_int
from .base import KeyLaw, ScoreLaw
from .beta import BetaScoreLaw, GreatSubsphere, UniformScoreLaw
from .discrete import Empirical
from .gaussian import GaussianKeys, GaussianScoreLaw
from .mixture import Mixture, MixtureScoreLaw
from .sphere import TangentMap, _axis, tangent_basis, uniform_directions
from .zonal import PowerDensity, UniformSphere, VonMisesFisher, ZonalKeyLaw, ZonalScoreLaw

__all__ = [
    "BetaScoreLaw",
    "Empirical",
    "GaussianKeys",
    "GaussianScoreLaw",
    "GreatSubsphere",
    "KeyLaw",
    "Mixture",
    "MixtureScoreLaw",
    "PowerDensity",
    "ScoreLaw",
    "UniformScoreLaw",
    "UniformSphere",
    "VonMisesFisher",
    "ZonalKeyLaw",
    "ZonalScoreLaw",
    "LAW_NAMES",
    "law_from_name",
    "robust_betaincinv",
    "tangent_basis",
    "TangentMap",
    "uniform_directions",
]


def law_from_name(name: str, d: int, **params: Any) -> KeyLaw:
    r"""Build a key law from its command-line name.

    ``uniform``; ``vmf`` (``kappa``, ``mu_axis``: :math:`\mu = e_{mu\_axis}`,
    1-based, default 1); ``subsphere`` (``m``); ``power`` (``eta``); ``gaussian``
    (``sigma``, default 1).  Parameters passed as ``None`` count as not given.

    Examples
    --------
    >>> law_from_name("vmf", 3, kappa=2.0).mu.tolist()
    [1.0, 0.0, 0.0]
    >>> law_from_name("subsphere", 4, m=2)
    GreatSubsphere(d=4, m=2)
    """
    check_choice(name, "law", LAW_NAMES)
    d = check_dimension(d)
    given = {k: v for k, v in params.items() if v is not None}
    allowed = LAW_PARAMS[name]
    extra = sorted(set(given) - set(allowed))
    if extra:
        raise InputError(
            f"{extra[0]}: not a parameter of law {name!r}; allowed: {', '.join(allowed) or 'none'}"
        )
    for key in allowed:
        if key not in given and key not in ("mu_axis", "sigma"):
            raise InputError(f"{key}: required for law {name!r}")
    if name == "uniform":
        return UniformSphere(d)
    if name == "vmf":
        axis = check_int(given.get("mu_axis", 1), "mu_axis", minimum=1, maximum=d)
        return VonMisesFisher(_axis(d, axis - 1), given["kappa"])
    if name == "subsphere":
        return GreatSubsphere(d, given["m"])
    if name == "gaussian":
        return GaussianKeys(d, given.get("sigma", 1.0))
    return PowerDensity(d, given["eta"])
