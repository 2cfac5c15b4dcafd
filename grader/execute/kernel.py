"""One kernel process for one submission: start, execute code with a time limit, always shut down.

The kernel runs in its own session (process group); when the context exits, the whole group is
killed, so nothing a notebook started outlives its grading.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager

from grader.errors import KernelStartError
from grader.execute.outputs import OutputCollector

KERNEL_NAME = "grader-python"
INTERRUPT_GRACE_S = 5.0
POLL_S = 0.05
ALIVE_CHECK_S = 0.5


class _GraderKernelSpecs(KernelSpecManager):
    """Always this interpreter's ipykernel, whatever kernelspecs the machine has installed."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name="Python 3 (grader)", language="python", resource_dir="",
        )


@dataclass
class ExecuteOutcome:
    """What one execute request did: its status, its (capped) outputs and its reply."""

    status: str  # ok | error | timeout | kernel_died
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    message: str | None = None
    traceback: list[str] = field(default_factory=list)
    user_expressions: dict[str, Any] = field(default_factory=dict)
    execution_count: int | None = None
    seconds: float = 0.0
    dropped_output_bytes: int = 0
    kernel_stuck: bool = False  # did not answer an interrupt: the session must be restarted


class KernelSession:
    """A started kernel with a client; use `start_kernel_session()` to get one."""

    def __init__(self, manager: KernelManager) -> None:
        self.manager = manager
        self.client = manager.client()
        self.client.start_channels()

    @property
    def pid(self) -> int | None:
        process = getattr(self.manager.provisioner, "process", None)
        return None if process is None else process.pid

    def exit_code(self) -> int | None:
        process = getattr(self.manager.provisioner, "process", None)
        return None if process is None else process.poll()

    def is_alive(self) -> bool:
        return bool(self.manager.is_alive())

    def execute(self, code: str, timeout_s: float, *, silent: bool = False,
                user_expressions: dict[str, str] | None = None,
                max_output_bytes: int = 200_000) -> ExecuteOutcome:
        """Run `code`; on time-out interrupt the kernel and report `timeout`."""
        started = time.monotonic()
        msg_id = self.client.execute(code, silent=silent, store_history=not silent,
                                     user_expressions=user_expressions or {}, allow_stdin=False,
                                     stop_on_error=False)
        collector = OutputCollector(max_output_bytes)
        deadline = started + timeout_s
        reply, idle, timed_out = None, False, False
        last_alive_check = started
        while reply is None or not idle:
            now = time.monotonic()
            if now >= deadline:
                if timed_out or reply is not None:
                    break  # no idle after the reply, or no answer to the interrupt
                timed_out = True
                self.manager.interrupt_kernel()
                deadline = now + INTERRUPT_GRACE_S
            if now - last_alive_check >= ALIVE_CHECK_S:
                last_alive_check = now
                if not self.is_alive():
                    return ExecuteOutcome(status="kernel_died", outputs=collector.finished_outputs(),
                                          seconds=now - started,
                                          dropped_output_bytes=collector.dropped_bytes)
            idle = self._drain_iopub(msg_id, collector) or idle
            if reply is None:
                reply = self._poll_reply(msg_id)
        outcome = _outcome_from_reply(reply, collector, time.monotonic() - started)
        if timed_out:
            outcome.status = "timeout"
            outcome.kernel_stuck = reply is None
        return outcome

    def _drain_iopub(self, msg_id: str, collector: OutputCollector) -> bool:
        """Collect this request's outputs; True once the kernel went idle after it."""
        went_idle = False
        try:
            while True:
                msg = self.client.get_iopub_msg(timeout=POLL_S)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    went_idle = True
                else:
                    collector.add(msg)
        except Empty:
            pass
        return went_idle

    def _poll_reply(self, msg_id: str) -> dict[str, Any] | None:
        try:
            while True:
                msg = self.client.get_shell_msg(timeout=0)
                if msg["parent_header"].get("msg_id") == msg_id:
                    return msg
        except Empty:
            return None

    def kill(self) -> None:
        """End the kernel and every process in its session, whatever state it is in."""
        try:
            self.client.stop_channels()
        finally:
            pid = self.pid
            if pid is not None:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                self.manager.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001 - the group is already dead; cleanup is best effort
                pass
            self.manager.cleanup_resources()


def _outcome_from_reply(reply: dict[str, Any] | None, collector: OutputCollector,
                        seconds: float) -> ExecuteOutcome:
    outcome = ExecuteOutcome(status="ok", outputs=collector.finished_outputs(), seconds=seconds,
                             dropped_output_bytes=collector.dropped_bytes)
    if reply is None:
        outcome.status = "error"
        return outcome
    content = reply["content"]
    outcome.execution_count = content.get("execution_count")
    outcome.user_expressions = content.get("user_expressions") or {}
    if content.get("status") != "ok":
        outcome.status = "error"
        outcome.error = content.get("ename")
        outcome.message = content.get("evalue")
        outcome.traceback = list(content.get("traceback") or [])
    return outcome


@contextmanager
def start_kernel_session(workdir: Path, env: dict[str, str], runtime_dir: Path,
                         start_timeout_s: float) -> Iterator[KernelSession]:
    """Start a kernel in `workdir` with exactly `env`; kill its whole process group on exit."""
    manager = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=_GraderKernelSpecs())
    manager.connection_file = str(runtime_dir / f"kernel-{os.getpid()}-{id(manager)}.json")
    # The kernel's own stdout/stderr (not the notebook's outputs) go to a log, not our console.
    log = open(runtime_dir / "kernel.log", "ab")  # noqa: SIM115 - closed in the finally below
    try:
        manager.start_kernel(cwd=str(workdir), env=env, stdout=log, stderr=log)
    except Exception as error:
        log.close()
        raise KernelStartError(f"the kernel could not be started: {error}") from error
    session = KernelSession(manager)
    try:
        try:
            session.client.wait_for_ready(timeout=start_timeout_s)
        except RuntimeError as error:
            raise KernelStartError(
                f"the kernel did not become ready within {start_timeout_s:g} s: {error}") from error
        yield session
    finally:
        session.kill()
        log.close()
