"""Argument validation and random-number handling shared by every module.

Every public function validates its arguments here, once, and raises an
:class:`InputError` (a ``ValueError``) or an :class:`InputTypeError` (a
``TypeError`` and an :class:`InputError`) whose message names the argument, the
value it got and what is allowed.  Private kernels trust their inputs.  The
command line reports an :class:`InputError` as bad input (one line, exit 2) and
any other exception as a bug (exit 1).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ._errors import InputError, InputTypeError

RngLike = np.random.Generator | int | np.random.SeedSequence | None

#: Largest context length accepted anywhere (THEORY 4: n up to 1e18).
MAX_N = 10**18

#: Tolerance on ``|x| = 1`` for vectors that must lie on the unit sphere.
SPHERE_TOL = 1e-6


def as_generator(rng: RngLike) -> np.random.Generator:
    """Normalize ``rng`` (Generator, int seed, SeedSequence or None) to a Generator.

    Examples
    --------
    >>> g = as_generator(0)
    >>> isinstance(g, np.random.Generator)
    True
    >>> as_generator(g) is g
    True
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if int(rng) < 0:
            raise InputError(f"rng: got seed {rng}; a seed must be a non-negative integer")
        return np.random.default_rng(int(rng))
    raise InputTypeError(
        f"rng: got {type(rng).__name__}; expected a numpy Generator, an int seed, a SeedSequence or None"
    )


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0:
            return _real(value.item(), name)
        raise InputTypeError(f"{name}: got {value!r} ({type(value).__name__}); expected a real number")
    return float(value)


def check_finite(value: Any, name: str) -> float:
    """Return ``value`` as a float, rejecting NaN and infinities."""
    x = _real(value, name)
    if not math.isfinite(x):
        raise InputError(f"{name}: got {value!r}; expected a finite number")
    return x


def check_positive(value: Any, name: str) -> float:
    """Return ``value`` as a finite float > 0."""
    x = check_finite(value, name)
    if x <= 0:
        raise InputError(f"{name}: got {value!r}; expected a finite number > 0")
    return x


def check_nonnegative(value: Any, name: str) -> float:
    """Return ``value`` as a finite float >= 0."""
    x = check_finite(value, name)
    if x < 0:
        raise InputError(f"{name}: got {value!r}; expected a finite number >= 0")
    return x


def check_beta(beta: Any, name: str = "beta") -> float:
    """Inverse temperature: finite and >= 0."""
    return check_nonnegative(beta, name)


def check_int(value: Any, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` as an int in ``[minimum, maximum]``.

    Integers and integer-valued floats are accepted (``1e6`` is one million);
    text is not: the command line parses spellings such as ``"1e6"``
    (:func:`attnscale.cli.parsing.parse_count`) before the library sees them.

    Examples
    --------
    >>> check_int(1e6, "n")
    1000000
    >>> check_int(1e18, "n", maximum=MAX_N)
    1000000000000000000
    >>> check_int("1e6", "n")
    Traceback (most recent call last):
    ...
    attnscale._errors.InputTypeError: n: got '1e6' (str); expected an integer, not text
    """
    if isinstance(value, str):
        raise InputTypeError(f"{name}: got {value!r} (str); expected an integer, not text")
    if isinstance(value, bool):
        raise InputTypeError(f"{name}: got {value!r}; expected an integer")
    if isinstance(value, numbers.Integral):
        out = int(value)
    elif isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            raise InputError(f"{name}: got {value!r}; expected a finite integer")
        if x != math.floor(x):
            raise InputError(f"{name}: got {value!r}; expected an integer")
        out = int(x)
    else:
        raise InputTypeError(f"{name}: got {value!r} ({type(value).__name__}); expected an integer")
    if out < minimum:
        raise InputError(f"{name}: got {value!r}; expected an integer >= {minimum}")
    if maximum is not None and out > maximum:
        raise InputError(f"{name}: got {value!r}; expected an integer <= {maximum:.0e}")
    return out


def check_n(n: Any, name: str = "n") -> int:
    """Context length: an integer in ``[1, 1e18]``."""
    return check_int(n, name, minimum=1, maximum=MAX_N)


def check_dimension(d: Any, name: str = "d") -> int:
    """Ambient dimension of the sphere S^{d-1}: an integer >= 2."""
    return check_int(d, name, minimum=2)


def check_vector(x: Any, name: str, d: int | None = None) -> np.ndarray:
    """A finite 1-D float64 array (of length ``d`` when given)."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name}: got {type(x).__name__}; expected a 1-D array of real numbers") from None
    if arr.ndim != 1:
        raise InputError(f"{name}: got shape {arr.shape}; expected a 1-D vector")
    if d is not None and arr.shape[0] != d:
        raise InputError(f"{name}: got length {arr.shape[0]}; expected length {d}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: contains NaN or infinite entries")
    return arr


def check_unit_vector(x: Any, name: str, d: int | None = None, tol: float = SPHERE_TOL) -> np.ndarray:
    """A vector on the unit sphere (``| |x| - 1 | <= tol``), returned renormalized."""
    arr = check_vector(x, name, d)
    if arr.shape[0] < 2:
        raise InputError(f"{name}: got length {arr.shape[0]}; expected a vector in R^d with d >= 2")
    norm = float(np.linalg.norm(arr))
    if abs(norm - 1.0) > tol:
        raise InputError(f"{name}: has norm {norm:.6g}; expected a unit vector (norm 1 within {tol:g})")
    return arr / norm


def check_matrix(x: Any, name: str, cols: int | None = None) -> np.ndarray:
    """A finite 2-D float64 array (with ``cols`` columns when given)."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name}: got {type(x).__name__}; expected a 2-D array of real numbers") from None
    if arr.ndim != 2:
        raise InputError(f"{name}: got shape {arr.shape}; expected a 2-D array")
    if cols is not None and arr.shape[1] != cols:
        raise InputError(f"{name}: got shape {arr.shape}; expected {cols} columns")
    if arr.shape[0] < 1:
        raise InputError(f"{name}: is empty; expected at least one row")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: contains NaN or infinite entries")
    return arr


def check_on_sphere(keys: np.ndarray, name: str = "keys", tol: float = SPHERE_TOL) -> None:
    """Raise unless every row of ``keys`` has unit norm within ``tol``."""
    norms = np.linalg.norm(keys, axis=1)
    bad = np.abs(norms - 1.0) > tol
    if np.any(bad):
        i = int(np.argmax(bad))
        raise InputError(
            f"{name}: row {i} has norm {norms[i]:.6g}; expected unit vectors (norm 1 within {tol:g})"
        )


def check_choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    """A string among ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"{name}: got {value!r}; expected one of {', '.join(allowed)}")
    return value
