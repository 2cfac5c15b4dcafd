"""The reference implementation, loaded in the grader's process from the file the rubric names."""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from grader.errors import RubricError
from grader.rubric.model import ReferenceSpec

NO_CLASS = "{module}: defines no class {name!r} (named by reference.model_class in the rubric)"


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
    if key not in _SHAPES_CACHE:
        _SHAPES_CACHE[key] = _stage_shapes(spec, stages)
    return dict(_SHAPES_CACHE[key])
