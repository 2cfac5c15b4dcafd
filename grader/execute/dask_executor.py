"""Grade on a Dask cluster: each submission is one task that runs the same sandboxed execute-and-
observe pipeline as local grading (LocalKernelExecutor) on a worker; the client scores and writes
every file, exactly as locally.

What crosses the network: the job (the notebook's JSON, the rubric's limits and probe requests,
which hold inputs and hidden *images*, never labels) and, once per worker, the students' data
files as bytes. The hidden labels, the rubric file and the client's folders never leave the client.

Faults: a worker that dies mid-task (killed, out of memory, node lost) makes the scheduler run the
task again elsewhere, up to `distributed.scheduler.allowed-failures` times; after that the
submission gets a report saying so and the batch goes on. Ctrl-C cancels the pending tasks and
kills the running notebooks' sandboxes on every worker.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from grader.data.sources import student_files
from grader.data.student_files import StudentFiles
from grader.errors import ExecutionLostError, GraderError
from grader.execute.base import ExecutionJob, ExecutionResult
from grader.execute.local import LocalKernelExecutor
from grader.execute.sandbox import abort_sandboxes, allow_sandboxes
from grader.rubric.model import DataSpec

log = logging.getLogger(__name__)

EXECUTOR_NAME = "dask"
# How often a local cluster runs a task again after its worker died; a shared cluster's scheduler
# uses its own `distributed.scheduler.allowed-failures` setting.
LOCAL_ALLOWED_FAILURES = 2
RESUBMITS = 2  # a task the scheduler dropped (not failed) is submitted again this often
CONNECT_TIMEOUT_S = 30
# A cluster started just before the grader may have its scheduler up before any worker joined.
WORKER_WAIT_S = 60

WORKER_LOST = ("The Dask worker running this notebook died {attempts} time(s) in a row (the worker "
               "process was killed, ran out of memory, or its machine was lost), so it could not "
               "be graded. If the notebook itself kills its process, that is why; otherwise grade "
               "it again with --resume.")
NO_SCHEDULER = ("cannot reach the Dask scheduler at {address} ({error}); start one (`dask scheduler`) "
                "and its workers (`dask worker {address}`), or leave out --scheduler to grade on a "
                "local cluster")
NO_WORKERS = ("the Dask scheduler at {address} has no workers after {seconds} s; start some with "
              "`dask worker {address}` (each needs the grader, the same torch and bubblewrap installed)")
NO_DASK = "the Dask executor needs the 'distributed' package: pip install 'ex06-grader[dask]'"


def _wait_for_a_worker(client: Any, address: str) -> None:
    """Return once the scheduler has a worker; a GraderError after WORKER_WAIT_S without one."""
    if client.nthreads():
        return
    log.info("waiting up to %d s for a worker to join the Dask scheduler at %s", WORKER_WAIT_S, address)
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_S)
    except TimeoutError:
        raise GraderError(NO_WORKERS.format(address=address, seconds=WORKER_WAIT_S)) from None


class GradingAbortedError(GraderError):
    """The batch was interrupted while this notebook ran on a worker; it gets no report."""


def run_on_worker(job: ExecutionJob, files: StudentFiles) -> ExecutionResult:
    """The task: run one notebook in a sandbox on this worker, with the batch's data files."""
    from distributed import get_worker

    allow_sandboxes()  # a previous batch on this worker may have been aborted
    try:
        result = LocalKernelExecutor().run(replace(job, data=files))
    except KeyboardInterrupt:
        raise GradingAbortedError("the batch was interrupted") from None
    summary = replace(result.summary, executor=EXECUTOR_NAME, worker=get_worker().address)
    return replace(result, summary=summary)


def _abort_on_worker() -> int:
    """Run on every worker when the batch is interrupted: kill its running sandboxes."""
    abort_sandboxes()
    return 0


class DaskExecutor:
    """Runs each job as one task on a cluster; `run` blocks until that task's result is back."""

    name = EXECUTOR_NAME

    def __init__(self, client: Any, files: Any, allowed_failures: int) -> None:
        self.client = client
        self.files = files  # a future of the scattered StudentFiles: sent once per worker
        self.allowed_failures = allowed_failures
        self._running: set[Any] = set()
        self._lock = threading.Lock()
        self._aborted = threading.Event()
        self._serial = itertools.count()

    def run(self, job: ExecutionJob) -> ExecutionResult:
        from distributed.client import FutureCancelledError

        # The data travels once per worker, as the scattered future, not inside every job.
        task = replace(job, data=StudentFiles(()))
        for _ in range(RESUBMITS + 1):
            try:
                return self._run_task(task)
            except FutureCancelledError as error:
                if self._aborted.is_set():  # cancelled by abort(): no report for this notebook
                    raise KeyboardInterrupt from None
                # The scheduler may drop a task whose worker died at an awkward moment.
                log.warning("the cluster dropped the task of %s (%s); submitting it again",
                            job.submission_id, error)
        raise ExecutionLostError(WORKER_LOST.format(attempts=RESUBMITS + 1))

    def _run_task(self, task: ExecutionJob) -> ExecutionResult:
        from distributed import KilledWorker

        if self._aborted.is_set():
            raise KeyboardInterrupt
        key = f"grade-{_key_safe(task.submission_id)}-{next(self._serial)}"
        future = self.client.submit(run_on_worker, task, self.files, key=key, pure=False)
        with self._lock:
            self._running.add(future)
        try:
            return future.result()
        except KilledWorker:
            log.warning("the Dask worker running %s died %d time(s); not graded", task.submission_id,
                        self.allowed_failures + 1)
            raise ExecutionLostError(WORKER_LOST.format(attempts=self.allowed_failures + 1)) from None
        except GradingAbortedError:
            raise KeyboardInterrupt from None
        except BaseException:
            if self._aborted.is_set():
                raise KeyboardInterrupt from None
            raise
        finally:
            with self._lock:
                self._running.discard(future)

    def abort(self) -> None:
        """Cancel every task of this batch and kill the running notebooks on the workers."""
        self._aborted.set()
        with self._lock:
            running = list(self._running)
        if running:
            self.client.cancel(running, force=True)
        try:
            self.client.run(_abort_on_worker)
        except Exception as error:  # noqa: BLE001 - a worker that is gone has no kernel left either
            log.warning("could not reach every Dask worker to stop its notebooks: %s", error)


def _key_safe(submission_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", submission_id)[:60]


@dataclass(frozen=True)
class ClusterInfo:
    """What the client learnt of the cluster: where it is and how many notebooks it runs at once."""

    address: str
    workers: int
    slots: int  # worker threads in all: the number of notebooks graded at once
    local: bool


@contextmanager
def open_dask_executor(jobs: int, data: DataSpec,
                       scheduler: str | None = None) -> Iterator[tuple[DaskExecutor, ClusterInfo]]:
    """A DaskExecutor on a new LocalCluster (`jobs` worker processes, one thread each) or on the
    cluster whose scheduler is at `scheduler`; the data files are sent to every worker once."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise GraderError(NO_DASK) from None
    if not log.isEnabledFor(logging.DEBUG):  # the scheduler's chatter is not the instructor's business
        logging.getLogger("distributed").setLevel(logging.ERROR)

    cluster = None
    with dask.config.set({"distributed.scheduler.allowed-failures": LOCAL_ALLOWED_FAILURES}):
        if scheduler is None:
            cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                   dashboard_address=None, memory_limit=0,
                                   silence_logs=logging.ERROR)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError) as error:
                raise GraderError(NO_SCHEDULER.format(address=scheduler, error=error)) from None
    try:
        if scheduler is not None:
            _wait_for_a_worker(client, scheduler)
        allowed = (LOCAL_ALLOWED_FAILURES if cluster is not None
                   else _scheduler_allowed_failures(client))
        files = client.scatter(student_files(data), broadcast=True, hash=False)
        nthreads = client.nthreads()
        info = ClusterInfo(address=client.scheduler.address, workers=len(nthreads),
                           slots=max(1, sum(nthreads.values())), local=cluster is not None)
        yield DaskExecutor(client, files, allowed), info
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _scheduler_allowed_failures(client: Any) -> int:
    """The scheduler's own setting (it may not have the grader installed: the function travels by value)."""
    def read() -> int:
        import dask

        return int(dask.config.get("distributed.scheduler.allowed-failures"))

    return int(client.run_on_scheduler(read))
