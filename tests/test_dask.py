"""The Dask executor: a batch on a cluster of 2 worker processes is graded as locally; a worker
killed mid-cell costs nothing but time; a scheduler without workers is waited for, then named;
workers need none of the client's paths; an interrupted Dask batch resumes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support import A1_LECTURE_CHECK, GOOD_DEF, REPO, processes_running, wait_for, write_notebook

from grader.grade.api import grade_batch

pytest.importorskip("distributed", reason="the Dask executor is an optional extra: pip install '.[dask]'")

pytestmark = pytest.mark.kernel

RUBRIC = """
schema = 1
title = "dask"
[data]
source = "digits28"
[execution]
cell_timeout_s = 20
notebook_timeout_s = 60
""" + A1_LECTURE_CHECK

# A cell that starts a marker process and then takes a while: the tests act while it runs.
SLOW_CELL = "import subprocess, time\nsubprocess.Popen(['sleep', '{mark}'])\ntime.sleep({seconds})"
TIMING_KEYS = {"seconds", "graded_at", "cell_seconds", "probe_seconds", "executor", "worker"}


def slow_cell(mark: int, seconds: float) -> str:
    return SLOW_CELL.format(mark=mark, seconds=seconds)


def marker(mark: int) -> bytes:
    return f"sleep\x00{mark}\x00".encode()


def without_timing(value):
    """A report with the fields that may differ between two runs of the same notebook removed."""
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def write_rubric(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "rubric.toml"
    path.write_text(RUBRIC.replace("[execution]\n", "[execution]\n" + extra), "utf-8")
    return path


def test_a_batch_on_a_local_cluster_is_graded_as_locally(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_notebook(folder / "good.ipynb", GOOD_DEF)
    write_notebook(folder / "wrong.ipynb", "def conv_output_size(h, k, padding=0, stride=1):\n    return h")
    write_notebook(folder / "raises.ipynb", "1 / 0", GOOD_DEF)
    rubric = write_rubric(tmp_path)
    local = grade_batch(folder, rubric, tmp_path / "local", jobs=2)
    assert local.executor == "local"
    done: list[str] = []
    on_dask = grade_batch(folder, rubric, tmp_path / "dask", jobs=2, executor="dask",
                          on_done=lambda report: done.append(report.submission))

    assert on_dask.executor == "dask" and on_dask.jobs == 2
    assert sorted(done) == ["good", "raises", "wrong"]  # progress is fed by task completion
    for name in ("good", "wrong", "raises"):
        here = json.loads((tmp_path / "local" / f"{name}.json").read_text())
        there = json.loads((tmp_path / "dask" / f"{name}.json").read_text())
        assert there["execution"]["executor"] == "dask" and there["execution"]["worker"].startswith("tcp://")
        assert without_timing(there) == without_timing(here)
    assert [r.score for r in sorted(on_dask.reports, key=lambda r: r.submission)] == [2, 2, 0]
    gradebook = (tmp_path / "dask" / "grades.csv").read_text()
    assert gradebook.count("\n") == 4 and (tmp_path / "dask" / "_summary.html").is_file()


def _worker_of(pid: int) -> int | None:
    """The worker process (a child of this test process) that `pid` runs under."""
    while pid > 1:
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        if parent == os.getpid():
            return pid
        pid = parent
    return None


def test_a_worker_killed_mid_cell_runs_the_task_again_and_every_report_is_written_once(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_notebook(folder / "a_quick.ipynb", GOOD_DEF)
    write_notebook(folder / "b_slow.ipynb", GOOD_DEF, slow_cell(7931, 4))
    write_notebook(folder / "c_quick.ipynb", GOOD_DEF)
    rubric = write_rubric(tmp_path)
    killed: list[int] = []

    def kill_the_worker_running_b(submission) -> None:
        if submission.id != "b_slow" or killed:
            return
        # The cell runs in a kernel started by a worker process; kill that worker (as a node
        # loss would) while the cell runs.
        assert wait_for(lambda: processes_running(marker(7931)), 60), "b_slow's cell never started"
        worker = _worker_of(processes_running(marker(7931))[0])
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        killed.append(worker)

    done: list[str] = []
    with ThreadPoolExecutor(1) as killer:
        kills = []
        result = grade_batch(folder, rubric, tmp_path / "out", jobs=2, executor="dask",
                             on_start=lambda s: kills.append(killer.submit(kill_the_worker_running_b, s)),
                             on_done=lambda r: done.append(r.submission))
    for kill in kills:
        kill.result()  # an assertion that failed in the killer thread fails the test here
    assert killed, "the worker was never killed"
    assert sorted(done) == ["a_quick", "b_slow", "c_quick"]  # each reported exactly once
    assert {r.submission: r.score for r in result.reports} == {"a_quick": 2, "b_slow": 2, "c_quick": 2}
    slow = json.loads((tmp_path / "out" / "b_slow.json").read_text())
    assert slow["status"] == "graded" and [c["status"] for c in slow["checks"]] == ["pass"]
    log = (tmp_path / "out" / "_grader.log").read_text()
    assert log.count("graded b_slow") == 1
    assert wait_for(lambda: not processes_running(marker(7931)), 10), "a process outlived its worker"


def test_a_notebook_that_kills_its_worker_every_time_gets_a_report_and_the_batch_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    # Without the sandbox the kernel's parent is the worker process itself.
    write_notebook(folder / "killer.ipynb", GOOD_DEF, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")
    write_notebook(folder / "good.ipynb", GOOD_DEF)
    rubric = write_rubric(tmp_path, 'sandbox = "off"\n')
    result = grade_batch(folder, rubric, tmp_path / "out", jobs=2, executor="dask")
    reports = {r.submission: r for r in result.reports}
    assert reports["good"].score == 2 and reports["good"].status == "graded"
    killer = reports["killer"]
    assert killer.status == "error" and killer.score == 0
    assert "Dask worker running this notebook died 3 time(s)" in killer.reason
    rows = (tmp_path / "out" / "grades.csv").read_text().splitlines()
    assert len([row for row in rows if row.startswith("killer,")]) == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_a_scheduler_without_workers_is_waited_for_then_named(tmp_path: Path, monkeypatch) -> None:
    """A scheduler no worker joins: the batch waits the set time, then says how to start workers."""
    from grader.errors import GraderError
    from grader.execute import dask_executor

    monkeypatch.setattr(dask_executor, "WORKER_WAIT_S", 2)
    write_notebook(tmp_path / "in" / "good.ipynb", GOOD_DEF)
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(RUBRIC, "utf-8")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([str(Path(sys.executable).parent / "dask"), "scheduler", "--port", str(port),
                                  "--no-dashboard"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    try:
        with pytest.raises(GraderError, match=f"scheduler at {address} has no workers after 2 s; start some"):
            grade_batch(tmp_path / "in", rubric, tmp_path / "out", executor="dask", scheduler=address)
    finally:
        _stop(scheduler)
    assert not (tmp_path / "out" / "good.json").exists()


def test_workers_started_where_the_clients_paths_do_not_exist(tmp_path: Path) -> None:
    """A scheduler and a worker started apart from the client, the worker in a mount namespace
    where the client's whole temporary folder (submissions, rubric, reports) is an empty tmpfs."""
    client_side = tmp_path / "client"
    folder = client_side / "in"
    write_notebook(folder / "good.ipynb", GOOD_DEF, "import os\nprint(sorted(os.listdir('data')))")
    write_notebook(folder / "wrong.ipynb", "conv_output_size = None")
    rubric = client_side / "rubric.toml"
    rubric.write_text(RUBRIC, "utf-8")
    dask_cli = Path(sys.executable).parent / "dask"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        pytest.fail("bubblewrap is needed to hide the client's folders from the worker (make installs it)")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    elsewhere = tmp_path / "worker-home"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    scheduler = subprocess.Popen([str(dask_cli), "scheduler", "--port", str(port), "--no-dashboard"],
                                 cwd=elsewhere, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    worker = subprocess.Popen(
        [bwrap, "--dev-bind", "/", "/", "--tmpfs", str(client_side), "--die-with-parent", "--chdir", str(elsewhere),
         "--", str(dask_cli), "worker", address, "--nthreads", "1", "--no-dashboard", "--no-nanny"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:  # the worker may join after grading starts: the batch waits for it
        result = grade_batch(folder, rubric, client_side / "out", executor="dask", scheduler=address)
    finally:
        _stop(worker, scheduler)
    scores = {r.submission: r.score for r in result.reports}
    assert scores == {"good": 2, "wrong": 0}
    good = json.loads((client_side / "out" / "good.json").read_text())
    assert good["execution"]["worker"].startswith("tcp://")
    executed = json.loads((client_side / "out" / "good" / "executed.ipynb").read_text())
    printed = "".join(o.get("text", "") for o in executed["cells"][1]["outputs"])
    assert "digits28.npz" in printed  # the data files came from the client, sent to the worker


def test_an_interrupted_dask_batch_stops_its_kernels_and_resumes(tmp_path: Path) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    write_notebook(folder / "a_first.ipynb", GOOD_DEF)
    write_notebook(folder / "b_slow.ipynb", GOOD_DEF, slow_cell(7932, 5))
    write_notebook(folder / "c_last.ipynb", GOOD_DEF)
    rubric = write_rubric(tmp_path)
    batch = subprocess.Popen(
        [sys.executable, "-m", "grader", "grade", str(folder), "--rubric", str(rubric), "--out", str(out),
         "--jobs", "1", "--executor", "dask", "--quiet"], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: processes_running(marker(7932)), 120), "b_slow never started its cell"
        batch.send_signal(signal.SIGTERM)
        _, stderr = batch.communicate(timeout=60)
    finally:
        batch.kill()
    assert batch.returncode == 130 and "--resume" in stderr
    assert (out / "a_first.json").is_file()
    assert not (out / "b_slow.json").exists() and not (out / "c_last.json").exists()
    assert wait_for(lambda: not processes_running(marker(7932)), 10), "the interrupted batch left a kernel behind"

    started: list[str] = []
    result = grade_batch(folder, rubric, out, executor="dask", resume=True,
                         on_start=lambda s: started.append(s.id))
    assert started == ["b_slow", "c_last"] and result.resumed == 1
    assert sorted(r.submission for r in result.reports) == ["a_first", "b_slow", "c_last"]
