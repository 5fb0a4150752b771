"""The one place that runs experiments: their tasks through the store and the executor.

:func:`run_experiment` makes the single :func:`~attnscale.runtime.parallel.run_tasks` call of an
experiment (store prefix and progress label: its ``NAME``; root seed: ``config["seed"]``) and
reduces the task tables to the experiment's table.  :func:`run_experiments` owns the results
store and the executor of a whole report: it opens them, runs the experiments (overlapping them
on a pool of workers) and yields their tables in page order.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, cast

import pyarrow as pa

from ._protocol import Config, Experiment

__all__ = ["Finished", "experiment_module", "run_experiment", "run_experiments"]

#: Experiments whose tasks are submitted first when experiments overlap: the longest (measured), so
#: that the pool never waits on one long task at the end.
START_FIRST = ("real_heads", "tail_classes", "output_law", "finite_n", "critical_exponent", "heat")


class Finished(NamedTuple):
    """One experiment's run: its module, its configuration, its table and the seconds it took."""

    name: str
    module: Experiment
    config: Config
    table: pa.Table
    seconds: float


def experiment_module(name: str) -> Experiment:
    """The module of the experiment ``name`` (one of :data:`~attnscale.experiments.EXPERIMENTS`).

    Examples
    --------
    >>> experiment_module("supercritical").NAME
    'supercritical'
    """
    from . import EXPERIMENTS

    if name not in EXPERIMENTS:
        from .._validate import InputError

        raise InputError(f"name: got {name!r}; expected one of {', '.join(EXPERIMENTS)}")
    return cast(Experiment, importlib.import_module(f"attnscale.experiments.{name}"))


def run_experiment(
    experiment: Experiment,
    config: Mapping[str, Any],
    store: Any = None,
    executor: Any = None,
    progress: Any = None,
) -> pa.Table:
    """The experiment's table: its tasks run (or loaded from ``store``), then reduced.

    Parameters
    ----------
    experiment : Experiment
        An experiment module.
    config : Mapping
        Its configuration (``experiment.config(quick, seed)``, possibly overridden); ``config["seed"]``
        is the root seed of the tasks.
    store : attnscale.runtime.store.ResultStore, optional
        Where finished tasks are looked up and saved; None: compute everything, save nothing.
    executor : attnscale.runtime.parallel.Executor, optional
        The engine; None runs in this process.
    progress : rich.progress.Progress, optional
        A display to add this experiment's bar to (default: none).

    Returns
    -------
    pyarrow.Table
        ``experiment.reduce(config, tables)``.

    Examples
    --------
    >>> from attnscale.experiments import supercritical as exp
    >>> cfg = exp.config(quick=True, seed=0) | {"gammas": [1.0], "cs": [8.0], "draws": 200, "chunks": 1}
    >>> run_experiment(exp, cfg).num_rows > 0
    True
    """
    from ..runtime.parallel import run_tasks

    config = config if isinstance(config, Config) else Config(config)
    specs = experiment.tasks(config)
    tables = run_tasks(
        experiment.task,
        specs,
        store,
        executor,
        config["seed"],
        name=experiment.NAME,
        progress=progress,
        description=experiment.NAME,
        quiet=progress is None,
    )
    return experiment.reduce(config, tables)


def run_experiments(
    names: Sequence[str],
    *,
    quick: bool,
    seed: int,
    store_dir: str | os.PathLike[str],
    workers: int | None = None,
    scheduler: Any = None,
    quiet: bool = False,
) -> Iterator[Finished]:
    """Run the experiments ``names`` through one results store and one executor; yield them in order.

    The store lives in ``store_dir`` (a re-run skips every finished task); the executor is
    :func:`~attnscale.runtime.parallel.make_executor` ``(workers, scheduler)``, closed when the
    generator ends; one progress display (on a terminal, unless ``quiet``) shows a bar per experiment.

    With a pool of workers (process or Dask engine) every experiment's tasks are submitted at
    once, from one thread per experiment (longest first, :data:`START_FIRST`), so the experiments
    overlap and no worker idles at the end of one; the tables are yielded in the order of
    ``names`` as they are ready.  In-process (serial) runs go one experiment at a time.  The
    results do not depend on this: each task's seed and stored result depend on its spec only.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ..runtime.parallel import SerialExecutor, make_executor, progress_display
    from ..runtime.store import ResultStore

    modules = {name: experiment_module(name) for name in names}
    store = ResultStore(store_dir)
    executor = make_executor(workers=workers, scheduler=scheduler)

    def timed(name: str, progress: Any) -> Finished:
        t0 = time.monotonic()
        module = modules[name]
        config = module.config(quick=quick, seed=seed)
        table = run_experiment(module, config, store, executor, progress)
        return Finished(name, module, config, table, time.monotonic() - t0)

    try:
        with progress_display(quiet=quiet) as progress:
            if isinstance(executor, SerialExecutor) or len(names) == 1:
                for name in names:
                    yield timed(name, progress)
                return
            order = [e for e in START_FIRST if e in names] + [e for e in names if e not in START_FIRST]
            threads = ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="attnscale-report")
            try:
                futures = {name: threads.submit(timed, name, progress) for name in order}
                for name in names:
                    yield futures[name].result()
            except BaseException:
                # an error, Ctrl-C or a closed generator: do not wait for the other experiments
                threads.shutdown(wait=False, cancel_futures=True)
                raise
            threads.shutdown(wait=True)
    finally:
        executor.close()
