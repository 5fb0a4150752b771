"""The experiment protocol: what every module of :mod:`attnscale.experiments` defines.

An experiment is a module with the attributes and functions of :class:`Experiment`:

- ``NAME`` (store prefix), ``TITLE``, ``SECTION`` (of docs/theory.md), ``STATEMENT`` (the id
  in :data:`~attnscale.experiments.STATEMENTS` of claims that name none, or ``""``),
  ``WHAT_TO_SEE`` (one line under the figure);
- ``config(quick, seed) -> Config``: the Monte Carlo sizes of the quick and full runs;
- ``tasks(config) -> list[dict]``: the JSON-able specs of its independent tasks, in a fixed order
  (task ``i`` gets the ``i``-th child seed, so the order is part of the numbers);
- ``task(spec, seed_seq) -> pyarrow.Table``: one task (a picklable top-level function);
- ``reduce(config, tables) -> pyarrow.Table``: the experiment's table from the task tables
  (:func:`reduce` here, a concatenation, unless the module defines its own);
- ``figure(table) -> matplotlib.figure.Figure`` (built without pyplot);
- ``claims(table) -> list[Claim]``;
- optionally ``tables(table)``: extra HTML tables ``(title, columns, rows)``.

:mod:`attnscale.experiments._runner` runs them (store, executor, the one ``run_tasks`` call).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ._claims import Claim

__all__ = ["Config", "Experiment", "reduce"]


class Config(Mapping[str, Any]):
    """A frozen mapping: an experiment's configuration (no item can be set or deleted).

    ``config | other`` gives a new :class:`Config` with ``other``'s items over this one's
    (how tests shrink a configuration).

    Examples
    --------
    >>> cfg = Config(seed=0, draws=200)
    >>> cfg["draws"], (cfg | {"draws": 50})["draws"], cfg["draws"]
    (200, 50, 200)
    >>> cfg["draws"] = 1
    Traceback (most recent call last):
    ...
    TypeError: 'Config' object does not support item assignment
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None, /, **items: Any) -> None:
        self._data: dict[str, Any] = {**(data or {}), **items}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __or__(self, other: Mapping[str, Any]) -> Config:
        return Config({**self._data, **other})

    def __ror__(self, other: Mapping[str, Any]) -> Config:
        return Config({**other, **self._data})

    def __repr__(self) -> str:
        return f"Config({self._data!r})"


class Experiment(Protocol):
    """The module-level interface of an experiment (see the module docstring).

    Arguments are positional (modules name them as they read best, e.g. ``task(cfg, seed)``).
    """

    NAME: str
    TITLE: str
    SECTION: str
    STATEMENT: str
    WHAT_TO_SEE: str

    def config(self, quick: bool, seed: int, /) -> Config: ...

    def tasks(self, config: Config, /) -> list[dict[str, Any]]: ...

    def task(self, spec: dict[str, Any], seed_seq: np.random.SeedSequence, /) -> pa.Table: ...

    def reduce(self, config: Config, tables: Sequence[pa.Table], /) -> pa.Table: ...

    def figure(self, table: pa.Table, /) -> Figure: ...

    def claims(self, table: pa.Table, /) -> list[Claim]: ...


def reduce(config: Config, tables: Sequence[pa.Table]) -> pa.Table:
    """The default ``reduce``: the task tables concatenated in task order.

    Examples
    --------
    >>> reduce(Config(seed=0), [pa.table({"x": [1]}), pa.table({"x": [2]})])["x"].to_pylist()
    [1, 2]
    """
    return pa.concat_tables(tables)
