"""Parallel execution of independent tasks, with per-task seeds and a resumable store.

Three engines behind one small interface (:class:`Executor`):

* :class:`SerialExecutor`: runs tasks one after another in this process;
* :class:`ProcessExecutor`: a local pool of worker processes
  (:class:`concurrent.futures.ProcessPoolExecutor`, started with ``spawn``);
* :class:`DaskExecutor`: a Dask distributed cluster, given by its scheduler
  address (``tcp://host:port``) or an existing ``distributed.Client``
  (the optional ``dask`` extra: ``pip install 'attnscale[dask]'``).

:func:`make_executor` picks one from ``--workers``/``--scheduler``-style
arguments.  :func:`run_tasks` runs a task function over a list of configs:
task ``i`` gets the ``i``-th child of ``SeedSequence(seed)`` (:func:`task_seeds`),
so its numbers depend only on ``(seed, i, config)``, never on the engine or the
number of workers; finished tasks are saved to a :class:`~attnscale.runtime.store.ResultStore`
as soon as they complete and skipped on a re-run, so a killed run loses only the
tasks in flight.

This module implements the "Randomness" and "Results store" conventions of
DESIGN.md; it contains no mathematics.
"""

from __future__ import annotations

import abc
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, contextmanager
from typing import Any, cast

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .._validate import InputError, InputTypeError, check_int
from .progress import wants_progress
from .store import STORE_VERSION, ResultStore, normalize_config, task_key

__all__ = [
    "DaskExecutor",
    "Executor",
    "ProcessExecutor",
    "SerialExecutor",
    "local_dask_cluster",
    "make_executor",
    "progress_display",
    "run_tasks",
    "task_seeds",
]

TaskFn = Callable[[dict[str, Any], np.random.SeedSequence], pa.Table]

#: Dask setting applied wherever attnscale starts Dask workers: no thread-limiting
#: environment (``OMP_NUM_THREADS=1`` etc.), which makes NumPy workers slower.
DASK_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ": {}}

_DASK_MISSING = "Dask distributed is not installed; install the extra: pip install 'attnscale[dask]'"


# -------------------------------------------------------------------------- seeds


def task_seeds(seed: int, n: int) -> list[np.random.SeedSequence]:
    """Independent seed sequences of ``n`` tasks: ``SeedSequence(seed).spawn(n)``.

    Child ``i`` is ``SeedSequence(seed, spawn_key=(i,))``: it depends on the task
    index only, not on ``n``, the engine or the number of workers.

    Parameters
    ----------
    seed : int
        Root seed, a non-negative integer.
    n : int
        Number of tasks, ``>= 0``.

    Returns
    -------
    list of numpy.random.SeedSequence

    Examples
    --------
    >>> s = task_seeds(7, 3)
    >>> [c.spawn_key for c in s]
    [(0,), (1,), (2,)]
    >>> np.random.default_rng(s[2]).random() == np.random.default_rng(task_seeds(7, 5)[2]).random()
    True
    """
    seed = check_int(seed, "seed", minimum=0)
    n = check_int(n, "n", minimum=0)
    return np.random.SeedSequence(seed).spawn(n)


# ---------------------------------------------------------------------- executors


class Executor(abc.ABC):
    """Runs independent calls ``fn(*args)`` and yields results as they complete.

    Use as a context manager, or call :meth:`close` when done.  ``fn`` must be a
    picklable top-level function for the process and Dask engines.
    """

    #: Engine name: ``"serial"``, ``"process"`` or ``"dask"``.
    engine: str = ""

    @abc.abstractmethod
    def imap_unordered(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
        """Yield ``(i, fn(*calls[i]))`` for every ``i``, in order of completion.

        An exception raised by a call propagates; calls not yet started are
        then cancelled (also when the caller stops iterating early).
        """

    def close(self) -> None:
        """Release workers and connections (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Runs every call in this process, in order; no pool, no pickling.

    Examples
    --------
    >>> list(SerialExecutor().imap_unordered(pow, [(2, 3), (3, 2)]))
    [(0, 8), (1, 9)]
    """

    engine = "serial"

    def __repr__(self) -> str:
        return "SerialExecutor()"

    def imap_unordered(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
        for i, args in enumerate(calls):
            yield i, fn(*args)


class ProcessExecutor(Executor):
    """A local pool of ``workers`` processes, started on first use and kept until :meth:`close`.

    Workers are started with ``spawn`` (safe with threads in the parent, such as
    a progress display) and exit by themselves when the parent process dies,
    so a ``kill -9`` of the parent leaves no orphans behind.

    Parameters
    ----------
    workers : int
        Number of worker processes, ``>= 1``.

    Examples
    --------
    >>> with ProcessExecutor(2) as ex:
    ...     sorted(ex.imap_unordered(pow, [(2, 3), (3, 2)]))
    [(0, 8), (1, 9)]
    """

    engine = "process"

    def __init__(self, workers: int) -> None:
        self.workers = check_int(workers, "workers", minimum=1)
        self._pool: ProcessPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"ProcessExecutor(workers={self.workers})"

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(os.getpid(), max(1, (os.cpu_count() or 1) // self.workers)),
            )
        return self._pool

    def imap_unordered(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
        pool = self._get_pool()
        pending = {}
        try:
            for i, args in enumerate(calls):
                pending[pool.submit(fn, *args)] = i
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    yield i, fut.result()
        except BrokenProcessPool:
            self._pool = None  # a worker died: start a fresh pool next time
            raise
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


#: Environment variables that size the thread pools of OpenMP, BLAS, numba and torch in a worker.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _init_worker(parent_pid: int, threads: int) -> None:
    """Pool-worker initializer: share the cores among the workers, and exit with the parent.

    Each of ``w`` workers gets ``cores // w`` threads for OpenMP, BLAS, numba and torch (set before
    they are imported; BLAS already loaded is limited through threadpoolctl), so
    ``w`` workers do not each start a pool as large as the machine: on 2 cores the quick report
    spent twice the CPU of a serial run without this.
    """
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    _exit_with_parent(parent_pid)


def _exit_with_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Pool-worker initializer: exit when the parent process is gone (it was killed).

    On POSIX an orphan is re-parented, so ``os.getppid()`` changes; on Windows it
    does not, and orphaned workers stay until their pipes break.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="attnscale-parent-watch", daemon=True).start()


def _import_distributed(what: Any) -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"scheduler: got {what!r}; {_DASK_MISSING}") from exc
    return distributed


class DaskExecutor(Executor):
    """Runs tasks on a Dask distributed cluster.

    Parameters
    ----------
    scheduler : str or distributed.Client
        The scheduler's address (``"tcp://host:port"``; also ``tls://``,
        ``inproc://``), or an existing client, which is left open by :meth:`close`.

    Notes
    -----
    Workers started outside attnscale (``dask worker tcp://...``) should run
    with ``DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON='{}'``, as
    :func:`local_dask_cluster` does, or NumPy is limited to one thread per worker.
    """

    engine = "dask"

    def __init__(self, scheduler: Any) -> None:
        distributed = _import_distributed(scheduler)
        if isinstance(scheduler, str):
            if "://" not in scheduler:
                raise InputError(
                    f"scheduler: got {scheduler!r}; expected a Dask scheduler address such as 'tcp://127.0.0.1:8786'"
                )
            self._client = distributed.Client(scheduler, set_as_default=False)
            self._owned = True
        elif isinstance(scheduler, distributed.Client):
            self._client = scheduler
            self._owned = False
        else:
            raise InputTypeError(
                f"scheduler: got {type(scheduler).__name__}; expected an address 'tcp://host:port' or a distributed.Client"
            )
        self._as_completed = distributed.as_completed

    def __repr__(self) -> str:
        where = "closed" if self._client is None else repr(self._client.scheduler.address)
        return f"DaskExecutor({where})"

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` in use."""
        return self._client

    def imap_unordered(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> Iterator[tuple[int, Any]]:
        futures = [self._client.submit(fn, *args, pure=False) for args in calls]
        index = {fut.key: i for i, fut in enumerate(futures)}
        remaining = set(index)
        try:
            for fut in self._as_completed(futures, loop=self._client.loop):
                i = index[fut.key]
                result = fut.result()
                remaining.discard(fut.key)
                yield i, result
        finally:
            left = [f for f in futures if f.key in remaining]
            if left:
                self._client.cancel(left)

    def close(self) -> None:
        if self._owned and self._client is not None:
            self._client.close()
            self._client = None


def local_dask_cluster(n_workers: int = 2, threads_per_worker: int = 1, **kwargs: Any) -> Any:
    """Start a ``distributed.LocalCluster`` on loopback, without thread-limiting worker environment.

    Applies :data:`DASK_WORKER_CONFIG` while the workers are created.  Close the
    returned cluster when done (it is a context manager).

    Parameters
    ----------
    n_workers, threads_per_worker : int
        Worker processes and threads per worker, ``>= 1``.
    **kwargs
        Passed on to ``LocalCluster`` (overriding the defaults
        ``processes=True, host="127.0.0.1", dashboard_address=None``).
    """
    n_workers = check_int(n_workers, "n_workers", minimum=1)
    threads_per_worker = check_int(threads_per_worker, "threads_per_worker", minimum=1)
    distributed = _import_distributed("local cluster")
    import dask

    options = {"processes": True, "host": "127.0.0.1", "dashboard_address": None, **kwargs}
    with dask.config.set(DASK_WORKER_CONFIG):
        return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, **options)


def make_executor(workers: int | None = None, scheduler: Any = None) -> Executor:
    """The executor for ``--workers N`` / ``--scheduler ADDRESS``.

    Parameters
    ----------
    workers : int, optional
        Local worker processes; default ``os.cpu_count()``.  ``1`` runs every
        task in this process (:class:`SerialExecutor`).
    scheduler : str or distributed.Client, optional
        A Dask scheduler address or client (:class:`DaskExecutor`); then
        ``workers`` must not be given.

    Examples
    --------
    >>> make_executor(workers=1)
    SerialExecutor()
    >>> make_executor(workers=4)
    ProcessExecutor(workers=4)
    """
    if scheduler is not None:
        if workers is not None:
            raise InputError(
                f"workers: got {workers!r} with scheduler {scheduler!r}; give one of them "
                "(a Dask cluster has its own workers)"
            )
        return DaskExecutor(scheduler)
    n = (os.cpu_count() or 1) if workers is None else check_int(workers, "workers", minimum=1)
    return SerialExecutor() if n == 1 else ProcessExecutor(n)


# ----------------------------------------------------------------------- progress


@contextmanager
def progress_display(quiet: bool = False, console: Console | None = None) -> Iterator[Progress]:
    """A rich progress display on stderr: one bar with ETA per ``add_task`` (per experiment).

    It is disabled (draws nothing) when ``quiet`` is true or its console is
    not a terminal (:func:`attnscale.runtime.progress.wants_progress`), e.g. under
    ``--json`` or when stderr goes to a log file.

    Parameters
    ----------
    quiet : bool
        Disable the display.
    console : rich.console.Console, optional
        Where to draw; default stderr.

    Examples
    --------
    >>> with progress_display(quiet=True) as progress:
    ...     bar = progress.add_task("demo", total=2)
    ...     progress.advance(bar, 2)
    >>> progress.disable, progress.tasks[0].completed
    (True, 2)
    """
    if console is None:
        console = Console(stderr=True)
        disable = not wants_progress(not quiet)
    else:
        disable = bool(quiet) or not console.is_terminal
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
    )
    with progress:
        yield progress


# -------------------------------------------------------------------------- tasks


def run_tasks(
    fn: TaskFn,
    configs: Sequence[Mapping[str, Any]],
    store: ResultStore | None,
    executor: Executor | None,
    seed: int,
    *,
    name: str | None = None,
    progress: Progress | None = None,
    description: str = "tasks",
    quiet: bool = False,
) -> list[pa.Table]:
    r"""Run ``fn(config_i, seed_i)`` for every config, resuming from and saving to ``store``.

    Task ``i`` is identified by the record

    .. math:: \{\texttt{fn}: \text{module.qualname},\ \texttt{config}: c_i,\ \texttt{seed}: s,\ \texttt{task}: i,
              \ \texttt{store\_version}: v\}

    (:data:`~attnscale.runtime.store.STORE_VERSION` :math:`v`: bumped when the records change
    meaning, e.g. when task functions move, so that an old store is never misread) whose :func:`~attnscale.runtime.store.task_key` (prefixed by ``name``) is its key in
    the store.  A finished task is loaded; the others are submitted to the
    executor, each with the seed sequence ``task_seeds(seed, len(configs))[i]``,
    and each result is saved the moment it arrives, so that interrupting the
    run (even with ``kill -9``) loses only the tasks in flight.  The results are
    identical for every engine and number of workers.

    Parameters
    ----------
    fn : callable
        ``fn(config: dict, seed: numpy.random.SeedSequence) -> pyarrow.Table``; a
        picklable top-level function.  It receives the normalized config
        (plain Python types, tuples as lists; see
        :func:`~attnscale.runtime.store.normalize_config`).
    configs : sequence of Mapping
        JSON-able task configs.
    store : ResultStore or None
        Where results are looked up and saved; None: compute everything, save nothing.
    executor : Executor or None
        Engine (:func:`make_executor`); None runs in this process.
    seed : int
        Root seed, a non-negative integer.
    name : str, optional
        Key prefix, e.g. the experiment's name (:meth:`ResultStore.load_all` selects by it).
    progress : rich.progress.Progress, optional
        A display (:func:`progress_display`) to add this run's bar to, e.g. one
        shared by every experiment of a report; default a display of its own.
    description : str
        Label of the progress bar, e.g. the experiment's name.
    quiet : bool
        When ``progress`` is None: no display of its own.

    Returns
    -------
    list of pyarrow.Table
        The tables of the tasks, in the order of ``configs``.

    Examples
    --------
    >>> import tempfile
    >>> from attnscale.runtime.store import ResultStore
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = ResultStore(tmp.name)
    >>> tables = run_tasks(_demo_task, [{"size": 2}, {"size": 3}], store, None, seed=1, quiet=True)
    >>> [t.num_rows for t in tables], len(store.keys())
    ([2, 3], 2)
    >>> again = run_tasks(_demo_task, [{"size": 2}, {"size": 3}], store, None, seed=1, quiet=True)
    >>> all(a.equals(b) for a, b in zip(tables, again))  # loaded from the store
    True
    >>> tmp.cleanup()
    """
    if not callable(fn):
        raise InputTypeError(f"fn: got {type(fn).__name__}; expected a function fn(config, seed) -> pyarrow.Table")
    if isinstance(configs, (str, bytes, Mapping)) or not isinstance(configs, Sequence):
        raise InputTypeError(f"configs: got {type(configs).__name__}; expected a sequence (list) of config mappings")
    if store is not None and not isinstance(store, ResultStore):
        raise InputTypeError(f"store: got {type(store).__name__}; expected a ResultStore or None")
    if executor is not None and not isinstance(executor, Executor):
        raise InputTypeError(f"executor: got {type(executor).__name__}; expected an Executor (see make_executor) or None")
    seeds = task_seeds(seed, len(configs))
    seed = int(seed)
    plain = [normalize_config(c, f"configs[{i}]") for i, c in enumerate(configs)]
    fn_name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    records = [
        {"fn": fn_name, "config": c, "seed": seed, "task": i, "store_version": STORE_VERSION} for i, c in enumerate(plain)
    ]
    keys = [task_key(r, name=name) for r in records]

    results: list[pa.Table | None] = [None] * len(configs)
    todo = []
    for i, key in enumerate(keys):
        if store is not None and store.has(key):
            results[i] = store.load(key)
        else:
            todo.append(i)

    def execute(display: Progress) -> None:
        bar = display.add_task(description, total=len(configs), completed=len(configs) - len(todo))
        if not todo:
            return
        engine = executor if executor is not None else SerialExecutor()
        calls = [(plain[i], seeds[i]) for i in todo]
        with closing(engine.imap_unordered(fn, calls)) as done:
            for j, table in done:
                i = todo[j]
                if not isinstance(table, pa.Table):
                    raise InputTypeError(
                        f"fn: task {i} (config {plain[i]!r}) returned {type(table).__name__}; expected a pyarrow.Table"
                    )
                if store is not None:
                    store.save(keys[i], table, records[i])
                results[i] = table
                display.advance(bar)

    if progress is None:
        with progress_display(quiet=quiet) as own:
            execute(own)
    else:
        if not isinstance(progress, Progress):
            raise InputTypeError(f"progress: got {type(progress).__name__}; expected a rich.progress.Progress or None")
        execute(progress)
    return cast(list[pa.Table], results)  # every entry is set: loaded or computed above


def _demo_task(config: dict[str, Any], seed: np.random.SeedSequence) -> pa.Table:
    """A tiny task for the examples: ``config["size"]`` standard normal draws."""
    x = np.random.default_rng(seed).standard_normal(int(config["size"]))
    return pa.table({"x": x})

