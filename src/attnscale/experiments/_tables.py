"""Reading an experiment's table: its columns as NumPy arrays, and the rows that match."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["columns", "select"]

#: The last table converted by :func:`columns` and its arrays (tables reach ~1e6 rows; the
#: checks and the figure select from the same table many times).
_LAST: list[tuple[pa.Table, dict[str, np.ndarray]]] = []


def columns(table: pa.Table) -> dict[str, np.ndarray]:
    """Every column of ``table`` as a NumPy array (strings as a ``str`` array), converted once per table.

    Examples
    --------
    >>> cols = columns(pa.table({"kind": ["a", "b"], "x": [1.0, 2.0]}))
    >>> cols["kind"].dtype.kind, cols["x"].tolist()
    ('U', [1.0, 2.0])
    """
    for cached, cols in _LAST:
        if cached is table:
            return cols
    cols = {}
    for name in table.column_names:
        arr = table[name].to_numpy(zero_copy_only=False)
        if arr.dtype == object:
            arr = np.asarray(table[name].to_pylist())
        cols[name] = arr
    _LAST[:] = [(table, cols)]
    return cols


def select(table: pa.Table, *, isclose: Collection[str] = (), **equal: Any) -> dict[str, np.ndarray]:
    """The columns of the rows where each named column equals its value (``None``: any value).

    Columns named in ``isclose`` match within a relative 1e-12 (float keys computed twice).

    Examples
    --------
    >>> t = pa.table({"kind": ["a", "b", "a"], "c": [0.5, 0.5, 2.0], "x": [1, 2, 3]})
    >>> select(t, kind="a", c=0.5)["x"].tolist(), select(t, kind="a", c=None)["x"].tolist()
    ([1], [1, 3])
    """
    cols = columns(table)
    sel = np.ones(table.num_rows, dtype=bool)
    for name, value in equal.items():
        if value is None:
            continue
        sel &= np.isclose(cols[name], value, rtol=1e-12) if name in isclose else cols[name] == value
    return {name: col[sel] for name, col in cols.items()}
