"""Run one notebook in a fresh sandboxed kernel, cell by cell, then probe it.

A failing cell does not stop the notebook. A cell past its time limit is interrupted and the next
cell runs. When the kernel breaks at cell k, cells 0..k-1 are run again in a fresh kernel (fresh
folders too) and the probes run there, so what was defined before still earns its points. The
kernel is broken when it dies (or ignores an interrupt, or a resource limit stops it), and when it
is left full: a cell fails for lack of memory while the notebook holds most of its memory limit,
or a probe fails for lack of memory (then the cell after which memory grew most is blamed).

Time: the cells of every pass share one budget (`notebook_timeout_s`: the seconds the cells ran,
first run and replay together; a replay gets no fresh time, and the grader's own kernel starts are
not charged). The probes have their own budget (`probe_budget_s`), so a notebook that used most of
its time still gets probed.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from grader import timings
from grader.data.sources import install_data
from grader.data.student_files import StudentFiles
from grader.errors import KernelStartError, SandboxUnavailableError
from grader.execute.base import CellRun, ExecutionJob, ExecutionResult, ExecutionSummary
from grader.execute.kernel import REPLY_REFUSED, KernelSession, start_kernel_session
from grader.execute.limits import MB, describe_exit, explain_error, is_memory_error, is_no_space_error
from grader.execute.pool import KernelPool, ReadyKernel
from grader.execute.sandbox import Sandbox, abort_sandboxes, open_sandbox, sandbox_support
from grader.observe.preamble import KernelGate, facts_request, run_preamble
from grader.observe.probe import ProbeReply, ProbeRequest, parse_reply, render_probe
from grader.rubric.model import DataSpec, ExecutionLimits

NOTEBOOK_COPY_NAME = "submission.ipynb"
EXCERPT_LINES = 4
EXCERPT_CHARS = 300
# A cell that fails for lack of memory leaves the kernel "full" when the notebook still holds this
# share of its memory limit afterwards (a single oversized allocation that was refused holds
# nothing, and the notebook goes on in the same kernel).
FULL_MEMORY_SHARE = 0.8
# Bounds on what a notebook can make the grader keep (observations.json, reports): an error
# message, and the probes' replies together (each is also capped by the kernel's shell socket).
MAX_MESSAGE_CHARS = 2_000
MAX_PROBE_REPLIES_CHARS = 16 * 1024 * 1024

KERNEL_DIED_WARNING = ("The kernel died at cell {index} (exit code {code}); cells 1..{before} were "
                       "run again in a fresh kernel to probe what they define.")
KERNEL_STUCK_WARNING = ("Cell {index} did not stop when interrupted after its time limit; the kernel "
                        "was killed and cells 1..{before} were run again in a fresh kernel.")
KERNEL_STOPPED_WARNING = ("The kernel was stopped at cell {index}: {reason}. Cells 1..{before} were "
                          "run again in a fresh kernel to probe what they define.")
MEMORY_FULL_REASON = ("cell {index} ran out of memory and left the kernel holding {held:,} MB of its "
                      "memory limit of {limit:,} MB")
MEMORY_FULL_WARNING = ("Cell {index} ran out of memory and left the kernel full ({held:,} MB held, "
                       "limit {limit:,} MB); later cells were not run, and cells 1..{before} were "
                       "run again in a fresh kernel to probe what they define.")
PROBE_MEMORY_WARNING = ("A probe ran out of memory ({message}): the kernel was full. Memory grew most "
                        "in cell {index} (+{grown:,} MB), so cells 1..{before} were run again in a "
                        "fresh kernel and the probes ran there.")
STUCK_EARLIER = "the kernel stopped answering during an earlier probe"
STARVED_EARLIER = "the kernel ran out of memory during an earlier probe"
REPLAY_BROKE = "The kernel broke again while replaying; nothing could be probed."
REPLAY_OUT_OF_TIME = ("The notebook's time limit of {limit:g} s ran out while replaying; the probes ran "
                      "on what the replayed cells had defined by then.")
PROBE_BUDGET_SPENT = "the probes' time budget of {budget:g} s was used up before this probe"
PROBE_BUDGET_RAN_OUT = ("did not finish within the {left:.1f} s left of the probes' time budget of "
                        "{budget:g} s")
REPLIES_TOO_LARGE = ("reply too large: the probes' replies together passed the grader's limit of "
                     "{limit:,} characters")
START_FAILED = "The kernel could not be started: {error}"
KERNEL_FACTS_KEY = "_kernel"  # the preamble's facts travel with the replies, then go to the summary


def source_excerpt(source: str) -> str:
    lines = source.strip().splitlines()
    excerpt = "\n".join(lines[:EXCERPT_LINES])
    if len(lines) > EXCERPT_LINES:
        excerpt += "\n..."
    return excerpt[:EXCERPT_CHARS]


def kernel_env(workdir: Path, torch_threads: int) -> dict[str, str]:
    """The kernel's whole environment: nothing of the grader's own environment but PATH."""
    threads = str(torch_threads)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "MPLBACKEND": "Agg",
        "JUPYTER_PLATFORM_DIRS": "1",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
    }


@dataclass
class _Clock:
    """The notebook's one time budget for cells (every pass: first run and replay) and the probes'
    own budget. Only the cells' and probes' own seconds are counted, not the grader's kernel starts."""

    notebook_timeout_s: float
    probe_budget_s: float
    cell_seconds: float = 0.0
    probe_seconds: float = 0.0

    def cell_time_left(self) -> float:
        return self.notebook_timeout_s - self.cell_seconds

    def probe_time_left(self) -> float:
        return self.probe_budget_s - self.probe_seconds


@dataclass
class _Pass:
    """The state of one pass over the notebook's cells in one kernel."""

    runs: dict[int, CellRun] = field(default_factory=dict)
    died_at: int | None = None
    exit_code: int | None = None
    stuck_at: int | None = None
    full_at: int | None = None  # the cell that ran out of memory and left the kernel full
    notebook_timed_out: bool = False
    limit_exceeded: str | None = None
    stopped_because: str | None = None  # a sentence, when a resource limit ended the kernel
    held_after: dict[int, int] = field(default_factory=dict)  # memory held after each cell, bytes

    @property
    def broken_at(self) -> int | None:
        for index in (self.died_at, self.stuck_at, self.full_at):
            if index is not None:
                return index
        return None

    def most_grown(self) -> tuple[int, int] | None:
        """(cell, bytes) of the cell after which the memory held grew most."""
        growth, previous = [], 0
        for index in sorted(self.held_after):
            growth.append((self.held_after[index] - previous, -index))
            previous = self.held_after[index]
        if not growth:
            return None
        grown, index = max(growth)
        return -index, grown


AfterProbes = Callable[[KernelSession, Path], None]


class LocalKernelExecutor:
    """Each notebook in its own sandbox (see grader/execute/sandbox.py), whose working directory
    holds only a copy of the notebook and `data/`. `after_probes(session, workdir)`, when given,
    is called with the live kernel once the probes have run (for audits and tests).

    `expect(...)` (a batch calls it before its first notebook) starts first kernels ahead of need
    in a pool (grader/execute/pool.py); a notebook takes one when it starts, or starts its own."""

    name = "local"

    def __init__(self, after_probes: AfterProbes | None = None) -> None:
        self.after_probes = after_probes
        self._pool = KernelPool(self._start_ahead, on_exit=_close_event_loop)

    def expect(self, limits: ExecutionLimits, data: DataSpec | StudentFiles, torch_threads: int,
               count: int, ahead: int) -> None:
        """`count` notebooks of these limits, data and threads will come: keep `ahead` kernels
        started for them."""
        self._pool.expect(_kernel_key(limits, data, torch_threads), count, ahead)

    def close(self) -> None:
        """Destroy the kernels started ahead that no notebook took."""
        self._pool.close()

    def abort(self) -> None:
        """Kill every running notebook of this process (a batch was interrupted)."""
        self._pool.close()
        abort_sandboxes()

    def run(self, job: ExecutionJob) -> ExecutionResult:
        started = time.monotonic()
        notebook = copy.deepcopy(job.notebook)
        try:
            with timings.phase("kernel_wait_s"):
                ready = self._pool.take(_kernel_key(job.limits, job.data, job.torch_threads))
            if ready is not None:
                support = ready.support
                try:
                    result = self._run_in_kernels(job, notebook, ready.sandbox, ready)
                finally:
                    try:
                        ready.close()
                    finally:
                        _close_event_loop()
            else:
                support = sandbox_support(job.limits.sandbox)
                with open_sandbox(job.limits, support) as sandbox:
                    try:
                        result = self._run_in_kernels(job, notebook, sandbox, None)
                    except KernelStartError as error:
                        result = _not_started(job, notebook, str(error))
                    finally:
                        _close_event_loop()
            facts, warnings = support.facts(), support.warnings()
        except SandboxUnavailableError as error:
            result = _not_started(job, notebook, str(error))
            facts, warnings = {}, ()
        summary = result.summary
        result.summary = ExecutionSummary(**{**summary.__dict__, "sandbox": facts,
                                             "warnings": (*summary.warnings, *warnings),
                                             "seconds": round(time.monotonic() - started, 3)})
        return result

    def _start_ahead(self, key: tuple) -> ReadyKernel:
        """A sandbox with a started first kernel, its preamble installed, and its data: what
        `_run_in_kernels` does first for a notebook, done before the notebook is known. The data
        is written last (no student code runs before the kernel is handed over), so the kernel
        starts while the batch still reads its data."""
        limits, data, torch_threads = key
        support = sandbox_support(limits.sandbox)
        with ExitStack() as sandbox_exit:
            sandbox = sandbox_exit.enter_context(open_sandbox(limits, support))
            sandbox.begin_kernel()
            with ExitStack() as kernel_exit:
                session, gate = kernel_exit.enter_context(_started_kernel(sandbox, limits, data, torch_threads))
                install_data(sandbox.workdir / "data", data)
                # Started: from here the ReadyKernel closes them (a failure above closed them).
                return ReadyKernel(key, support, sandbox, session, gate, sandbox_exit.pop_all(), kernel_exit.pop_all())

    def _run_in_kernels(self, job: ExecutionJob, notebook: dict[str, Any], sandbox: Sandbox,
                        ready: ReadyKernel | None) -> ExecutionResult:
        limits = job.limits
        code_cells = [i for i, c in enumerate(notebook["cells"])
                      if c["cell_type"] == "code" and _source(c).strip()]
        warnings: list[str] = []
        clock = _Clock(notebook_timeout_s=limits.notebook_timeout_s, probe_budget_s=limits.probe_budget_s)
        if ready is not None:  # started ahead: its folders are fresh and no student code ran there
            _write_notebook_copy(sandbox, notebook)
            first_kernel = _handed_over(ready)
        else:
            _prepare_workdir(sandbox, notebook, job)
            first_kernel = _started_kernel(sandbox, limits, job.data, job.torch_threads)
        with first_kernel as (session, gate):
            first = self._run_cells(session, sandbox, job, notebook, code_cells, clock, record_outputs=True)
            if first.broken_at is None:
                replies, starved = self._run_probes(session, sandbox, job.probes, clock, gate)
                if starved is None:
                    self._after_probes(session, sandbox.workdir)
                    return _result(job, notebook, first, replies, warnings, clock)
                _blame_probe_starvation(first, starved, warnings, limits)
        broken_at = first.broken_at
        before = [i for i in code_cells if i < broken_at]
        if first.full_at is None or first.died_at is not None:
            warnings.append(_broken_warning(first, broken_at, before))
        elif not warnings:  # a cell left the kernel full (a starved probe has its warning already)
            warnings.append(MEMORY_FULL_WARNING.format(
                index=broken_at + 1, held=first.held_after.get(broken_at, 0) // MB,
                limit=limits.memory_limit_mb, before=_last(before)))
        _prepare_workdir(sandbox, notebook, job)
        with _started_kernel(sandbox, limits, job.data, job.torch_threads) as (session, gate):
            replay = self._run_cells(session, sandbox, job, copy.deepcopy(notebook), before, clock,
                                     record_outputs=False)
            if replay.died_at is not None or replay.stuck_at is not None:
                warnings.append(REPLAY_BROKE)
                replies = {p.key: ProbeReply("kernel_died", message="the kernel died before probing")
                           for p in job.probes}
            else:
                if replay.notebook_timed_out:
                    warnings.append(REPLAY_OUT_OF_TIME.format(limit=limits.notebook_timeout_s))
                replies, _ = self._run_probes(session, sandbox, job.probes, clock, gate)
                self._after_probes(session, sandbox.workdir)
        return _result(job, notebook, first, replies, warnings, clock, replayed=tuple(before))

    def _after_probes(self, session: KernelSession, workdir: Path) -> None:
        if self.after_probes is not None:
            self.after_probes(session, workdir)

    def _run_cells(self, session: KernelSession, sandbox: Sandbox, job: ExecutionJob,
                   notebook: dict[str, Any], indices: list[int], clock: _Clock,
                   record_outputs: bool) -> _Pass:
        limits = job.limits
        state = _Pass()
        for index in indices:
            cell = notebook["cells"][index]
            source = _source(cell)
            excerpt = source_excerpt(source)
            remaining = clock.cell_time_left()
            if state.broken_at is not None or remaining <= 0:
                state.notebook_timed_out |= remaining <= 0 and state.broken_at is None
                state.runs[index] = CellRun(index, "not_run", source_excerpt=excerpt)
                continue
            timeout = min(limits.cell_timeout_s, remaining)
            outcome = session.execute(source, timeout, max_output_bytes=limits.max_cell_output_bytes)
            clock.cell_seconds += outcome.seconds
            if record_outputs:
                cell["outputs"] = outcome.outputs
                cell["execution_count"] = outcome.execution_count
            if outcome.status == "timeout" and limits.cell_timeout_s > remaining:
                state.notebook_timed_out = True
            message = explain_error(outcome.error, outcome.message, limits)
            if outcome.status == "kernel_died":
                state.died_at, state.exit_code = index, session.exit_code()
                message = _stopped_because(sandbox, state, limits)
            else:
                state.held_after[index] = sandbox.memory_held()
            if outcome.kernel_stuck:
                state.stuck_at = index
            if outcome.status == "timeout":
                message = f"the cell was still running after {timeout:.0f} s and was interrupted"
            if outcome.status == "error" and (is_memory_error(outcome.error, outcome.message)
                                              or is_no_space_error(outcome.message)):
                _check_full(state, index, limits)  # full only if the memory is still held
            state.runs[index] = CellRun(
                index=index, status=outcome.status, seconds=round(outcome.seconds, 3),
                error=_clip(outcome.error), message=_clip(message), source_excerpt=excerpt,
                dropped_output_bytes=outcome.dropped_output_bytes)
        return state

    def _run_probes(self, session: KernelSession, sandbox: Sandbox, probes: tuple[ProbeRequest, ...],
                    clock: _Clock, gate: KernelGate) -> tuple[dict[str, ProbeReply], ProbeReply | None]:
        """The probes' replies, and the reply of the probe that ran out of memory, if one did (the
        probes after it are not run: the kernel is full)."""
        starved: ProbeReply | None = None
        replies: dict[str, ProbeReply] = {}
        kept_chars = 0
        for request in probes:
            if not session.is_alive():
                replies[request.key] = ProbeReply("kernel_died", message="the kernel died while probing")
                continue
            time_left = clock.probe_time_left()
            if time_left <= 0:
                replies[request.key] = ProbeReply(
                    "timeout", message=PROBE_BUDGET_SPENT.format(budget=clock.probe_budget_s))
                continue
            code, expressions, nonce = render_probe(request, gate)  # a nonce per probe, drawn now
            timeout = min(request.timeout_s, time_left)
            outcome = session.execute(code, timeout, silent=True, user_expressions=expressions,
                                      max_output_bytes=10_000)
            clock.probe_seconds += outcome.seconds
            kept_chars += _reply_chars(outcome.user_expressions)
            if kept_chars > MAX_PROBE_REPLIES_CHARS:
                outcome.status, outcome.error = "error", REPLY_REFUSED
                outcome.message = REPLIES_TOO_LARGE.format(limit=MAX_PROBE_REPLIES_CHARS)
            reply = _probe_reply(outcome, request, nonce)
            if reply.status == "timeout" and timeout < request.timeout_s:
                reply = replace(reply, message=PROBE_BUDGET_RAN_OUT.format(
                    left=timeout, budget=clock.probe_budget_s))
            replies[request.key] = reply
            if _starved(reply, sandbox):
                starved = reply
                break
            if outcome.kernel_stuck:
                break
        else:
            starved = None
        reason = STARVED_EARLIER if starved is not None else STUCK_EARLIER
        for request in probes:
            replies.setdefault(request.key, ProbeReply("not_run", message=reason))
        replies[KERNEL_FACTS_KEY] = _kernel_facts(session, gate)
        return replies, starved


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[:MAX_MESSAGE_CHARS] + f" [... {len(text) - MAX_MESSAGE_CHARS:,} more characters]"


def _reply_chars(user_expressions: dict[str, Any]) -> int:
    return sum(len(str(entry)) for entry in user_expressions.values())


def _starved(reply: ProbeReply, sandbox: Sandbox | None) -> bool:
    """Did this probe fail for lack of memory: an error in the kernel, the limit's breach, or a
    student call the probe recorded as failed for lack of memory while the kernel was full (the
    probe records a student's errors as observations; a single oversized allocation that was
    refused leaves the kernel empty and stays the student's)."""
    if reply.status == "probe_error":
        return is_memory_error(None, reply.message)
    if sandbox is None:
        return False
    if reply.status == "kernel_died":
        breach = sandbox.peek_breach()
        return breach is not None and breach.limit == "memory"
    if reply.status == "ok" and _records_memory_error(reply.data):
        return sandbox.memory_held() >= FULL_MEMORY_SHARE * sandbox.limits.memory_limit_mb * MB
    return False


def _records_memory_error(data: Any, depth: int = 0) -> bool:
    """Does a probe's result record an error (`{"error": name, "message": ...}`) that means memory ran out?"""
    if depth > 8:
        return False
    if isinstance(data, dict):
        name = data.get("error")
        if isinstance(name, str) and is_memory_error(name, str(data.get("message", ""))):
            return True
        return any(_records_memory_error(value, depth + 1) for value in data.values())
    if isinstance(data, list):
        return any(_records_memory_error(value, depth + 1) for value in data[:100])
    return False


def _check_full(state: _Pass, index: int, limits: Any) -> None:
    """After cell `index` failed for lack of memory: is the kernel left full? Then it is broken."""
    held = state.held_after.get(index, 0)
    if held >= FULL_MEMORY_SHARE * limits.memory_limit_mb * MB:
        state.full_at = index
        state.limit_exceeded = "memory"
        state.stopped_because = MEMORY_FULL_REASON.format(index=index + 1, held=held // MB,
                                                          limit=limits.memory_limit_mb)


def _blame_probe_starvation(state: _Pass, starved: ProbeReply, warnings: list[str], limits: Any) -> None:
    """A probe ran out of memory in a kernel whose cells all ran: blame the cell after which the
    memory held grew most, and replay the cells before it."""
    index, grown = state.most_grown() or (max(state.runs, default=0), 0)
    state.full_at = index
    state.limit_exceeded = "memory"
    before = [i for i in sorted(state.runs) if i < index]
    warnings.append(PROBE_MEMORY_WARNING.format(message=starved.message[:200], index=index + 1,
                                                grown=max(0, grown) // MB, before=_last(before)))


def _broken_warning(state: _Pass, broken_at: int, before: list[int]) -> str:
    # Cells are counted from 1 in messages (the JSON keeps 0-based indices).
    if state.stopped_because is not None:
        return KERNEL_STOPPED_WARNING.format(index=broken_at + 1, reason=state.stopped_because,
                                             before=_last(before))
    template = KERNEL_DIED_WARNING if state.died_at is not None else KERNEL_STUCK_WARNING
    return template.format(index=broken_at + 1, code=state.exit_code, before=_last(before))


def _last(before: list[int]) -> int | str:
    return max(before) + 1 if before else "(none)"


def _stopped_because(sandbox: Sandbox, state: _Pass, limits: Any) -> str | None:
    """Why the kernel died, when a resource limit ended it (recorded in `state`)."""
    breach = sandbox.take_breach() or describe_exit(state.exit_code, limits)
    if breach is not None:
        state.limit_exceeded, state.stopped_because = breach.limit, breach.message
    return state.stopped_because


def _prepare_workdir(sandbox: Sandbox, notebook: dict[str, Any], job: ExecutionJob) -> None:
    """Fresh folders for the next kernel; its working directory holds the notebook and its data,
    nothing else (never a folder an earlier kernel could write: a survivor could race a reset)."""
    sandbox.begin_kernel()
    _write_notebook_copy(sandbox, notebook)
    install_data(sandbox.workdir / "data", job.data)


def _write_notebook_copy(sandbox: Sandbox, notebook: dict[str, Any]) -> None:
    """The notebook's copy in the working directory: a new file (never through a link)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(sandbox.workdir / NOTEBOOK_COPY_NAME, flags, 0o644), "w", encoding="utf-8") as file:
        file.write(_notebook_json(notebook))


@contextmanager
def _started_kernel(sandbox: Sandbox, limits: ExecutionLimits, data: DataSpec | StudentFiles,
                    torch_threads: int) -> Iterator[tuple[KernelSession, KernelGate]]:
    """A kernel started in the sandbox's current folders, with the preamble installed."""
    env = kernel_env(sandbox.workdir, torch_threads)
    with start_kernel_session(sandbox, env, limits.kernel_start_timeout_s, limits.max_cell_output_bytes) as session:
        yield session, run_preamble(session, data, limits.kernel_start_timeout_s, limits.preload)


@contextmanager
def _handed_over(ready: ReadyKernel) -> Iterator[tuple[KernelSession, KernelGate]]:
    """The first kernel started ahead, ended (before any replay kernel is made) when the block ends."""
    try:
        yield ready.session, ready.gate
    finally:
        ready.close_kernel()


def _kernel_key(limits: ExecutionLimits, data: DataSpec | StudentFiles, torch_threads: int) -> tuple:
    """What a kernel started ahead must match to serve a notebook."""
    return (limits, data, torch_threads)


def _close_event_loop() -> None:
    """jupyter_client's blocking calls run on an event loop per thread; close it so a worker
    thread leaves no loop (and its sockets) behind. A later call creates a fresh one."""
    from jupyter_core.utils import ensure_event_loop

    loop = ensure_event_loop()
    if not loop.is_running():
        loop.close()


def _kernel_facts(session: KernelSession, gate: KernelGate) -> ProbeReply:
    """What the preamble saw: names the probes restored, threads left running, data served."""
    facts: dict[str, Any] = {"preamble_problem": gate.problem} if gate.problem else {}
    if not gate.problem and session.is_alive():
        expressions, nonce = facts_request(gate)
        outcome = session.execute("", 30.0, silent=True, user_expressions=expressions,
                                  max_output_bytes=10_000)
        try:
            facts = parse_reply(outcome.user_expressions, nonce)
        except (ValueError, SyntaxError) as error:
            facts = {"problem": str(error)}
    return ProbeReply("ok", data=facts)


def _probe_reply(outcome: Any, request: ProbeRequest, nonce: str) -> ProbeReply:
    seconds = round(outcome.seconds, 3)
    if outcome.status == "timeout":
        return ProbeReply("timeout", seconds=seconds,
                          message=f"did not finish within {request.timeout_s:g} s")
    if outcome.status == "kernel_died":
        return ProbeReply("kernel_died", seconds=seconds, message="the kernel died during this probe")
    if outcome.status == "error":
        message = outcome.message if outcome.error == REPLY_REFUSED else f"{outcome.error}: {outcome.message}"
        return ProbeReply("probe_error", seconds=seconds, message=_clip(message) or "")
    try:
        return ProbeReply("ok", data=parse_reply(outcome.user_expressions, nonce), seconds=seconds)
    except (ValueError, SyntaxError) as error:
        return ProbeReply("probe_error", seconds=seconds, message=str(error))


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _notebook_json(notebook: dict[str, Any]) -> str:
    import json

    return json.dumps(notebook, indent=1)


def _result(job: ExecutionJob, notebook: dict[str, Any], state: _Pass, replies: dict[str, ProbeReply],
            warnings: list[str], clock: _Clock, replayed: tuple[int, ...] = ()) -> ExecutionResult:
    facts = replies.pop(KERNEL_FACTS_KEY, None)
    summary = ExecutionSummary(kernel=(facts.data or {}) if facts is not None else {},
        seconds=0.0, cells=tuple(state.runs[i] for i in sorted(state.runs)),
        kernel_died=state.died_at is not None, kernel_died_at_cell=state.died_at,
        kernel_exit_code=state.exit_code, notebook_timed_out=state.notebook_timed_out,
        torch_threads=job.torch_threads, warnings=tuple(warnings), limit_exceeded=state.limit_exceeded,
        memory_exhausted_at_cell=state.full_at, replayed_cells=replayed,
        cell_seconds=round(clock.cell_seconds, 3), probe_seconds=round(clock.probe_seconds, 3))
    return ExecutionResult(summary=summary, probe_replies=replies, executed_notebook=notebook)


def _not_started(job: ExecutionJob, notebook: dict[str, Any], error: str) -> ExecutionResult:
    message = START_FAILED.format(error=error)
    summary = ExecutionSummary(seconds=0.0, cells=(), torch_threads=job.torch_threads,
                               warnings=(message,))
    replies = {p.key: ProbeReply("not_run", message=message) for p in job.probes}
    return ExecutionResult(summary=summary, probe_replies=replies, executed_notebook=notebook)
