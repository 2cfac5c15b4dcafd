"""Load a rubric TOML file and validate every field before any notebook runs."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any

from grader.errors import RubricError
from grader.rubric.fields import (
    Option,
    TableReader,
    as_int,
    as_number,
    as_str,
    as_table,
    list_of,
    non_negative,
    one_of,
    positive,
)
from grader.rubric.model import (
    SANDBOX_MODES,
    SEED_POLICIES,
    VISIBILITIES,
    CheckSpec,
    DataSpec,
    ExecutionLimits,
    ReferenceSpec,
    Rubric,
    SeedPolicy,
)

SCHEMA_VERSION = 1
CHECK_ID = re.compile(r"^(?P<task>[A-Z][0-9]+)\.[a-z][a-z0-9_]*$")

NOT_FOUND = ("Rubric file not found: {path}. Pass --rubric with the path of a rubric TOML file "
             "(the default one is rubrics/ex06.toml).")
BAD_TOML = "{path}: not valid TOML: {error}. Fix the syntax at that line and try again."
BAD_CHECK_ID = ("{path}: checks[{index}].id: found {found!r}; allowed: '<task>.<aspect>' such as "
                "'A2.random_inputs' (task: a capital letter and digits; aspect: lower_snake_case)")
DUPLICATE_CHECK = "{path}: checks[{index}].id: {found!r} is used by more than one check; ids must be unique"
NO_CHECKS = "{path}: the rubric declares no [[checks]]; add at least one"
BAD_MODULE = "{path}: reference.module: file {module} does not exist (paths are relative to the rubric file)"


def load_rubric(path: str | Path) -> Rubric:
    """Read and validate a rubric; raise RubricError naming file, field, found value and what is allowed."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RubricError(NOT_FOUND.format(path=path)) from None
    except OSError as error:
        raise RubricError(f"{path}: cannot be read: {error.strerror}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise RubricError(BAD_TOML.format(path=path, error=error)) from None
    return _parse(path, hashlib.sha256(raw).hexdigest(), document)


def _parse(path: Path, sha256: str, document: dict[str, Any]) -> Rubric:
    top = TableReader(path, "", document)
    top.take("schema", Option(f"the integer {SCHEMA_VERSION}", one_of_int(SCHEMA_VERSION)))
    title = top.take("title", Option("a string", as_str, "Untitled rubric"))
    tasks = top.take("tasks", Option("a table of task id = title", as_table, {}))
    data = _parse_data(path, top.take("data", Option("a table", as_table)))
    seed = _parse_seed(path, top.take("seed", Option("a table", as_table, {})))
    execution = _parse_execution(path, top.take("execution", Option("a table", as_table, {})))
    reference_table = top.take("reference", Option("a table", as_table, None))
    reference = None if reference_table is None else _parse_reference(path, reference_table)
    raw_checks = top.take("checks", Option("an array of [[checks]] tables", list_of(as_table), ()))
    top.finish()
    if not raw_checks:
        raise RubricError(NO_CHECKS.format(path=path))
    checks = tuple(_parse_check(path, index, table) for index, table in enumerate(raw_checks))
    _reject_duplicate_ids(path, checks)
    task_titles = {str(k): str(v) for k, v in tasks.items()}
    return Rubric(
        path=path, sha256=sha256, title=title,
        tasks=MappingProxyType(task_titles), data=data, seed=seed, execution=execution,
        reference=reference, checks=checks,
    )


def one_of_int(expected: int):
    def checked(value: Any) -> int:
        if as_int(value) != expected:
            raise ValueError
        return expected
    return checked


def at_least(low: int):
    def checked(value: Any) -> int:
        if as_int(value) < low:
            raise ValueError
        return value
    return checked


def _parse_data(path: Path, table: dict[str, Any]) -> DataSpec:
    from grader.data.sources import DATA_SOURCES

    reader = TableReader(path, "data", table)
    values = reader.take_all({
        "source": Option(f"one of {', '.join(DATA_SOURCES)}", one_of(DATA_SOURCES)),
        "root": Option("a folder path (relative to the rubric file)", as_str, None),
    })
    root = None if values["root"] is None else (path.parent / values["root"]).resolve()
    return DataSpec(source=values["source"], root=root)


def _parse_seed(path: Path, table: dict[str, Any]) -> SeedPolicy:
    values = TableReader(path, "seed", table).take_all({
        "policy": Option(f"one of {', '.join(SEED_POLICIES)}", one_of(SEED_POLICIES), "per_submission"),
        "value": Option("a non-negative integer", non_negative(as_int), 0),
    })
    return SeedPolicy(**values)


def _parse_execution(path: Path, table: dict[str, Any]) -> ExecutionLimits:
    seconds = Option("a number of seconds > 0", positive(as_number))
    values = TableReader(path, "execution", table).take_all({
        "cell_timeout_s": Option(seconds.allowed, seconds.convert, 120.0),
        "notebook_timeout_s": Option(seconds.allowed, seconds.convert, 900.0),
        "probe_timeout_s": Option(seconds.allowed, seconds.convert, 30.0),
        "kernel_start_timeout_s": Option(seconds.allowed, seconds.convert, 60.0),
        "max_cell_output_bytes": Option("a positive integer", positive(as_int), 200_000),
        "torch_threads": Option("a positive integer (omit it for cores / jobs)", positive(as_int), None),
        # Below ~1 GB torch cannot import; an address-space limit is not used (torch maps ~3 GB).
        "memory_limit_mb": Option("an integer number of MB >= 1024", at_least(1024), 4096),
        "cpu_time_limit_s": Option(seconds.allowed, seconds.convert, 3600.0),
        "max_processes": Option("an integer >= 16", at_least(16), 512),
        "max_file_mb": Option("a positive integer number of MB", positive(as_int), 512),
        "max_workdir_mb": Option("a positive integer number of MB", positive(as_int), 1024),
        "sandbox": Option(f"one of {', '.join(SANDBOX_MODES)}", one_of(SANDBOX_MODES), "auto"),
    })
    return ExecutionLimits(**values)


def _parse_reference(path: Path, table: dict[str, Any]) -> ReferenceSpec:
    values = TableReader(path, "reference", table).take_all({
        "module": Option("a path to a .py file (relative to the rubric file)", as_str),
        "model_class": Option("a class name", as_str),
        "model_kwargs": Option("a table of keyword arguments", as_table, {}),
        "input_shape": Option("a list of positive integers, e.g. [1, 28, 28]",
                              list_of(positive(as_int), 1)),
    })
    module = (path.parent / values["module"]).resolve()
    if not module.is_file():
        raise RubricError(BAD_MODULE.format(path=path, module=module))
    return ReferenceSpec(
        module=module, model_class=values["model_class"],
        model_kwargs=MappingProxyType(values["model_kwargs"]), input_shape=values["input_shape"],
    )


def _parse_check(path: Path, index: int, table: dict[str, Any]) -> CheckSpec:
    from grader.checks.registry import CHECK_KINDS

    reader = TableReader(path, f"checks[{index}]", table)
    check_id = reader.take("id", Option("'<task>.<aspect>', e.g. 'A2.random_inputs'", as_str))
    match = CHECK_ID.match(check_id)
    if not match:
        raise RubricError(BAD_CHECK_ID.format(path=path, index=index, found=check_id))
    reader.where = f"checks[{index}] ({check_id})"
    kind_name = reader.take("kind", Option(f"one of {', '.join(CHECK_KINDS)}", one_of(CHECK_KINDS)))
    common = {
        "points": reader.take("points", Option("a number >= 0", non_negative(as_number))),
        "visibility": reader.take("visibility", Option(
            f"one of {', '.join(VISIBILITIES)}", one_of(VISIBILITIES), "public")),
        "title": reader.take("title", Option("a string", as_str, "")),
        "hint": reader.take("hint", Option("a string", as_str, "")),
    }
    options = {name: reader.take(name, option) for name, option in CHECK_KINDS[kind_name].options.items()}
    reader.finish()
    CHECK_KINDS[kind_name].validate(options, reader)
    return CheckSpec(id=check_id, task=match["task"], kind=kind_name,
                     options=MappingProxyType(options), **common)


def _reject_duplicate_ids(path: Path, checks: tuple[CheckSpec, ...]) -> None:
    seen: set[str] = set()
    for index, check in enumerate(checks):
        if check.id in seen:
            raise RubricError(DUPLICATE_CHECK.format(path=path, index=index, found=check.id))
        seen.add(check.id)
