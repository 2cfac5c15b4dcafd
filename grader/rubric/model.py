"""The rubric as data: every name, shape, threshold and point the grader uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

VISIBILITIES = ("public", "hidden")
SEED_POLICIES = ("per_submission", "fixed", "fresh")
SANDBOX_MODES = ("auto", "required", "off")


@dataclass(frozen=True)
class DataSpec:
    """Where the notebooks' data comes from (`source`) and, for on-disk sets, their root."""

    source: str
    root: Path | None = None
    hidden_count: int = 1000  # torchvision sets: the first N test images form the hidden split


@dataclass(frozen=True)
class SeedPolicy:
    """How the seed of the grading-time inputs is chosen.

    per_submission: derived from `value` and the notebook's bytes (same notebook, same seed;
    a student cannot hard-code answers for inputs that depend on their own file).
    fixed: `value` itself. fresh: a new random seed on every run (recorded in the report).
    """

    policy: str
    value: int


@dataclass(frozen=True)
class ExecutionLimits:
    """Time, output and resource limits of one notebook's kernel (the rubric's [execution] table).

    sandbox: auto (bubblewrap when it works, else run unisolated with a warning in every report),
    required (a notebook is not run without bubblewrap) or off (never isolate; for debugging).
    """

    cell_timeout_s: float
    notebook_timeout_s: float
    probe_timeout_s: float
    kernel_start_timeout_s: float
    max_cell_output_bytes: int
    torch_threads: int | None  # None: cores // jobs
    memory_limit_mb: int = 4096
    cpu_time_limit_s: float = 3600.0
    max_processes: int = 512
    max_file_mb: int = 512
    max_workdir_mb: int = 1024
    sandbox: str = "auto"
    max_notebook_mb: int = 25  # a larger submitted .ipynb gets an error report and is never read
    probe_budget_s: float = 300.0  # all probes of one notebook together (cells have notebook_timeout_s)
    preload: tuple[str, ...] = ()  # libraries imported in each kernel before the first student cell


@dataclass(frozen=True)
class ModelSpec:
    """The student's network: its class name ("auto": found by shape), arguments and data shape."""

    model_class: str
    kwargs: Mapping[str, Any]
    input_shape: tuple[int, ...]
    n_classes: int

    @property
    def auto(self) -> bool:
        return self.model_class == "auto"


@dataclass(frozen=True)
class ReferenceSpec:
    """The reference implementation module the grader imports in its own process."""

    module: Path
    model_class: str
    model_kwargs: Mapping[str, Any]
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class CheckSpec:
    """One check of the rubric. `options` holds the fields of its kind, already validated."""

    id: str
    task: str
    kind: str
    points: float
    visibility: str
    title: str
    hint: str
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def public(self) -> bool:
        return self.visibility == "public"


@dataclass(frozen=True)
class Rubric:
    path: Path
    sha256: str
    title: str
    tasks: Mapping[str, str]
    data: DataSpec
    seed: SeedPolicy
    execution: ExecutionLimits
    model: ModelSpec | None
    reference: ReferenceSpec | None
    checks: tuple[CheckSpec, ...]

    @property
    def max_score(self) -> float:
        return sum(check.points for check in self.checks)

    def task_ids(self) -> list[str]:
        """Tasks in rubric order (the order of their first check)."""
        return list(dict.fromkeys(check.task for check in self.checks))

    def task_max(self, task: str) -> float:
        return sum(check.points for check in self.checks if check.task == task)

    def check(self, check_id: str) -> CheckSpec:
        for check in self.checks:
            if check.id == check_id:
                return check
        raise KeyError(check_id)

    def public_only(self) -> Rubric:
        """The same rubric restricted to its public checks (the student's self-check)."""
        from dataclasses import replace

        return replace(self, checks=tuple(c for c in self.checks if c.public))
