"""One exception type per way grading can fail; callers branch on the type, never on text."""

from __future__ import annotations


class GraderError(Exception):
    """Base of every error the grader raises on purpose."""


class RubricError(GraderError):
    """The rubric file is missing, unreadable or invalid; the message names file and field."""


class SubmissionsError(GraderError):
    """The submissions folder or notebook given by the user cannot be used."""


class NotebookUnreadableError(GraderError):
    """A submission is not a notebook that can be run (empty, invalid JSON, wrong format)."""


class KernelStartError(GraderError):
    """The kernel process could not be started or did not become ready in time."""


class ExecutionLostError(GraderError):
    """The machine or worker running a notebook was lost (again and again), so it has no results."""


class ObservationsError(GraderError):
    """Saved observations are missing or unreadable, so a re-score cannot proceed."""


class SandboxUnavailableError(GraderError):
    """The rubric requires an isolated sandbox and this machine cannot provide one."""
