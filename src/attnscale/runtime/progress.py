"""Progress bars on stderr (rich), shown only where a person is watching.

A bar appears only when stderr is a terminal, ``enabled`` is true, and the
work is still running after ``delay`` seconds, so short runs, ``--json`` runs
and CI logs stay quiet.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def wants_progress(enabled: bool = True) -> bool:
    """True when a progress bar should be drawn: enabled and stderr is a terminal."""
    return bool(enabled) and sys.stderr.isatty()


def track(items: Iterable[T], total: int, description: str, enabled: bool = True, delay: float = 1.0) -> Iterator[T]:
    """Yield ``items``, drawing a bar with ETA once the loop has run ``delay`` seconds.

    Examples
    --------
    >>> list(track(range(3), 3, "demo", enabled=False))
    [0, 1, 2]
    """
    if not wants_progress(enabled):
        yield from items
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    start = time.monotonic()
    bar: Progress | None = None
    task = None
    done = 0
    try:
        for item in items:
            yield item
            done += 1
            if bar is None and time.monotonic() - start > delay:
                bar = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(),
                    TimeRemainingColumn(),
                    console=Console(file=sys.stderr),
                    transient=False,
                )
                bar.start()
                task = bar.add_task(description, total=total, completed=done)
            elif bar is not None:
                bar.update(task, completed=done)
    finally:
        if bar is not None:
            bar.stop()
