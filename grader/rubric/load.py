"""Load a rubric TOML file and validate every field before any notebook runs."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any

from grader.checks.registry import CHECK_KINDS
from grader.data.sources import SOURCE_NAMES, serves_without_root
from grader.errors import RubricError
from grader.rubric.fields import (
    Option,
    TableReader,
    as_int,
    as_number,
    as_str,
    as_table,
    list_of,
    module_name,
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
    ModelSpec,
    ReferenceSpec,
    Rubric,
    SeedPolicy,
)

SCHEMA_VERSION = 1
TOP_LEVEL_FIELDS = ("schema", "title", "tasks", "data", "seed", "execution", "model", "reference", "checks")
COMMON_CHECK_FIELDS = ("id", "kind", "points", "visibility", "title", "hint")
CHECK_ID = re.compile(r"^(?P<task>[A-Z][0-9]+)\.[a-z][a-z0-9_]*$")

NOT_FOUND = ("Rubric file not found: {path}. Pass --rubric with the path of a rubric TOML file "
             "(the default one is rubrics/ex06.toml).")
BAD_TOML = "{path}: not valid TOML: {error}. Fix the syntax at that line and try again."
BAD_CHECK_ID = ("{path}: checks[{index}].id: found {found!r}; allowed: '<task>.<aspect>' such as "
                "'A2.random_inputs' (task: a capital letter and digits; aspect: lower_snake_case)")
DUPLICATE_CHECK = "{path}: checks[{index}].id: {found!r} is used by more than one check; ids must be unique"
NO_CHECKS = "{path}: the rubric declares no [[checks]]; add at least one"
NEEDS_MODEL = "{path}: [reference] needs a [model] table too (it gives the input shape and class count)"
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
    document, sources = _read_document(path, raw, ())
    digest = hashlib.sha256(b"".join(sources)).hexdigest()
    return _parse(path, digest, document)


def _read_document(path: Path, raw: bytes, chain: tuple[Path, ...]) -> tuple[dict[str, Any], list[bytes]]:
    """The TOML document of `path` with its `extends` base merged in, and every file's bytes."""
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise RubricError(BAD_TOML.format(path=path, error=error)) from None
    _absolute_paths(document, path)
    base_name = document.pop("extends", None)
    if base_name is None:
        return document, [raw]
    if not isinstance(base_name, str):
        raise RubricError(f"{path}: extends: found {base_name!r}; allowed: the path of another rubric file")
    base_path = (path.parent / base_name).resolve()
    if base_path in chain or base_path == path.resolve():
        raise RubricError(f"{path}: extends: {base_path} extends itself (a cycle)")
    try:
        base_raw = base_path.read_bytes()
    except OSError:
        raise RubricError(f"{path}: extends: rubric {base_path} not found "
                          f"(paths are relative to {path.parent})") from None
    base, sources = _read_document(base_path, base_raw, (*chain, path.resolve()))
    return _merge(base, document, path), [*sources, raw]


def _absolute_paths(document: dict[str, Any], path: Path) -> None:
    """Resolve file paths against the file that names them, so an extending rubric may live elsewhere."""
    for table, key in (("reference", "module"), ("data", "root")):
        section = document.get(table)
        if isinstance(section, dict) and isinstance(section.get(key), str):
            section[key] = str((path.parent / section[key]).resolve())


def _merge(base: dict[str, Any], child: dict[str, Any], path: Path) -> dict[str, Any]:
    """Tables merge key by key; [[checks]] merge by id (new ids are appended); `remove_checks` drops."""
    merged = dict(base)
    removed = child.pop("remove_checks", [])
    for key, value in child.items():
        if key == "checks":
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    checks = [dict(c) for c in base.get("checks", []) if c.get("id") not in removed]
    unknown = set(removed) - {c.get("id") for c in base.get("checks", [])}
    if unknown:
        raise RubricError(f"{path}: remove_checks: {sorted(unknown)} are not checks of the base rubric")
    by_id = {c.get("id"): c for c in checks}
    for check in child.get("checks", []):
        if check.get("id") in by_id:
            by_id[check["id"]].update(check)
        else:
            checks.append(dict(check))
    merged["checks"] = checks
    return merged


def _parse(path: Path, sha256: str, document: dict[str, Any]) -> Rubric:
    top = TableReader(path, "", document)
    top.reject_unknown(TOP_LEVEL_FIELDS)
    top.take("schema", Option(f"the integer {SCHEMA_VERSION}", one_of_int(SCHEMA_VERSION)))
    title = top.take("title", Option("a string", as_str, "Untitled rubric"))
    tasks = top.take("tasks", Option("a table of task id = title", as_table, {}))
    data = _parse_data(path, top.take("data", Option("a table", as_table)))
    seed = _parse_seed(path, top.take("seed", Option("a table", as_table, {})))
    execution = _parse_execution(path, top.take("execution", Option("a table", as_table, {})))
    model_table = top.take("model", Option("a table", as_table, None))
    model = None if model_table is None else _parse_model(path, model_table)
    reference_table = top.take("reference", Option("a table", as_table, None))
    reference = None if reference_table is None else _parse_reference(path, reference_table, model)
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
        model=model, reference=reference, checks=checks,
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
    reader = TableReader(path, "data", table)
    values = reader.take_all({
        "source": Option(f"one of {', '.join(SOURCE_NAMES)}", one_of(SOURCE_NAMES)),
        "root": Option("a folder path (relative to the rubric file)", as_str, None),
        "hidden_count": Option("a positive integer", positive(as_int), 1000),
    })
    root = None if values["root"] is None else (path.parent / values["root"]).resolve()
    # A students' package serves its source from the files it holds, so its rubric names no root.
    if values["source"].startswith("torchvision:") and root is None and not serves_without_root(values["source"]):
        raise reader.error("root", "a folder holding the data set in torchvision's layout")
    return DataSpec(source=values["source"], root=root, hidden_count=values["hidden_count"])


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
        "probe_budget_s": Option(seconds.allowed, seconds.convert, 300.0),
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
        "max_notebook_mb": Option("a positive integer number of MB", positive(as_int), 25),
        "preload": Option("a list of importable module names, e.g. [\"torch\"]", list_of(module_name), ()),
    })
    return ExecutionLimits(**values)


def _parse_model(path: Path, table: dict[str, Any]) -> ModelSpec:
    values = TableReader(path, "model", table).take_all({
        "class": Option("a class name, or \"auto\" to pick the notebook's nn.Module that fits", as_str),
        "kwargs": Option("a table of keyword arguments", as_table, {}),
        "input_shape": Option("a list of positive integers, e.g. [1, 28, 28]", list_of(positive(as_int), 1)),
        "n_classes": Option("a positive integer", positive(as_int)),
    })
    return ModelSpec(model_class=values["class"], kwargs=MappingProxyType(values["kwargs"]),
                     input_shape=values["input_shape"], n_classes=values["n_classes"])


def _parse_reference(path: Path, table: dict[str, Any], model: ModelSpec | None) -> ReferenceSpec:
    values = TableReader(path, "reference", table).take_all({
        "module": Option("a path to a .py file (relative to the rubric file)", as_str),
        "class": Option("a class name", as_str),
        "kwargs": Option("a table of keyword arguments", as_table, {}),
    })
    if model is None:
        raise RubricError(NEEDS_MODEL.format(path=path))
    module = (path.parent / values["module"]).resolve()
    if not module.is_file():
        raise RubricError(BAD_MODULE.format(path=path, module=module))
    return ReferenceSpec(
        module=module, model_class=values["class"],
        model_kwargs=MappingProxyType(values["kwargs"]), input_shape=model.input_shape,
    )


def _parse_check(path: Path, index: int, table: dict[str, Any]) -> CheckSpec:
    reader = TableReader(path, f"checks[{index}]", table)
    check_id = reader.take("id", Option("'<task>.<aspect>', e.g. 'A2.random_inputs'", as_str))
    match = CHECK_ID.match(check_id)
    if not match:
        raise RubricError(BAD_CHECK_ID.format(path=path, index=index, found=check_id))
    reader.where = f"checks[{index}] ({check_id})"
    kind_name = reader.take("kind", Option(f"one of {', '.join(CHECK_KINDS)}", one_of(CHECK_KINDS)))
    reader.reject_unknown((*COMMON_CHECK_FIELDS, *CHECK_KINDS[kind_name].options))
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
