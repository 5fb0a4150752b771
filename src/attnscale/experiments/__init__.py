"""One module per claim of the theory, each implementing :class:`~._protocol.Experiment`.

Every experiment module defines (same names everywhere; see :mod:`attnscale.experiments._protocol`)

- ``NAME`` (store prefix), ``TITLE``, ``SECTION`` (of docs/theory.md), ``STATEMENT``, ``WHAT_TO_SEE``;
- ``config(quick: bool, seed: int) -> Config``: the Monte Carlo sizes of the quick and full runs;
- ``tasks(config) -> list[dict]`` and ``task(spec, seed_seq) -> pyarrow.Table``: its independent tasks;
- ``reduce(config, tables) -> pyarrow.Table`` (the default concatenates);
- ``figure(table) -> matplotlib.figure.Figure``;
- ``claims(table) -> list[Claim]``.

:mod:`attnscale.experiments._runner` runs them: it is the only place that knows about the
results store and the executor (:mod:`attnscale.runtime`); :mod:`attnscale.report` presents them.
:mod:`attnscale.experiments.calibration` is the calibration harness of the tail estimator.
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
