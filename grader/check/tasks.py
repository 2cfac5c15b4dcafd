"""Restrict a rubric to some tasks: the checks a self-check asked for, and nothing else probed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from grader.errors import GraderError
from grader.rubric.model import Rubric

UNKNOWN_TASK = "Unknown task {found}; the tasks with {scope} checks are: {known}."
TASKS_NOTE = ("Only task(s) {tasks} checked ({checks} of the {total} {scope} checks): the others were not "
              "probed{training}. The notebook itself ran in full.")
NO_TRAINING = ", so the grader's brief training of your network did not run"


class UnknownTaskError(GraderError):
    """A task id that the rubric has no (public) check for."""


def only_tasks(rubric: Rubric, tasks: Iterable[str], scope: str = "public") -> Rubric:
    """`rubric` with the checks of `tasks` only (task ids as in the rubric: A2, B1, ...; any case)."""
    wanted = [task.strip().upper() for task in tasks if task.strip()]
    if not wanted:
        return rubric
    known = list(dict.fromkeys(check.task for check in rubric.checks))
    unknown = [task for task in wanted if task not in known]
    if unknown:
        raise UnknownTaskError(UNKNOWN_TASK.format(found=", ".join(unknown), scope=scope, known=", ".join(known)))
    return replace(rubric, checks=tuple(check for check in rubric.checks if check.task in wanted))


def tasks_note(full: Rubric, checked: Rubric, scope: str = "public") -> str:
    """One sentence saying which tasks were checked and what was left out; '' when all were."""
    if len(checked.checks) == len(full.checks):
        return ""
    tasks = ", ".join(dict.fromkeys(check.task for check in checked.checks))
    skipped_training = (not any(check.kind == "brief_training" for check in checked.checks)
                        and any(check.kind == "brief_training" for check in full.checks))
    return TASKS_NOTE.format(tasks=tasks, checks=len(checked.checks), total=len(full.checks), scope=scope,
                             training=NO_TRAINING if skipped_training else "")
