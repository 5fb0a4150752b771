"""Results store: one Parquet file per finished task, keyed by a hash of its config.

A task's result is a :class:`pyarrow.Table`.  :meth:`ResultStore.save` writes it
to a hidden temporary file in the store's directory, flushes it to disk
(``fsync``) and renames it into place with :func:`os.replace`, which is atomic on
POSIX and Windows.  A reader therefore sees either no file or the complete file
for a key, never a partial one: a run killed with ``kill -9`` leaves at most a
temporary file behind, which every listing ignores and which the next
:class:`ResultStore` opened on the directory removes.

The key of a task is :func:`task_key`, the SHA-256 of the canonical JSON text of
its config (:func:`canonical_json`), optionally prefixed by a name such as the
experiment's, so that re-running a computation finds the tasks already done.
The config itself is kept in the Parquet schema metadata for provenance
(:meth:`ResultStore.load_config`).

This module implements the "Results store" convention of DESIGN.md; it contains
no mathematics.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
import secrets
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._validate import InputError, InputTypeError

__all__ = [
    "STORE_VERSION",
    "ResultStore",
    "canonical_json",
    "normalize_config",
    "table_from_columns",
    "table_to_columns",
    "task_key",
]

#: Version of the task records hashed into the keys by :func:`attnscale.runtime.parallel.run_tasks`.
#: Version 2: the task functions moved (``attnscale.experiments.<name>.task``) with the runtime
#: package, so their qualified names, part of every record, changed; version 1 had no field.
STORE_VERSION = 2

#: Schema-metadata field holding the task's config (canonical JSON, UTF-8).
CONFIG_FIELD = b"attnscale.config"
#: Schema-metadata field holding the task's key.
KEY_FIELD = b"attnscale.key"

#: File suffix of a finished task.
SUFFIX = ".parquet"
#: Suffix of a temporary file; temporary files also start with a dot.
TEMP_SUFFIX = ".tmp"
#: Separator of the fields of a temporary file's name (never in a key or host name).
_TEMP_SEP = "~"

#: A store key: letters, digits, ``_``, ``.``, ``-``; no leading dot; at most 200 characters.
_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}")
#: A key prefix given to :func:`task_key`.
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}")


# --------------------------------------------------------------------------- keys


def normalize_config(config: Mapping[str, Any], name: str = "config") -> dict[str, Any]:
    """Return ``config`` as plain JSON types: the form that :func:`task_key` hashes.

    Mappings become dicts (keys must be strings), tuples, lists and NumPy arrays
    become lists, NumPy scalars become Python ``bool``/``int``/``float``.
    Integers and floats stay distinct (``1`` and ``1.0`` are different configs).

    Parameters
    ----------
    config : Mapping
        A JSON-able mapping with string keys.
    name : str
        Name of the argument, used in error messages.

    Returns
    -------
    dict
        A new dict of ``None``, ``bool``, ``int``, ``float``, ``str``, lists and dicts.

    Raises
    ------
    TypeError
        If ``config`` is not a mapping, a key is not a string, or a value is not JSON-able.
    ValueError
        If a float is NaN or infinite (JSON has no such numbers).

    Examples
    --------
    >>> normalize_config({"d": np.int64(3), "c": (np.float64(0.5), 2)})
    {'d': 3, 'c': [0.5, 2]}
    """
    if not isinstance(config, Mapping):
        raise InputTypeError(f"{name}: got {type(config).__name__}; expected a mapping with string keys")
    return _normalize(config, name)


def _normalize(value: Any, path: str) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            raise InputError(f"{path}: got {value!r}; expected a finite number (JSON has no NaN or infinity)")
        return x
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InputTypeError(f"{path}: has key {k!r} ({type(k).__name__}); expected string keys")
            out[k] = _normalize(v, f"{path}[{k!r}]")
        return out
    if isinstance(value, np.ndarray):
        return _normalize(value.tolist(), path)
    if isinstance(value, (list, tuple)):
        return [_normalize(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise InputTypeError(
        f"{path}: got {value!r} ({type(value).__name__}); expected None, bool, int, float, str, "
        "a list/tuple/array or a mapping of those"
    )


def canonical_json(config: Mapping[str, Any]) -> str:
    """Canonical JSON text of a config: the text that :func:`task_key` hashes.

    The config is first normalized by :func:`normalize_config`; the text has
    sorted keys, no whitespace and ASCII escapes.  Floats are written with
    Python's shortest round-trip ``repr``, so equal float64 values give equal
    text on every platform, and the text reads back to the same values.

    Examples
    --------
    >>> canonical_json({"n": 1000, "beta": 0.1 + 0.2, "law": "uniform"})
    '{"beta":0.30000000000000004,"law":"uniform","n":1000}'
    """
    plain = normalize_config(config)
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def task_key(config: Mapping[str, Any], name: str | None = None) -> str:
    r"""Key of a task: the SHA-256 of its config's canonical JSON, optionally prefixed.

    .. math:: \mathrm{key} = [\mathrm{name}\,\texttt{-}]\;
              \mathrm{hex}(\mathrm{SHA256}(\mathrm{utf8}(\mathrm{canonical\_json}(\mathrm{config}))))

    The key does not depend on the order of the keys of ``config`` nor on
    whether its numbers are NumPy or Python scalars; any change of a value
    changes it.  This function is stable: stored results stay valid across
    versions of attnscale as long as the configs are the same.

    Parameters
    ----------
    config : Mapping
        A JSON-able mapping with string keys (see :func:`normalize_config`).
    name : str, optional
        A prefix such as the experiment's name (letters, digits, ``_ . -``);
        :meth:`ResultStore.load_all` selects keys by it.

    Returns
    -------
    str
        64 lowercase hex digits, or ``name + "-" +`` those.

    Examples
    --------
    >>> a = task_key({"d": 3, "beta": 2.0})
    >>> a == task_key({"beta": np.float64(2.0), "d": np.int64(3)})
    True
    >>> len(a), task_key({"d": 3}, name="phase")[:6]
    (64, 'phase-')
    """
    digest = hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()
    if name is None:
        return digest
    return f"{_check_name(name)}-{digest}"


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InputError(
            f"name: got {name!r}; expected 1 to 100 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        )
    return name


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise InputError(
            f"key: got {key!r}; expected 1 to 200 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-' (see task_key)"
        )
    return key


def _key_name(key: str) -> str | None:
    """The name prefix of a key made by :func:`task_key`, or None."""
    head, sep, _ = key.rpartition("-")
    return head if sep else None


# ------------------------------------------------------------------------- tables


def table_from_columns(columns: Mapping[str, Any]) -> pa.Table:
    """Build a table from a mapping of column name to 1-D array or scalar.

    Scalars (and 0-d arrays) are repeated to the common length of the array
    columns (length 1 if there are none).  NumPy dtypes are kept.

    Parameters
    ----------
    columns : Mapping[str, array_like or scalar]
        At least one column; every array column must be 1-D and of the same length.

    Returns
    -------
    pyarrow.Table

    Examples
    --------
    >>> t = table_from_columns({"d": 3, "w": np.array([0.5, 0.25])})
    >>> t.column_names, t.num_rows, t.column("d").to_pylist()
    (['d', 'w'], 2, [3, 3])
    """
    if not isinstance(columns, Mapping) or len(columns) == 0:
        raise InputError(f"columns: got {columns!r}; expected a non-empty mapping of name to 1-D array or scalar")
    arrays: dict[str, np.ndarray] = {}
    lengths: dict[str, int] = {}
    for col, value in columns.items():
        if not isinstance(col, str):
            raise InputTypeError(f"columns: has key {col!r} ({type(col).__name__}); expected string column names")
        arr = np.asarray(value)
        if arr.ndim > 1:
            raise InputError(f"columns[{col!r}]: got shape {arr.shape}; expected a 1-D array or a scalar")
        if arr.dtype == object:
            raise InputTypeError(f"columns[{col!r}]: got an object array; expected numbers, booleans or strings")
        arrays[col] = arr
        if arr.ndim == 1:
            lengths[col] = arr.shape[0]
    if len(set(lengths.values())) > 1:
        raise InputError(f"columns: got lengths {lengths}; expected every 1-D column to have the same length")
    n = next(iter(lengths.values())) if lengths else 1
    data = {col: pa.array(np.broadcast_to(arr, (n,)) if arr.ndim == 0 else arr) for col, arr in arrays.items()}
    return pa.table(data)


def table_to_columns(table: pa.Table) -> dict[str, np.ndarray]:
    """Columns of a table as NumPy arrays (copies where Arrow cannot share memory).

    Examples
    --------
    >>> table_to_columns(table_from_columns({"x": np.arange(3.0)}))["x"]
    array([0., 1., 2.])
    """
    if not isinstance(table, pa.Table):
        raise InputTypeError(f"table: got {type(table).__name__}; expected a pyarrow.Table")
    return {name: table.column(name).to_numpy() for name in table.column_names}


# -------------------------------------------------------------------------- store


class ResultStore:
    """A directory of Parquet files, one per finished task.

    Opening a store creates the directory if needed and removes temporary
    files left by writers on this host that are no longer running (a run
    killed in the middle of :meth:`save`).  Temporary files of live writers
    are left alone; all temporary files are invisible to :meth:`has`,
    :meth:`keys`, :meth:`load` and :meth:`load_all`.

    Parameters
    ----------
    root : str or os.PathLike
        Directory of the store.

    Examples
    --------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = ResultStore(tmp.name)
    >>> key = task_key({"d": 3}, name="demo")
    >>> store.has(key)
    False
    >>> store.save(key, table_from_columns({"x": np.array([1.0, 2.0])}), {"d": 3})
    >>> store.has(key), store.load(key).column("x").to_pylist(), store.load_config(key)
    (True, [1.0, 2.0], {'d': 3})
    >>> store.load_all("demo").num_rows
    2
    >>> tmp.cleanup()
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        if not isinstance(root, (str, os.PathLike)):
            raise InputTypeError(f"root: got {type(root).__name__}; expected a path (str or os.PathLike)")
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"root: got {str(root)!r}; it exists and is not a directory")
        self.root.mkdir(parents=True, exist_ok=True)
        self.clean()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.root)!r})"

    # paths ------------------------------------------------------------------
    def path(self, key: str) -> Path:
        """Path of the file of a finished task (it may not exist)."""
        return self.root / (_check_key(key) + SUFFIX)

    def _temp_path(self, key: str) -> Path:
        """A fresh temporary path for ``key``: ``.{key}~{host}~{pid}~{token}.tmp``."""
        fields = (key, _host(), str(os.getpid()), secrets.token_hex(8))
        return self.root / ("." + _TEMP_SEP.join(fields) + TEMP_SUFFIX)

    # queries ----------------------------------------------------------------
    def has(self, key: str) -> bool:
        """Whether the task ``key`` is finished (its file is in place)."""
        return self.path(key).is_file()

    def keys(self, name: str | None = None) -> list[str]:
        """Sorted keys of the finished tasks, all or those made with prefix ``name``."""
        if name is not None:
            _check_name(name)
        out = []
        for entry in os.listdir(self.root):
            if not entry.endswith(SUFFIX):
                continue
            key = entry[: -len(SUFFIX)]
            if not _KEY_RE.fullmatch(key):
                continue  # hidden or foreign file
            if name is None or _key_name(key) == name:
                out.append(key)
        return sorted(out)

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and _KEY_RE.fullmatch(key) is not None and self.has(key)

    # reading ----------------------------------------------------------------
    def load(self, key: str) -> pa.Table:
        """The table of a finished task, without attnscale's schema metadata.

        Raises
        ------
        KeyError
            If the task ``key`` is not in the store.
        """
        path = self.path(key)
        if not path.is_file():
            raise KeyError(f"key: {key!r} is not in the store {str(self.root)!r}")
        table = pq.read_table(path)
        meta = {k: v for k, v in (table.schema.metadata or {}).items() if k not in (CONFIG_FIELD, KEY_FIELD)}
        return table.replace_schema_metadata(meta or None)

    def load_config(self, key: str) -> dict[str, Any]:
        """The config saved with a finished task."""
        path = self.path(key)
        if not path.is_file():
            raise KeyError(f"key: {key!r} is not in the store {str(self.root)!r}")
        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta[CONFIG_FIELD].decode("utf-8"))

    def load_all(self, name: str | None = None) -> pa.Table:
        """Concatenate the tables of all finished tasks, or of those with prefix ``name``.

        Tables are taken in key order.  With no matching task the result is
        an empty table with no columns.

        Raises
        ------
        ValueError
            If the selected tables do not share one schema.
        """
        keys = self.keys(name)
        if not keys:
            return pa.table({})
        tables = [self.load(k) for k in keys]
        try:
            return pa.concat_tables(tables)
        except pa.ArrowInvalid as exc:
            raise ValueError(f"name: the tables of {name!r} have different schemas ({exc})") from None

    # writing ----------------------------------------------------------------
    def save(self, key: str, table: pa.Table, config: Mapping[str, Any]) -> None:
        """Write a finished task's table atomically, with ``config`` in its schema metadata.

        The table goes to a temporary file in the store's directory, which is
        flushed to disk and renamed over ``path(key)`` (:func:`os.replace`).
        Saving a key twice replaces the file with the new, complete one.
        """
        _check_key(key)
        if not isinstance(table, pa.Table):
            raise InputTypeError(f"table: got {type(table).__name__}; expected a pyarrow.Table")
        text = canonical_json(config)
        meta = dict(table.schema.metadata or {})
        meta[CONFIG_FIELD] = text.encode("utf-8")
        meta[KEY_FIELD] = key.encode("utf-8")
        table = table.replace_schema_metadata(meta)
        temp = self._temp_path(key)
        try:
            with open(temp, "xb") as fh:
                pq.write_table(table, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, self.path(key))
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.root)

    def clean(self) -> int:
        """Remove temporary files of dead writers on this host; return how many."""
        removed = 0
        host = _host()
        for entry in os.listdir(self.root):
            if not (entry.startswith(".") and entry.endswith(TEMP_SUFFIX)):
                continue
            fields = entry[1 : -len(TEMP_SUFFIX)].split(_TEMP_SEP)
            if len(fields) != 4 or fields[1] != host or not fields[2].isdigit():
                continue  # not ours, or another host's: leave it (it is ignored anyway)
            if _pid_alive(int(fields[2])):
                continue
            try:
                (self.root / entry).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def discard(self, keys: Iterable[str]) -> None:
        """Delete finished tasks (to force their recomputation)."""
        for key in keys:
            self.path(key).unlink(missing_ok=True)


def _host() -> str:
    host = socket.gethostname() or "localhost"
    return re.sub(r"[^A-Za-z0-9.\-]", "_", host)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (conservative: True when unsure)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk (POSIX; a no-op where directories cannot be opened)."""
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:
        return
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
