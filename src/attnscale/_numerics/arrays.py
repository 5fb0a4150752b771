"""The one array-or-scalar pair: convert an input once, shape an output once."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_float_array", "as_output"]


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
