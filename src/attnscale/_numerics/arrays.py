"""The one array-or-scalar pair (convert an input once, shape an output once), and JSON floats."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["as_float_array", "as_output", "finite_or_none"]


def as_float_array(values: Any) -> np.ndarray:
    """``values`` as a float64 array (0-d for a scalar).

    Examples
    --------
    >>> as_float_array(2).shape, as_float_array([1, 2]).dtype
    ((), dtype('float64'))
    """
    return np.asarray(values, dtype=float)


def as_output(values: np.ndarray | float) -> Any:
    """A Python ``float`` for a 0-d result (array or scalar), the array otherwise.

    Examples
    --------
    >>> as_output(np.asarray(0.5)), as_output(np.array([0.5])).shape
    (0.5, (1,))
    """
    return float(values) if np.ndim(values) == 0 else values


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float for JSON, or None (null) when it is None, NaN or infinite.

    Examples
    --------
    >>> finite_or_none(np.float64(0.5)), finite_or_none(float("inf")), finite_or_none(None)
    (0.5, None, None)
    """
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
