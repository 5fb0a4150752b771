"""Tests of attnscale.runtime.store: canonical keys, atomic saves, temp-file cleanup, tables."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from attnscale.runtime import store as store_mod
from attnscale.runtime.store import (
    ResultStore,
    canonical_json,
    normalize_config,
    table_from_columns,
    table_to_columns,
    task_key,
)


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


def _temp_name(key: str, host: str, pid: int) -> str:
    return f".{key}~{host}~{pid}~deadbeef.tmp"


def _sample_table() -> pa.Table:
    return table_from_columns({"d": 3, "x": np.array([0.1, 2.5e-300, -1e300]), "k": np.arange(3)})


# --------------------------------------------------------------------------- keys


def test_key_is_sha256_of_independently_written_canonical_text():
    config = {"law": "uniform", "n": 1000, "beta": 0.1 + 0.2, "cs": [0.5, 2], "opt": {"z": None, "a": True}}
    text = '{"beta":0.30000000000000004,"cs":[0.5,2],"law":"uniform","n":1000,"opt":{"a":true,"z":null}}'
    assert canonical_json(config) == text
    assert task_key(config) == hashlib.sha256(text.encode("ascii")).hexdigest()
    assert task_key(config, name="phase") == "phase-" + hashlib.sha256(text.encode("ascii")).hexdigest()


def test_key_ignores_dict_order_and_scalar_types():
    a = {"d": 3, "beta": 2.5, "cs": [0.5, 1.0], "flag": True, "inner": {"x": 1, "y": [1, 2]}}
    b = {
        "inner": {"y": (np.int32(1), np.int64(2)), "x": np.uint8(1)},
        "flag": np.bool_(True),
        "cs": np.array([0.5, 1.0]),
        "beta": np.float64(2.5),
        "d": np.int64(3),
    }
    c = {"cs": (np.float32(0.5), 1.0), "beta": np.float32(2.5), "inner": {"x": 1, "y": [1, 2]}, "d": 3, "flag": True}
    assert task_key(a) == task_key(b) == task_key(c)
    assert normalize_config(b) == a


def test_key_changes_with_any_value_and_keeps_int_and_float_apart():
    base = {"d": 3, "beta": 2.5, "cs": [0.5, 1.0]}
    k = task_key(base)
    assert task_key({**base, "beta": np.nextafter(2.5, 3.0)}) != k
    assert task_key({**base, "cs": [1.0, 0.5]}) != k
    assert task_key({**base, "d": 3.0}) != k
    assert task_key({**base, "extra": None}) != k
    assert task_key(base, name="a") != task_key(base, name="b")


def test_canonical_json_round_trips_float64_exactly():
    rng = np.random.default_rng(20240601)
    xs = np.concatenate([rng.standard_normal(500) * 10.0 ** rng.integers(-300, 300, 500), [5e-324, 1.7976931348623157e308, -0.0]])
    back = json.loads(canonical_json({"x": xs}))["x"]
    assert np.array_equal(np.array(back).view(np.int64), xs.view(np.int64))


@pytest.mark.parametrize(
    ("config", "exc", "text"),
    [
        ({"beta": float("nan")}, ValueError, "config['beta']"),
        ({"c": [1.0, np.inf]}, ValueError, "config['c'][1]"),
        ({1: "a"}, TypeError, "string keys"),
        ({"f": object()}, TypeError, "config['f']"),
        ({"s": {1, 2}}, TypeError, "config['s']"),
    ],
)
def test_bad_configs_raise_naming_the_entry(config, exc, text):
    with pytest.raises(exc, match=text.replace("[", r"\[").replace("]", r"\]")):
        task_key(config)


def test_bad_config_and_name_types():
    with pytest.raises(TypeError, match="config: got list"):
        task_key([("a", 1)])
    with pytest.raises(ValueError, match="name: got '../x'"):
        task_key({"a": 1}, name="../x")
    with pytest.raises(ValueError, match="name: got ''"):
        task_key({"a": 1}, name="")


# ------------------------------------------------------------------------- tables


def test_table_from_columns_broadcasts_scalars_and_round_trips():
    t = _sample_table()
    assert t.column_names == ["d", "x", "k"]
    cols = table_to_columns(t)
    assert cols["d"].tolist() == [3, 3, 3]
    assert cols["x"].dtype == np.float64 and cols["x"].tolist() == [0.1, 2.5e-300, -1e300]
    assert table_from_columns({"a": 1.5}).num_rows == 1
    assert table_from_columns({"s": np.array(["p", "q"])}).column("s").to_pylist() == ["p", "q"]


def test_table_from_columns_rejects_bad_columns():
    with pytest.raises(ValueError, match="same length"):
        table_from_columns({"a": np.zeros(2), "b": np.zeros(3)})
    with pytest.raises(ValueError, match=r"columns\['a'\]: got shape \(2, 2\)"):
        table_from_columns({"a": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="non-empty mapping"):
        table_from_columns({})
    with pytest.raises(TypeError, match="object array"):
        table_from_columns({"a": [object()]})
    with pytest.raises(TypeError, match="pyarrow.Table"):
        table_to_columns({"a": 1})


# -------------------------------------------------------------------------- store


def test_save_load_round_trip_with_config_in_metadata(tmp_path):
    store = ResultStore(tmp_path / "s")
    key = task_key({"d": 3}, name="exp")
    table = _sample_table().replace_schema_metadata({b"user": b"kept"})
    config = {"d": np.int64(3), "cs": (0.5, 2.0)}
    assert not store.has(key) and key not in store and len(store) == 0
    store.save(key, table, config)
    assert store.has(key) and key in store and store.keys() == [key] and len(store) == 1
    loaded = store.load(key)
    assert loaded.equals(table)
    assert loaded.schema.metadata == {b"user": b"kept"}
    assert store.load_config(key) == {"d": 3, "cs": [0.5, 2.0]}
    # The file itself carries the config and key (provenance without attnscale).
    meta = pq.read_schema(store.path(key)).metadata
    assert json.loads(meta[b"attnscale.config"]) == {"cs": [0.5, 2.0], "d": 3}
    assert meta[b"attnscale.key"] == key.encode()
    assert sorted(os.listdir(store.root)) == [key + ".parquet"]  # no temp file left


def test_save_twice_replaces_whole_file(tmp_path):
    store = ResultStore(tmp_path)
    key = task_key({"a": 1})
    store.save(key, table_from_columns({"x": np.arange(5.0)}), {"a": 1})
    store.save(key, table_from_columns({"x": np.arange(2.0)}), {"a": 1})
    assert store.load(key).column("x").to_pylist() == [0.0, 1.0]
    assert os.listdir(store.root) == [key + ".parquet"]


def test_missing_key_and_bad_key(tmp_path):
    store = ResultStore(tmp_path)
    with pytest.raises(KeyError, match="not in the store"):
        store.load(task_key({"a": 1}))
    with pytest.raises(KeyError, match="not in the store"):
        store.load_config(task_key({"a": 1}))
    for bad in ("../evil", ".hidden", "a/b", "", 12):
        with pytest.raises(ValueError, match="key: got"):
            store.has(bad)
        assert bad not in store
    with pytest.raises(TypeError, match="table: got dict"):
        store.save("k", {"x": [1]}, {})
    with pytest.raises(ValueError, match=r"config\['x'\]"):
        store.save("k", _sample_table(), {"x": float("nan")})
    assert store.keys() == []


def test_bad_root(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        ResultStore(f)
    with pytest.raises(TypeError, match="root: got int"):
        ResultStore(3)


def test_killed_writer_temp_file_is_invisible_then_cleaned(tmp_path):
    key = task_key({"task": 1})
    store = ResultStore(tmp_path)
    host = store_mod._host()
    # A writer killed mid-write: half a Parquet file under a temp name, never renamed.
    good = tmp_path / "good.parquet.bin"
    pq.write_table(_sample_table(), good)
    data = good.read_bytes()
    good.unlink()
    dead = tmp_path / _temp_name(key, host, _dead_pid())
    dead.write_bytes(data[: len(data) // 2])
    live = tmp_path / _temp_name(key, host, os.getpid())  # a writer still running
    live.write_bytes(data[:10])
    other = tmp_path / _temp_name(key, "some-other-host", _dead_pid())  # cannot tell: keep
    other.write_bytes(data[:10])
    assert not store.has(key) and store.keys() == [] and store.load_all().num_columns == 0
    with pytest.raises(KeyError):
        store.load(key)
    reopened = ResultStore(tmp_path)
    assert not dead.exists() and live.exists() and other.exists()
    assert reopened.keys() == []
    reopened.save(key, _sample_table(), {"task": 1})
    assert reopened.keys() == [key] and reopened.load(key).equals(_sample_table())


def test_failed_rename_leaves_nothing(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    key = task_key({"task": 2})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(store_mod.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.save(key, _sample_table(), {"task": 2})
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    key = task_key({"task": 3})

    def partial_write(table, where, **kwargs):
        where.write(b"PAR1 half a file")
        raise KeyboardInterrupt  # interrupted mid-write

    monkeypatch.setattr(store_mod.pq, "write_table", partial_write)
    with pytest.raises(KeyboardInterrupt):
        store.save(key, _sample_table(), {"task": 3})
    assert os.listdir(tmp_path) == []


def test_load_all_by_name_and_schema_mismatch(tmp_path):
    store = ResultStore(tmp_path)
    for i in range(3):
        store.save(task_key({"i": i}, name="a"), table_from_columns({"i": i, "x": np.arange(2.0)}), {"i": i})
    store.save(task_key({"i": 0}, name="a-b"), table_from_columns({"i": 9, "x": np.arange(4.0)}), {"i": 0})
    store.save(task_key({"i": 0}), table_from_columns({"y": np.arange(1.0)}), {"i": 0})
    assert len(store.keys("a")) == 3 and len(store.keys("a-b")) == 1 and len(store.keys()) == 5
    a = store.load_all("a")
    assert a.num_rows == 6 and sorted(set(a.column("i").to_pylist())) == [0, 1, 2]
    assert store.load_all("a-b").column("i").to_pylist() == [9] * 4
    assert store.load_all("none").num_rows == 0
    with pytest.raises(ValueError, match="different schemas"):
        store.load_all()
    store.discard(store.keys("a"))
    assert store.keys("a") == []
