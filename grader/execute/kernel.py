"""One kernel process in a sandbox: start, execute code with a time limit, always shut down.

The kernel is started through the sandbox's command (bubblewrap, rlimits) in its own session and
talks to the grader over unix sockets in the sandbox's runtime folder (no network needed). When the
context exits, the kernel and every process below it are killed.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.connect import channel_socket_types
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager
from zmq.utils.monitor import recv_monitor_message

from grader import timings
from grader.errors import KernelStartError
from grader.execute.limits import sandbox_python
from grader.execute.outputs import OutputCollector, source_cap_code
from grader.execute.sandbox import Sandbox

KERNEL_NAME = "grader-python"
KERNEL_ARGV = [sandbox_python(), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
INTERRUPT_GRACE_S = 5.0
REPLY_IDLE_GRACE_S = 2.0  # after the reply, the idle status may have been dropped in a flood
POLL_S = 0.05
ALIVE_CHECK_S = 0.5
DEATH_SETTLE_S = 0.5
IOPUB_JOIN_S = 5.0
# Bounds on what the grader receives, whatever the kernel sends: a larger message drops the
# connection (zmq reconnects) instead of being read into the grader's memory.
MIN_IOPUB_MESSAGE_BYTES = 1024 * 1024
# A probe's reply is a few kB (the largest of ex06 about 12 kB); a cell's reply holds its error.
MAX_SHELL_MESSAGE_BYTES = 4 * 1024 * 1024
IOPUB_QUEUE_MESSAGES = 100
# A request the kernel's socket does not take within this time means the kernel is unreachable
# (zmq would otherwise block the grader for ever on a shell socket left without a connection).
SEND_TIMEOUT_MS = 10_000
REPLY_REFUSED = "ReplyTooLarge"
REPLY_REFUSED_MESSAGE = ("reply too large: the kernel's reply was over the grader's limit of {limit:,} bytes "
                         "and was refused")



class _SandboxKernelSpecs(KernelSpecManager):
    """This interpreter's ipykernel started inside the sandbox, whatever kernelspecs the machine
    has. Interrupts go as messages: a signal to bubblewrap would not reach the kernel."""

    def __init__(self, command: list[str]) -> None:
        super().__init__()
        self.command = command

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(argv=self.command, display_name="Python 3 (grader)", language="python",
                          resource_dir="", interrupt_mode="message")


class _BoundedClient(BlockingKernelClient):
    """A client whose sockets refuse oversized messages, queue few iopub messages, never block a
    send for ever, and tell when a connection was dropped (an oversized message refused)."""

    max_iopub_bytes = MIN_IOPUB_MESSAGE_BYTES

    def _create_connected_socket(self, channel: str, identity: bytes | None = None) -> zmq.Socket:
        socket = self.context.socket(channel_socket_types[channel])
        socket.linger = 1000
        if identity:
            socket.identity = identity
        if channel == "iopub":
            socket.setsockopt(zmq.MAXMSGSIZE, self.max_iopub_bytes)
            socket.setsockopt(zmq.RCVHWM, IOPUB_QUEUE_MESSAGES)
        elif channel == "shell":
            socket.setsockopt(zmq.MAXMSGSIZE, MAX_SHELL_MESSAGE_BYTES)
            socket.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
        if channel in ("iopub", "shell"):
            monitors = self.__dict__.setdefault("_drop_monitors", {})
            old = monitors.pop(channel, None)
            if old is not None:
                old.close(linger=0)
            # A name of its own: pyzmq's default (the socket's fd number) is reused once an earlier
            # kernel's socket is closed, and its last events would reach this monitor.
            address = f"inproc://grader-monitor-{secrets.token_hex(8)}"
            monitors[channel] = socket.get_monitor_socket(zmq.EVENT_DISCONNECTED, address)
        socket.connect(self._make_url(channel))
        return socket

    def dropped(self, channel: str) -> bool:
        """Was this channel's connection dropped since the last look (a message over its cap)?"""
        monitor = self.__dict__.get("_drop_monitors", {}).get(channel)
        found = False
        while monitor is not None and monitor.poll(0):
            event = recv_monitor_message(monitor)
            found |= event["event"] == zmq.EVENT_DISCONNECTED
        return found

    def reconnect_iopub(self) -> None:
        """A fresh iopub socket, after one was dropped for an oversized message."""
        channel, self._iopub_channel = self._iopub_channel, None
        if channel is not None:
            channel.stop()
            channel.close()
        self.iopub_channel.start()

    def reconnect_shell(self) -> None:
        """A fresh shell socket (same identity), after one was dropped for an oversized reply."""
        channel, self._shell_channel = self._shell_channel, None
        if channel is not None:
            channel.stop()
            channel.close()
        self.shell_channel.start()

    def stop_channels(self) -> None:
        super().stop_channels()
        for monitor in self.__dict__.pop("_drop_monitors", {}).values():
            monitor.close(linger=0)


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

    def __init__(self, manager: KernelManager, max_output_bytes: int) -> None:
        self.manager = manager
        self.client = _BoundedClient(**manager.get_connection_info(session=True),
                                     connection_file=manager.connection_file, parent=manager)
        self.client.max_iopub_bytes = max(MIN_IOPUB_MESSAGE_BYTES, 4 * max_output_bytes)
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
        try:
            msg_id = self.client.execute(code, silent=silent, store_history=not silent,
                                         user_expressions=user_expressions or {}, allow_stdin=False,
                                         stop_on_error=False)
        except zmq.Again:
            return ExecuteOutcome(status="timeout", kernel_stuck=True, seconds=time.monotonic() - started,
                                  message="the kernel did not take the request")
        collector = OutputCollector(max_output_bytes)
        deadline = started + timeout_s
        reply, idle, timed_out, idle_at = None, False, False, None
        last_alive_check = started
        while reply is None or not idle:
            now = time.monotonic()
            if idle_at is not None and reply is None and now - idle_at > REPLY_IDLE_GRACE_S:
                # The reply was refused as oversized (the shell connection dropped), or idle
                # came and the reply never will.
                return ExecuteOutcome(status="error", outputs=collector.finished_outputs(),
                                      error=REPLY_REFUSED, seconds=now - started,
                                      message=REPLY_REFUSED_MESSAGE.format(limit=MAX_SHELL_MESSAGE_BYTES),
                                      dropped_output_bytes=collector.dropped_bytes)
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
            dropped = {name for name in ("iopub", "shell") if self.client.dropped(name)}
            if dropped and not self._still_alive():  # a dying kernel drops its connections too
                return ExecuteOutcome(status="kernel_died", outputs=collector.finished_outputs(),
                                      seconds=time.monotonic() - started,
                                      dropped_output_bytes=collector.dropped_bytes)
            # An iopub drop alone is not marked here: it may be a late message of an earlier cell
            # (zmq reconnects by itself); a lost idle status marks this cell below.
            if not idle:
                idle = self._drain_iopub(msg_id, collector)
            if idle and idle_at is None:
                idle_at = time.monotonic()
            if reply is None:
                reply = self._poll_reply(msg_id, POLL_S if idle else 0)
                if reply is None and "shell" in dropped:
                    reply = self._poll_reply(msg_id)  # it may have come just before the drop
                    if reply is None:
                        self.client.reconnect_shell()
                        idle_at = -REPLY_IDLE_GRACE_S  # the reply was refused: do not wait for it
                if reply is not None and not timed_out:
                    deadline = min(deadline, time.monotonic() + REPLY_IDLE_GRACE_S)
        if reply is not None and not idle and not timed_out:
            # The kernel answered but its idle status never came: the grader's iopub socket
            # refused an oversized message (and lost what followed until it reconnected).
            collector.mark_lost(self.client.max_iopub_bytes)
            self.client.reconnect_iopub()
            self._await_iopub()
        outcome = _outcome_from_reply(reply, collector, time.monotonic() - started)
        if timed_out:
            outcome.status = "timeout"
            outcome.kernel_stuck = reply is None
        return outcome

    def _await_iopub(self) -> None:
        """After a new iopub socket: wait until it receives (a fresh subscription misses what the
        kernel publishes before it is joined, such as the next cell's idle status)."""
        deadline = time.monotonic() + IOPUB_JOIN_S
        while time.monotonic() < deadline and self.is_alive():
            try:
                msg_id = self.client.kernel_info()
            except zmq.Again:
                return
            until = min(deadline, time.monotonic() + 0.5)
            while time.monotonic() < until:
                try:
                    msg = self.client.get_iopub_msg(timeout=POLL_S)
                except Empty:
                    continue
                if msg["parent_header"].get("msg_id") == msg_id:
                    self._drain_shell(msg_id)
                    return

    def _drain_shell(self, msg_id: str) -> None:
        """Drop the reply to our own kernel_info request, when it comes."""
        until = time.monotonic() + REPLY_IDLE_GRACE_S
        while time.monotonic() < until and self._poll_reply(msg_id) is None:
            time.sleep(POLL_S)

    def _still_alive(self) -> bool:
        """Is the kernel alive, a moment after one of its connections dropped (its exit may take
        that long to be seen)?"""
        settle = time.monotonic() + DEATH_SETTLE_S
        while time.monotonic() < settle:
            if not self.is_alive():
                return False
            time.sleep(POLL_S)
        return self.is_alive()

    def _drain_iopub(self, msg_id: str, collector: OutputCollector) -> bool:
        """Collect this request's outputs; True once the kernel went idle after it (its last
        message: returned at once, not after waiting for more)."""
        try:
            while True:
                msg = self.client.get_iopub_msg(timeout=POLL_S)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return True
                collector.add(msg)
        except Empty:
            return False

    def _poll_reply(self, msg_id: str, wait_s: float = 0) -> dict[str, Any] | None:
        """This request's reply, if it came (waiting up to `wait_s` for the first message)."""
        try:
            while True:
                msg = self.client.get_shell_msg(timeout=wait_s)
                wait_s = 0
                if msg["parent_header"].get("msg_id") == msg_id:
                    return msg
        except Empty:
            return None

    def kill(self, sandbox: Sandbox) -> None:
        """End the kernel and every process below it, whatever state it is in."""
        try:
            self.client.stop_channels()
        finally:
            pid = self.pid
            if pid is not None:
                sandbox.kill_tree(pid)
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                self.manager.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001 - the group is already dead; cleanup is best effort
                pass
            self.manager.cleanup_resources()


def _log_tail(path: Path, lines: int = 5) -> str:
    """The last lines the kernel printed on its own stdout/stderr, to say why it did not start."""
    try:
        tail = path.read_text("utf-8", "replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return (" (kernel log: " + " | ".join(tail) + ")") if tail else ""


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
def start_kernel_session(sandbox: Sandbox, env: dict[str, str], start_timeout_s: float,
                         max_output_bytes: int) -> Iterator[KernelSession]:
    """Start a kernel inside `sandbox`, in the working directory of its current kernel folders
    (`sandbox.begin_kernel()`), with exactly `env` (plus the sandbox's marker); kill it and
    everything it started on exit."""
    folders = sandbox.folders
    if folders is None:
        raise RuntimeError("call sandbox.begin_kernel() before starting a kernel")
    manager = KernelManager(kernel_name=KERNEL_NAME,
                            kernel_spec_manager=_SandboxKernelSpecs(sandbox.command(KERNEL_ARGV)))
    manager.transport = "ipc"
    manager.ip = str(folders.ipc_dir / "kernel")
    manager.connection_file = str(folders.connection_file)
    # The kernel's own stdout/stderr (not the notebook's outputs) go to a log, not our console. It
    # lies in a folder no kernel sees; O_EXCL | O_NOFOLLOW all the same (it must be a new file).
    log = os.fdopen(os.open(folders.log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                            | os.O_CLOEXEC, 0o600), "ab")
    started = time.monotonic()
    try:
        manager.start_kernel(cwd=str(folders.workdir), env=sandbox.environment(env), stdout=log,
                             stderr=log)
    except Exception as error:
        log.close()
        raise KernelStartError(f"the kernel could not be started: {error}") from error
    session = KernelSession(manager, max_output_bytes)
    if session.pid is not None:
        sandbox.adopt(session.pid)
    try:
        try:
            session.client.wait_for_ready(timeout=start_timeout_s)
        except RuntimeError as error:
            log.flush()
            raise KernelStartError(
                f"the kernel did not become ready within {start_timeout_s:g} s: {error}"
                f"{_log_tail(folders.log)}") from error
        session.execute(source_cap_code(2 * max_output_bytes), start_timeout_s, silent=True)
        timings.add("kernel_start_s", time.monotonic() - started)
        yield session
    finally:
        session.kill(sandbox)
        log.close()
