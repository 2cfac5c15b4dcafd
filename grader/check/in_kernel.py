"""`selfcheck("A2")` in the student's own running kernel: the public checks of a task against
what the kernel has defined now, without running the notebook again.

The probes are the very code `grader check` sends into a grading kernel (`kernel_probe.run`,
executed from its source in a namespace of its own), and the verdicts come from the same checks
and scoring: only where it runs differs. It is a self-check, not the grade: it runs in the
student's process (nothing is isolated, nothing is secret there), on the public checks only.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Mapping
from typing import Any

from grader.check.tasks import only_tasks
from grader.check.view import SelfCheckResult

# What each kind of check costs, said before it runs (training is the only slow one).
TRAINING_NOTICE = ("{task}: the grader trains a fresh copy of your network for {epochs} epoch(s) on {samples:,} "
                   "images with {threads} thread(s): this takes from a few seconds up to {budget:g} s.")
SELF_CHECK_ID = "selfcheck"


def selfcheck(*tasks: str, rubric: str | None = None, namespace: Mapping[str, Any] | None = None) -> None:
    """Run the public checks of `tasks` (all public checks when none) on what this kernel has
    defined now, and show the result as a table (HTML in Jupyter / Colab / VS Code, text elsewhere).
    Example: `selfcheck("A2")`, `selfcheck("A2", "B1")`, `selfcheck()`."""
    from grader.errors import GraderError

    namespace = namespace if namespace is not None else _caller_namespace()
    try:
        result = selfcheck_result(*tasks, rubric=rubric, namespace=namespace)
    except GraderError as error:  # a wrong task id, a broken rubric: a sentence, not a traceback
        print(f"Error: {error}")
        return
    _show(result)


def selfcheck_result(*tasks: str, rubric: str | None = None,
                     namespace: Mapping[str, Any] | None = None) -> SelfCheckResult:
    """The self-check as data (what `selfcheck` shows)."""
    from grader.grade.pipeline import plan_probes
    from grader.paths import default_rubric_path
    from grader.rubric.load import load_rubric

    namespace = namespace if namespace is not None else _caller_namespace()
    full = load_rubric(rubric or default_rubric_path())
    public = full.public_only()
    checked = only_tasks(public, tasks)
    started = time.perf_counter()
    seed = checked.seed.value  # fixed: the same definitions give the same answer every time
    requests, inputs, probe_of = plan_probes(checked, seed)
    for notice in _notices(checked):
        print(notice, flush=True)
    replies = {request.key: _probe(namespace, request) for request in requests}
    report = _score(checked, seed, replies, inputs, probe_of, time.perf_counter() - started)
    return SelfCheckResult(report=report, tasks=tuple(dict.fromkeys(c.task for c in checked.checks)),
                           all_tasks=len(checked.checks) == len(public.checks),
                           seconds=round(time.perf_counter() - started, 2))


def register_magic(ipython) -> None:
    """`%selfcheck A2 B1` (or `%selfcheck` for every public check)."""

    def magic(line: str) -> None:
        selfcheck(*line.replace(",", " ").split(), namespace=ipython.user_ns)

    ipython.register_magic_function(magic, "line", "selfcheck")


def _probe(namespace: Mapping[str, Any], request):
    """One probe, run in this process by the same code a grading kernel runs."""
    from grader.observe.preamble import probe_source
    from grader.observe.probe import ProbeReply

    probe_namespace: dict[str, Any] = {"__name__": "grader_probe"}
    exec(compile(probe_source(), "<grader-probe>", "exec"), probe_namespace)  # noqa: S102 - our own probe
    started = time.perf_counter()
    try:
        data = json.loads(probe_namespace["run"](namespace, json.dumps(request.payload)))
    except Exception as error:  # noqa: BLE001 - the probe records student errors itself; this is ours
        return ProbeReply("probe_error", message=f"{type(error).__name__}: {error}",
                          seconds=round(time.perf_counter() - started, 3))
    return ProbeReply("ok", data=data, seconds=round(time.perf_counter() - started, 3))


def _score(checked, seed: int, replies, inputs, probe_of, seconds: float):
    """Observations of this kernel, scored exactly as `grader check` scores a notebook's."""
    from grader import __version__
    from grader.checks.base import ProbeRecord
    from grader.execute.base import ExecutionSummary
    from grader.observe.observations import Observations
    from grader.score import score_observations

    probes = {check_id: ProbeRecord(inputs=inputs[check_id], status=replies[key].status, data=replies[key].data,
                                    message=replies[key].message, seconds=replies[key].seconds, probe=key)
              for check_id, key in probe_of.items()}
    execution = ExecutionSummary(seconds=round(seconds, 2), cells=(), torch_threads=_torch_threads())
    observations = Observations(submission=SELF_CHECK_ID, notebook="", notebook_sha256="",
                                rubric_sha256=checked.sha256, seed=seed, seed_policy="fixed",
                                status="executed", grader_version=__version__, execution=execution,
                                probes=probes)
    return score_observations(observations, checked)


def _notices(rubric) -> list[str]:
    """A sentence for each check that trains, said before it runs."""
    from grader.data.sources import student_arrays

    notices = []
    for check in rubric.checks:
        if check.kind == "brief_training":
            options = check.options
            samples = options.get("train_samples") or len(student_arrays(rubric.data).x_train)
            notices.append(TRAINING_NOTICE.format(task=check.id, epochs=options["epochs"], samples=samples,
                                                  threads=options["torch_threads"],
                                                  budget=options["time_budget_s"]))
    return notices


def _torch_threads() -> int:
    import sys

    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else 1


def _caller_namespace() -> Mapping[str, Any]:
    """The kernel's user namespace (IPython), else the globals of whoever called us."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        return shell.user_ns
    frame = inspect.currentframe()
    while frame is not None and frame.f_globals.get("__name__", "").startswith("grader."):
        frame = frame.f_back
    return frame.f_globals if frame is not None else {}


def _show(result: SelfCheckResult) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display(result)
            return
    except ImportError:
        pass
    print(result.text())


def _register_in_running_ipython() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        register_magic(shell)


_register_in_running_ipython()
