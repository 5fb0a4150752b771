"""Tests of attnscale.runtime.parallel: seeds, engines, resumable runs and a real ``kill -9``."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # worker processes inherit sys.path (spawn)
    sys.path.insert(0, str(TESTS_DIR))

import _tasks  # noqa: E402

from rich.console import Console  # noqa: E402

from attnscale.runtime.parallel import (  # noqa: E402
    DaskExecutor,
    ProcessExecutor,
    SerialExecutor,
    local_dask_cluster,
    make_executor,
    progress_display,
    run_tasks,
    task_seeds,
)
from attnscale.runtime.store import STORE_VERSION, ResultStore  # noqa: E402

SEED = 20240611


def _configs(n, marker_dir=None, sleep=0.0, size=4):
    return [
        {"id": i, "size": size + i % 3, "sleep": sleep, "marker_dir": str(marker_dir) if marker_dir else ""}
        for i in range(n)
    ]


def _calls(marker_dir):
    """Task ids of the calls of normal_task recorded in marker_dir (one file per call)."""
    return sorted(int(p.name.split("-")[0]) for p in Path(marker_dir).iterdir())


def _expected(configs, seed=SEED):
    """The results computed directly, task by task, from SeedSequence(seed).spawn."""
    children = np.random.SeedSequence(seed).spawn(len(configs))
    out = []
    for cfg, child in zip(configs, children):
        x = np.random.default_rng(child).standard_normal(cfg["size"])
        out.append((np.full(cfg["size"], cfg["id"]), x))
    return out


def _assert_tables(tables, configs, seed=SEED):
    assert len(tables) == len(configs)
    for t, (ids, x) in zip(tables, _expected(configs, seed)):
        assert t.column("id").to_numpy().tolist() == ids.tolist()
        assert np.array_equal(t.column("x").to_numpy(), x)  # bit-identical


# -------------------------------------------------------------------------- seeds


def test_task_seeds_are_spawned_children_keyed_by_index():
    seeds = task_seeds(5, 4)
    ref = np.random.SeedSequence(5).spawn(4)
    assert [s.entropy for s in seeds] == [5] * 4
    assert [s.spawn_key for s in seeds] == [(i,) for i in range(4)] == [r.spawn_key for r in ref]
    assert task_seeds(5, 10)[3].generate_state(4).tolist() == seeds[3].generate_state(4).tolist()
    assert task_seeds(6, 1)[0].generate_state(4).tolist() != seeds[0].generate_state(4).tolist()
    assert task_seeds(5, 0) == []


@pytest.mark.parametrize(("seed", "n", "exc"), [(-1, 2, ValueError), (1.5, 2, ValueError), (1, -1, ValueError), ("x", 1, ValueError)])
def test_task_seeds_rejects_bad_arguments(seed, n, exc):
    with pytest.raises(exc, match="seed: got|n: got"):
        task_seeds(seed, n)


# ---------------------------------------------------------------------- executors


def test_make_executor_choices_and_errors():
    assert isinstance(make_executor(workers=1), SerialExecutor)
    ex = make_executor(workers=3)
    assert isinstance(ex, ProcessExecutor) and ex.workers == 3
    default = make_executor()
    cpus = os.cpu_count() or 1
    assert isinstance(default, SerialExecutor) if cpus == 1 else default.workers == cpus
    with pytest.raises(ValueError, match="workers: got 0"):
        make_executor(workers=0)
    with pytest.raises(ValueError, match="give one of them"):
        make_executor(workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="scheduler: got 'localhost:8786'"):
        make_executor(scheduler="localhost:8786")
    with pytest.raises(TypeError, match="scheduler: got int"):
        make_executor(scheduler=8786)


def test_missing_dask_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r"attnscale\[dask\]"):
        make_executor(scheduler="tcp://127.0.0.1:8786")


# -------------------------------------------------------------------- run_tasks


def test_results_follow_config_order_and_seeds(tmp_path):
    configs = _configs(5)
    tables = run_tasks(_tasks.normal_task, configs, ResultStore(tmp_path), None, SEED, quiet=True)
    _assert_tables(tables, configs)
    nostore = run_tasks(_tasks.normal_task, configs, None, SerialExecutor(), SEED, quiet=True)
    assert all(a.equals(b) for a, b in zip(tables, nostore))
    other = run_tasks(_tasks.normal_task, configs, None, None, SEED + 1, quiet=True)
    assert not any(a.equals(b) for a, b in zip(tables, other))


def test_rerun_skips_finished_tasks(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    store = ResultStore(tmp_path / "store")
    configs = _configs(6, marks)
    first = run_tasks(_tasks.normal_task, configs, store, None, SEED, name="exp", quiet=True)
    assert _calls(marks) == list(range(6)) and len(store.keys("exp")) == 6
    second = run_tasks(_tasks.normal_task, configs, store, None, SEED, name="exp", quiet=True)
    assert _calls(marks) == list(range(6))  # nothing recomputed
    assert all(a.equals(b) for a, b in zip(first, second))
    # Lose two results: exactly those two are recomputed, with the same numbers.
    keys = store.keys()
    store.discard([keys[1], keys[4]])
    third = run_tasks(_tasks.normal_task, configs, store, None, SEED, name="exp", quiet=True)
    assert len(_calls(marks)) == 8 and len(store.keys("exp")) == 6
    _assert_tables(third, configs)
    # The stored record names the function, the config, the seed, the task index and the store version.
    records = sorted((store.load_config(k) for k in store.keys()), key=lambda r: r["task"])
    assert records[2] == {"fn": "_tasks.normal_task", "config": configs[2], "seed": SEED, "task": 2,
                          "store_version": STORE_VERSION}
    assert store.load_all("exp").num_rows == sum(c["size"] for c in configs)


def test_task_sees_plain_python_config():
    cfg = {"a": np.int64(1), "b": np.float32(0.5), "c": (1, 2), "d": np.bool_(False)}
    (t,) = run_tasks(_tasks.type_names, [cfg], None, None, 0, quiet=True)
    assert dict(zip(t.column("key").to_pylist(), t.column("type").to_pylist())) == {
        "a": "int", "b": "float", "c": "list", "d": "bool",
    }


def test_bad_task_results_and_failures(tmp_path):
    with pytest.raises(TypeError, match="fn: task 0 .* returned dict; expected a pyarrow.Table"):
        run_tasks(_tasks.not_a_table, _configs(2), None, None, SEED, quiet=True)
    store = ResultStore(tmp_path)
    configs = [{**c, "fail": 2} for c in _configs(4)]
    with pytest.raises(RuntimeError, match="task 2 failed on purpose"):
        run_tasks(_tasks.fail_on_id, configs, store, None, SEED, quiet=True)
    assert len(store.keys()) == 2  # the tasks finished before the failure are kept
    with pytest.raises(TypeError, match="configs: got dict"):
        run_tasks(_tasks.normal_task, {"id": 1}, None, None, SEED)
    with pytest.raises(TypeError, match=r"configs\[1\]: got int"):
        run_tasks(_tasks.normal_task, [{"id": 1}, 3], None, None, SEED)
    with pytest.raises(TypeError, match="store: got str"):
        run_tasks(_tasks.normal_task, [], "dir", None, SEED)
    with pytest.raises(TypeError, match="executor: got int"):
        run_tasks(_tasks.normal_task, [], None, 2, SEED)
    with pytest.raises(ValueError, match="seed: got -3"):
        run_tasks(_tasks.normal_task, [], None, None, -3)


def test_same_results_for_one_and_two_workers_and_process_pool_errors(tmp_path):
    configs = _configs(7)
    one = run_tasks(_tasks.normal_task, configs, ResultStore(tmp_path / "w1"), make_executor(workers=1), SEED, quiet=True)
    with make_executor(workers=2) as ex:
        two = run_tasks(_tasks.normal_task, configs, ResultStore(tmp_path / "w2"), ex, SEED, quiet=True)
        # An error in a worker propagates; the pool stays usable afterwards.
        with pytest.raises(RuntimeError, match="task 3 failed on purpose"):
            run_tasks(_tasks.fail_on_id, [{**c, "fail": 3} for c in configs], None, ex, SEED, quiet=True)
        again = run_tasks(_tasks.normal_task, configs, None, ex, SEED, quiet=True)
    _assert_tables(one, configs)
    assert all(a.equals(b) for a, b in zip(one, two))
    assert all(a.equals(b) for a, b in zip(one, again))


def test_same_results_on_dask_local_cluster(tmp_path):
    import distributed  # the dask extra (needed by the test run)
    configs = _configs(5)
    before = os.environ.get("OMP_NUM_THREADS")
    with local_dask_cluster(n_workers=2, threads_per_worker=1) as cluster:
        assert os.environ.get("OMP_NUM_THREADS") == before  # pre-spawn-environ was {}
        with make_executor(scheduler=cluster.scheduler_address) as ex:
            assert isinstance(ex, DaskExecutor) and ex.client.scheduler.address.startswith("tcp://127.0.0.1:")
            by_address = run_tasks(_tasks.normal_task, configs, ResultStore(tmp_path), ex, SEED, quiet=True)
            env = ex.client.run(_tasks.environ, "OMP_NUM_THREADS")
            assert len(env) == 2 and set(env.values()) == {before}
        with distributed.Client(cluster, set_as_default=False) as client:
            ex = DaskExecutor(client)
            by_client = run_tasks(_tasks.normal_task, configs, None, ex, SEED, quiet=True)
            with pytest.raises(RuntimeError, match="task 1 failed on purpose"):
                run_tasks(_tasks.fail_on_id, [{**c, "fail": 1} for c in configs], None, ex, SEED, quiet=True)
            ex.close()  # a client given by the caller stays open
            assert client.status == "running"
    _assert_tables(by_address, configs)
    assert all(a.equals(b) for a, b in zip(by_address, by_client))


# ----------------------------------------------------------------------- progress


def test_progress_bars_one_per_run_counting_stored_tasks(tmp_path):
    store = ResultStore(tmp_path)
    configs = _configs(5)
    run_tasks(_tasks.normal_task, configs[:2], store, None, SEED, name="p", quiet=True)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with progress_display(console=console) as progress:
        assert not progress.disable
        run_tasks(_tasks.normal_task, configs[:2], store, None, SEED, name="p", progress=progress, description="alpha")
        run_tasks(_tasks.normal_task, configs, store, None, SEED, name="p", progress=progress, description="beta")
    assert [(t.description, t.completed, t.total) for t in progress.tasks] == [("alpha", 2, 2), ("beta", 5, 5)]
    text = screen.getvalue()
    assert "alpha" in text and "beta" in text and "5/5" in text and "eta" in text
    with progress_display(quiet=True, console=Console(file=io.StringIO(), force_terminal=True)) as quiet:
        assert quiet.disable
    with progress_display() as default:  # stderr is captured by pytest: not a terminal
        assert default.disable
    with pytest.raises(TypeError, match="progress: got bool"):
        run_tasks(_tasks.normal_task, configs, None, None, SEED, progress=True)


# ------------------------------------------------------------------ real kill -9

CHILD = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {tests!r})
    import _tasks
    from attnscale.runtime.parallel import make_executor, run_tasks
    from attnscale.runtime.store import ResultStore

    if __name__ == "__main__":
        root, configs_file, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
        configs = json.load(open(configs_file))
        with make_executor(workers=workers) as ex:
            run_tasks(_tasks.normal_task, configs, ResultStore(root), ex, {seed}, name="kill", quiet=True)
    """
)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to signal 0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")


def _run_child(script, root, configs_file, workers=2, **kwargs):
    cmd = [sys.executable, str(script), str(root), str(configs_file), str(workers)]
    return subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def test_kill_minus_9_then_rerun_equals_uninterrupted_run(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(TESTS_DIR), seed=SEED))
    marks = tmp_path / "marks"
    marks.mkdir()
    configs = _configs(12, marks, sleep=0.15)
    configs_file = tmp_path / "configs.json"
    configs_file.write_text(json.dumps(configs))
    killed_root, clean_root = tmp_path / "killed", tmp_path / "clean"

    child = _run_child(script, killed_root, configs_file)
    try:
        deadline = time.monotonic() + 60
        while len(ResultStore(killed_root).keys()) < 3:
            assert child.poll() is None, child.stdout.read().decode()
            assert time.monotonic() < deadline, "child made no progress"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
        done_at_kill = set(ResultStore(killed_root).keys())
        assert 3 <= len(done_at_kill) < len(configs)
        # The orphaned pool workers exit by themselves (after at most the task in hand).
        worker_pids = {int(p.name.split("-")[1]) for p in marks.iterdir()}
        assert child.pid not in worker_pids and 1 <= len(worker_pids) <= 2
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in worker_pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in worker_pids), "pool workers outlived their killed parent"
        first_calls = {p.name for p in marks.iterdir()}
    finally:
        try:  # leave nothing behind from the session this test started
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # Resume to completion; only the tasks not stored at the kill are run again.
    resumed = _run_child(script, killed_root, configs_file)
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out.decode()
    store = ResultStore(killed_root)
    finished_ids = {store.load_config(k)["task"] for k in done_at_kill}
    rerun_ids = sorted(int(p.name.split("-")[0]) for p in marks.iterdir() if p.name not in first_calls)
    assert rerun_ids == sorted(set(range(len(configs))) - finished_ids)

    uninterrupted = _run_child(script, clean_root, configs_file)
    out, _ = uninterrupted.communicate(timeout=120)
    assert uninterrupted.returncode == 0, out.decode()

    # Same keys, same tables, no duplicates, nothing recomputed when read back.
    n_calls = len(list(marks.iterdir()))
    assert store.keys() == ResultStore(clean_root).keys() and len(store.keys("kill")) == len(configs)
    got = run_tasks(_tasks.normal_task, configs, store, None, SEED, name="kill", quiet=True)
    ref = run_tasks(_tasks.normal_task, configs, ResultStore(clean_root), None, SEED, name="kill", quiet=True)
    assert len(list(marks.iterdir())) == n_calls
    assert all(a.equals(b) for a, b in zip(got, ref))
    _assert_tables(got, configs)
    ids = store.load_all("kill").column("id").to_numpy()
    assert np.bincount(ids).tolist() == [c["size"] for c in configs]
    assert not [p for p in os.listdir(killed_root) if not p.endswith(".parquet")]
