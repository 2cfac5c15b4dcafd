"""Everything observed about one submission, saved as JSON so it can be scored again later."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from grader.errors import ObservationsError
from grader.execute.base import ExecutionSummary
from grader.jsondata import from_data, to_data

OBSERVATIONS_SCHEMA = 1


@dataclass(frozen=True)
class ProbeRecord:
    """One observation as saved: the grader-side inputs, and the probe's reply.

    status: ok | timeout | probe_error | kernel_died | not_run (see ProbeReply)."""

    inputs: Any
    status: str
    data: Mapping[str, Any] | None
    message: str = ""
    seconds: float = 0.0
    probe: str = ""  # the key of the probe that observed it (checks may share one)


@dataclass(frozen=True)
class Observations:
    """status: executed (the notebook ran, maybe with errors) or not_run (it could not run: `reason`)."""

    submission: str
    notebook: str
    notebook_sha256: str
    rubric_sha256: str
    seed: int
    seed_policy: str
    status: str
    grader_version: str
    reason: str = ""
    execution: ExecutionSummary | None = None
    definitions: dict[str, int] = field(default_factory=dict)
    probes: dict[str, ProbeRecord] = field(default_factory=dict)
    graded_at: str = ""
    # Who handed it in, as found by discovery (grader.grade.submissions.Submission); kept here so
    # that re-scoring keeps it. student_id is raw: escape it (grader.names) wherever it is shown.
    student_id: str = ""
    student_name: str = ""
    source: str = ""
    id_rule: str = ""
    other_versions: list[str] = field(default_factory=list)
    intake_notes: list[str] = field(default_factory=list)
    schema: int = OBSERVATIONS_SCHEMA

    def to_json(self) -> str:
        return json.dumps(to_data(self), indent=1, allow_nan=True)

    @staticmethod
    def from_json(text: str, source: Path | str = "<observations>") -> Observations:
        try:
            raw: dict[str, Any] = json.loads(text)
            if raw.get("schema") != OBSERVATIONS_SCHEMA:
                raise ValueError(f"schema {raw.get('schema')!r}, expected {OBSERVATIONS_SCHEMA}")
            unknown = set(raw) - {f.name for f in fields(Observations)}
            if unknown:  # nested blocks may grow (an executor's new facts); the top level is the schema
                raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
            return from_data(Observations, raw)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise ObservationsError(
                f"{source}: not a readable observations file ({error}); grade the submission "
                f"again with `grader grade`") from None
