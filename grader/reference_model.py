"""The reference implementation, loaded in the grader's process from the file the rubric names."""

from __future__ import annotations

import importlib.util
import sys
import threading
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from grader.errors import RubricError
from grader.rubric.model import ReferenceSpec

NO_CLASS = "{module}: defines no class {name!r} (named by reference.class in the rubric)"


@lru_cache(maxsize=8)
def load_reference_module(path: Path) -> ModuleType:
    name = f"grader_reference_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RubricError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def build_reference_model(spec: ReferenceSpec):
    """A fresh instance of the reference network, in eval mode."""
    module = load_reference_module(spec.module)
    model_class = getattr(module, spec.model_class, None)
    if model_class is None:
        raise RubricError(NO_CLASS.format(module=spec.module, name=spec.model_class))
    return model_class(**dict(spec.model_kwargs)).eval()


_SHAPES_CACHE: dict[tuple, dict[str, tuple[int, ...]]] = {}
# Building the reference network draws its initial weights from torch's global generator: one
# thread at a time, and each cached result computed once.
_CACHE_LOCK = threading.RLock()


def _spec_key(spec: ReferenceSpec) -> tuple:
    return (spec.module, spec.model_class, tuple(sorted(spec.model_kwargs.items())), spec.input_shape)


def _stage_shapes(spec: ReferenceSpec, stages: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    import torch

    model = build_reference_model(spec)
    modules = dict(model.named_modules())
    missing = [s for s in stages if s not in modules]
    if missing:
        raise RubricError(f"{spec.module}: the reference model has no submodule(s) {missing}; "
                          f"known: {sorted(n for n in modules if n)}")
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [modules[stage].register_forward_hook(
        lambda _m, _i, out, stage=stage: shapes.__setitem__(stage, tuple(out.shape[1:])))
        for stage in stages]
    try:
        with torch.no_grad():
            model(torch.zeros(2, *spec.input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


def reference_stage_shapes(spec: ReferenceSpec, stages: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """Per-sample output shape of each named submodule of the reference network (forward hooks)."""
    key = (_spec_key(spec), stages)
    with _CACHE_LOCK:
        if key not in _SHAPES_CACHE:
            _SHAPES_CACHE[key] = _stage_shapes(spec, stages)
        return dict(_SHAPES_CACHE[key])


_TRACE_CACHE: dict[tuple, tuple[list[dict], int]] = {}


def _traced(spec: ReferenceSpec) -> tuple[list[dict], int]:
    """The reference network traced by the probe's own `trace_model` (same code as for students)."""
    key = _spec_key(spec)
    with _CACHE_LOCK:
        if key not in _TRACE_CACHE:
            import torch

            from grader.observe.kernel_probe import trace_model

            model = build_reference_model(spec)
            with torch.no_grad():
                events, _ = trace_model(model, torch.zeros(2, *spec.input_shape))
            params = sum(p.numel() for p in model.parameters() if p.requires_grad)
            _TRACE_CACHE[key] = (events, int(params))
        return _TRACE_CACHE[key]


def reference_trace(spec: ReferenceSpec) -> list[dict]:
    return _traced(spec)[0]


def reference_trainable_params(spec: ReferenceSpec) -> int:
    return _traced(spec)[1]


def reference_network_source(spec: ReferenceSpec) -> str:
    """Source of the reference network class alone (not its train/test), to rebuild it in the
    kernel for D1/D2: the architecture is the exercise's contract, not a secret. Read from the
    file (what `inspect.getsource` gives), without importing it: planning a notebook's probes
    needs no torch in the grader's process."""
    return _network_source(spec.module, spec.model_class)


@lru_cache(maxsize=8)
def _network_source(path: Path, class_name: str) -> str:
    import ast

    text = path.read_text("utf-8")
    found = [node for node in ast.parse(text).body if isinstance(node, ast.ClassDef) and node.name == class_name]
    if not found:
        raise RubricError(NO_CLASS.format(module=path, name=class_name))
    node = found[-1]  # as the module's namespace: the last definition wins
    first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
    lines = text.splitlines(keepends=True)[first - 1:node.end_lineno]
    header = "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n\n"
    return header + "".join(lines)


# The students' package (`grader bundle --public`) holds the reference network but not the
# reference train() / test(): a solution of Part D. Their outcomes on the rubric's fixed requests
# are recorded at bundling time in the module's RECORDED_OUTCOMES, keyed by `outcome_key`.
RECORDED_OUTCOMES = "RECORDED_OUTCOMES"
NOT_RECORDED = ("{module}: this is a students' reference module (public parts only) and it holds no recorded "
                "outcome of the reference {kind}() for this request; rebuild the students' package with "
                "`grader bundle --public` from the same rubric")


def outcome_key(kind: str, payload: dict) -> str:
    """A stable key of one reference train()/test() request."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps([kind, payload], sort_keys=True).encode("utf-8")).hexdigest()


def recorded_outcome(spec: ReferenceSpec, kind: str, payload: dict) -> dict | None:
    """The recorded outcome of the reference `kind` ("train" / "test") on `payload`, when the
    reference module is a students' one; None when it has the functions themselves."""
    module = load_reference_module(spec.module)
    recorded = getattr(module, RECORDED_OUTCOMES, None)
    if recorded is None or hasattr(module, kind):
        return None
    key = outcome_key(kind, payload)
    if key not in recorded:
        raise RubricError(NOT_RECORDED.format(module=spec.module, kind=kind))
    return recorded[key]
