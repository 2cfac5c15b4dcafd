"""Run one notebook in a fresh sandboxed kernel, cell by cell, then probe it.

A failing cell does not stop the notebook. A cell past its time limit is interrupted and the next
cell runs. When the kernel dies (or ignores an interrupt, or a resource limit stops it) at cell k,
cells 0..k-1 are run again in a fresh kernel, from a clean working directory, and the probes run
there, so what was defined before still earns its points.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.data.sources import install_data
from grader.errors import KernelStartError, SandboxUnavailableError
from grader.execute.base import CellRun, ExecutionJob, ExecutionResult, ExecutionSummary
from grader.execute.kernel import KernelSession, start_kernel_session
from grader.execute.limits import describe_exit, explain_error
from grader.execute.sandbox import Sandbox, abort_sandboxes, open_sandbox, sandbox_support
from grader.observe.preamble import KernelGate, facts_request, run_preamble
from grader.observe.probe import ProbeReply, ProbeRequest, parse_reply, render_probe

NOTEBOOK_COPY_NAME = "submission.ipynb"
EXCERPT_LINES = 4
EXCERPT_CHARS = 300

KERNEL_DIED_WARNING = ("The kernel died at cell {index} (exit code {code}); cells 1..{before} were "
                       "run again in a fresh kernel to probe what they define.")
KERNEL_STUCK_WARNING = ("Cell {index} did not stop when interrupted after its time limit; the kernel "
                        "was killed and cells 1..{before} were run again in a fresh kernel.")
KERNEL_STOPPED_WARNING = ("The kernel was stopped at cell {index}: {reason}. Cells 1..{before} were "
                          "run again in a fresh kernel to probe what they define.")
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
class _Pass:
    """The state of one pass over the notebook's cells in one kernel."""

    runs: dict[int, CellRun] = field(default_factory=dict)
    died_at: int | None = None
    exit_code: int | None = None
    stuck_at: int | None = None
    notebook_timed_out: bool = False
    limit_exceeded: str | None = None
    stopped_because: str | None = None  # a sentence, when a resource limit ended the kernel


AfterProbes = Callable[[KernelSession, Path], None]


class LocalKernelExecutor:
    """Each notebook in its own sandbox (see grader/execute/sandbox.py), whose working directory
    holds only a copy of the notebook and `data/`. `after_probes(session, workdir)`, when given,
    is called with the live kernel once the probes have run (for audits and tests)."""

    name = "local"

    def __init__(self, after_probes: AfterProbes | None = None) -> None:
        self.after_probes = after_probes

    def abort(self) -> None:
        """Kill every running notebook of this process (a batch was interrupted)."""
        abort_sandboxes()

    def run(self, job: ExecutionJob) -> ExecutionResult:
        started = time.monotonic()
        notebook = copy.deepcopy(job.notebook)
        try:
            support = sandbox_support(job.limits.sandbox)
            with open_sandbox(job.limits, support) as sandbox:
                _prepare_workdir(sandbox, notebook, job)
                env = kernel_env(sandbox.workdir, job.torch_threads)
                try:
                    result = self._run_in_kernels(job, notebook, sandbox, env)
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

    def _run_in_kernels(self, job: ExecutionJob, notebook: dict[str, Any], sandbox: Sandbox,
                        env: dict[str, str]) -> ExecutionResult:
        limits = job.limits
        code_cells = [i for i, c in enumerate(notebook["cells"])
                      if c["cell_type"] == "code" and _source(c).strip()]
        warnings: list[str] = []
        with self._kernel(sandbox, env, limits) as session:
            gate = run_preamble(session, job.data, limits.kernel_start_timeout_s)
            first = self._run_cells(session, sandbox, job, notebook, code_cells, record_outputs=True)
            if first.died_at is None and first.stuck_at is None:
                replies = self._run_probes(session, job.probes, gate)
                self._after_probes(session, sandbox.workdir)
                return _result(job, notebook, first, replies, warnings)
        # The kernel died or hung at some cell: replay the cells before it, then probe.
        broken_at = first.died_at if first.died_at is not None else first.stuck_at
        before = [i for i in code_cells if i < broken_at]
        before_text = max(before) + 1 if before else "(none)"
        # Cells are counted from 1 in messages (the JSON keeps 0-based indices).
        if first.stopped_because is not None:
            warnings.append(KERNEL_STOPPED_WARNING.format(
                index=broken_at + 1, reason=first.stopped_because, before=before_text))
        else:
            template = KERNEL_DIED_WARNING if first.died_at is not None else KERNEL_STUCK_WARNING
            warnings.append(template.format(index=broken_at + 1, code=first.exit_code,
                                            before=before_text))
        _prepare_workdir(sandbox, notebook, job)
        with self._kernel(sandbox, env, limits) as session:
            gate = run_preamble(session, job.data, limits.kernel_start_timeout_s)
            replay = self._run_cells(session, sandbox, job, copy.deepcopy(notebook), before,
                                     record_outputs=False)
            if replay.died_at is not None or replay.stuck_at is not None:
                warnings.append("The kernel broke again while replaying; nothing could be probed.")
                replies = {p.key: ProbeReply("kernel_died", message="the kernel died before probing")
                           for p in job.probes}
            else:
                replies = self._run_probes(session, job.probes, gate)
                self._after_probes(session, sandbox.workdir)
        return _result(job, notebook, first, replies, warnings)

    def _after_probes(self, session: KernelSession, workdir: Path) -> None:
        if self.after_probes is not None:
            self.after_probes(session, workdir)

    @staticmethod
    def _kernel(sandbox: Sandbox, env: dict[str, str], limits: Any):
        return start_kernel_session(sandbox, env, limits.kernel_start_timeout_s,
                                    limits.max_cell_output_bytes)

    def _run_cells(self, session: KernelSession, sandbox: Sandbox, job: ExecutionJob,
                   notebook: dict[str, Any], indices: list[int], record_outputs: bool) -> _Pass:
        limits = job.limits
        state = _Pass()
        deadline = time.monotonic() + limits.notebook_timeout_s
        for index in indices:
            cell = notebook["cells"][index]
            source = _source(cell)
            excerpt = source_excerpt(source)
            remaining = deadline - time.monotonic()
            broken = state.died_at is not None or state.stuck_at is not None
            if broken or remaining <= 0:
                state.notebook_timed_out |= remaining <= 0 and not broken
                state.runs[index] = CellRun(index, "not_run", source_excerpt=excerpt)
                continue
            timeout = min(limits.cell_timeout_s, remaining)
            outcome = session.execute(source, timeout, max_output_bytes=limits.max_cell_output_bytes)
            if record_outputs:
                cell["outputs"] = outcome.outputs
                cell["execution_count"] = outcome.execution_count
            if outcome.status == "timeout" and limits.cell_timeout_s > remaining:
                state.notebook_timed_out = True
            message = explain_error(outcome.error, outcome.message, limits)
            if outcome.status == "kernel_died":
                state.died_at, state.exit_code = index, session.exit_code()
                message = _stopped_because(sandbox, state, limits)
            if outcome.kernel_stuck:
                state.stuck_at = index
            if outcome.status == "timeout":
                message = f"the cell was still running after {timeout:.0f} s and was interrupted"
            state.runs[index] = CellRun(
                index=index, status=outcome.status, seconds=round(outcome.seconds, 3),
                error=outcome.error, message=message, source_excerpt=excerpt,
                dropped_output_bytes=outcome.dropped_output_bytes)
        return state

    def _run_probes(self, session: KernelSession, probes: tuple[ProbeRequest, ...],
                    gate: KernelGate) -> dict[str, ProbeReply]:
        replies: dict[str, ProbeReply] = {}
        for request in probes:
            if not session.is_alive():
                replies[request.key] = ProbeReply("kernel_died", message="the kernel died while probing")
                continue
            code, expressions, nonce = render_probe(request, gate)  # a nonce per probe, drawn now
            outcome = session.execute(code, request.timeout_s, silent=True,
                                      user_expressions=expressions, max_output_bytes=10_000)
            replies[request.key] = _probe_reply(outcome, request, nonce)
            if outcome.kernel_stuck:
                break
        for request in probes:
            replies.setdefault(request.key, ProbeReply(
                "not_run", message="the kernel stopped answering during an earlier probe"))
        replies[KERNEL_FACTS_KEY] = _kernel_facts(session, gate)
        return replies


def _stopped_because(sandbox: Sandbox, state: _Pass, limits: Any) -> str | None:
    """Why the kernel died, when a resource limit ended it (recorded in `state`)."""
    breach = sandbox.take_breach() or describe_exit(state.exit_code, limits)
    if breach is not None:
        state.limit_exceeded, state.stopped_because = breach.limit, breach.message
    return state.stopped_because


def _prepare_workdir(sandbox: Sandbox, notebook: dict[str, Any], job: ExecutionJob) -> None:
    """A clean working directory holding the notebook and its data, nothing else."""
    sandbox.reset_workdir()
    (sandbox.workdir / NOTEBOOK_COPY_NAME).write_text(_notebook_json(notebook), "utf-8")
    install_data(sandbox.workdir / "data", job.data)


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
        return ProbeReply("probe_error", seconds=seconds,
                          message=f"{outcome.error}: {outcome.message}")
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


def _result(job: ExecutionJob, notebook: dict[str, Any], state: _Pass,
            replies: dict[str, ProbeReply], warnings: list[str]) -> ExecutionResult:
    facts = replies.pop(KERNEL_FACTS_KEY, None)
    summary = ExecutionSummary(kernel=(facts.data or {}) if facts is not None else {},
        seconds=0.0, cells=tuple(state.runs[i] for i in sorted(state.runs)),
        kernel_died=state.died_at is not None, kernel_died_at_cell=state.died_at,
        kernel_exit_code=state.exit_code, notebook_timed_out=state.notebook_timed_out,
        torch_threads=job.torch_threads, warnings=tuple(warnings), limit_exceeded=state.limit_exceeded)
    return ExecutionResult(summary=summary, probe_replies=replies, executed_notebook=notebook)


def _not_started(job: ExecutionJob, notebook: dict[str, Any], error: str) -> ExecutionResult:
    message = START_FAILED.format(error=error)
    summary = ExecutionSummary(seconds=0.0, cells=(), torch_threads=job.torch_threads,
                               warnings=(message,))
    replies = {p.key: ProbeReply("not_run", message=message) for p in job.probes}
    return ExecutionResult(summary=summary, probe_replies=replies, executed_notebook=notebook)
