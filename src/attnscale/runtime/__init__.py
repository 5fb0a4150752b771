"""Orchestration: the results store, the executors and progress display.

- :mod:`attnscale.runtime.store`: one Parquet file per finished task, keyed by a hash of its
  record (:data:`~attnscale.runtime.store.STORE_VERSION` is part of every task's record);
- :mod:`attnscale.runtime.parallel`: per-task seeds, serial, process-pool and Dask engines,
  :func:`~attnscale.runtime.parallel.run_tasks` (resume from the store), the progress display;
- :mod:`attnscale.runtime.progress`: a progress bar for plain loops.

This package contains no mathematics; it imports nothing on import (its modules pull in
pyarrow and rich), so ``import attnscale.runtime`` stays cheap.
"""
