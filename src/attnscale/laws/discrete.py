r"""A finite set of keys: :class:`Empirical` (no density, so no exact score law)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from .._validate import InputError, InputTypeError, RngLike, as_generator, check_matrix, check_n
from ..tails import ScoreTail
from .base import KeyLaw, ScoreLaw
from .sphere import _read_only

__all__ = ["Empirical"]

@dataclass(frozen=True, eq=False)
class Empirical(KeyLaw):
    r"""A finite set of keys, resampled with replacement.

    Keys may have any norms (real keys need not lie on the sphere).  An
    empirical law has no density, so it has no exact score law: its score tail
    must be estimated from data (``estimate.py``).

    Examples
    --------
    >>> law = Empirical([[1.0, 0.0], [0.0, 2.0]])
    >>> law.sample(3, rng=0).shape
    (3, 2)
    """

    keys: np.ndarray
    d: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        keys = check_matrix(self.keys, "keys")
        if keys.shape[1] < 2:
            raise InputError(f"keys: got shape {keys.shape}; expected at least 2 columns (d >= 2)")
        object.__setattr__(self, "keys", _read_only(keys))
        object.__setattr__(self, "d", int(self.keys.shape[1]))

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        g = as_generator(rng)
        rows = g.integers(0, self.keys.shape[0], size=check_n(n))
        return self.keys[rows]

    def score_law(self, q: ArrayLike) -> ScoreLaw:
        raise InputTypeError(
            "score_law: an Empirical law has no density, so no exact score law; "
            "estimate the score tail from the scores <q, keys> instead (attnscale.estimate)"
        )

    def score_tail(self, q: ArrayLike) -> ScoreTail:
        raise InputTypeError(
            "score_tail: an Empirical law has no exact score tail; "
            "estimate it from the scores <q, keys> (attnscale.estimate)"
        )
