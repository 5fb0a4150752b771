"""Picklable task functions for tests/test_parallel.py (worker processes import this module)."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import numpy as np
import pyarrow as pa


def normal_task(config: dict, seed: np.random.SeedSequence) -> pa.Table:
    """``config["size"]`` standard normals from ``seed``, tagged with ``config["id"]``.

    Side effects, for counting calls: when ``config["marker_dir"]`` is set, a file
    ``{id}-{pid}-{token}`` is created there at the start of the call; then the
    call sleeps ``config.get("sleep", 0)`` seconds.
    """
    marker_dir = config.get("marker_dir")
    if marker_dir:
        Path(marker_dir, f"{config['id']}-{os.getpid()}-{secrets.token_hex(4)}").touch()
    time.sleep(float(config.get("sleep", 0.0)))
    size = int(config["size"])
    x = np.random.default_rng(seed).standard_normal(size)
    return pa.table({"id": np.full(size, int(config["id"]), dtype=np.int64), "x": x})


def not_a_table(config: dict, seed: np.random.SeedSequence) -> dict:
    """Returns a dict instead of a table."""
    return {"x": [1.0]}


def fail_on_id(config: dict, seed: np.random.SeedSequence) -> pa.Table:
    """Like :func:`normal_task`, but raises for ``config["id"] == config["fail"]``."""
    if config["id"] == config["fail"]:
        raise RuntimeError(f"task {config['id']} failed on purpose")
    return normal_task(config, seed)


def type_names(config: dict, seed: np.random.SeedSequence) -> pa.Table:
    """Names of the Python types of the config's values (sorted by key)."""
    keys = sorted(config)
    return pa.table({"key": keys, "type": [type(config[k]).__name__ for k in keys]})


def environ(name: str) -> str | None:
    """An environment variable of the calling process."""
    return os.environ.get(name)
