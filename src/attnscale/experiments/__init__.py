"""One module per claim of the theory: ``run -> table``, ``figure``, ``check``.

Every experiment module defines

- ``NAME`` (store prefix), ``TITLE`` and ``SECTION`` (of docs/theory.md);
- ``config(quick: bool, seed: int) -> dict``: the Monte Carlo sizes of the quick and full runs;
- ``run(config, store, executor, progress=None) -> pyarrow.Table``: tasks through
  :func:`attnscale.parallel.run_tasks`, so results are stored, resumable and independent of the
  number of workers;
- ``figure(table) -> matplotlib.figure.Figure``;
- ``check(table) -> list[Claim]``.

This package is the only place that knows about the results store and the executor.
"""

from __future__ import annotations

from ._claims import STATEMENTS, Claim

#: The experiments of the report, in the order of the page.
EXPERIMENTS = (
    "phase_diagram",
    "critical_exponent",
    "critical_law",
    "subcritical",
    "supercritical",
    "finite_n",
    "large_d",
    "output_law",
    "heat",
    "tail_classes",
    "real_heads",
)

__all__ = ["EXPERIMENTS", "STATEMENTS", "Claim"]
