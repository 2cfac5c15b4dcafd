"""Check kinds by the name a rubric uses in `kind = "..."`. A new kind is a new class here."""

from __future__ import annotations

from grader.checks.base import CheckKind
from grader.checks.functions import FunctionCheck
from grader.checks.loaders import DataLoaderCheck
from grader.checks.network import ArchitectureCheck, ParameterCountCheck
from grader.checks.shapes import VariableShapesCheck
from grader.checks.train_test import TestFunctionCheck, TrainFunctionCheck
from grader.checks.training import BriefTrainingCheck, SavedModelCheck

CHECK_KINDS: dict[str, CheckKind] = {
    "function": FunctionCheck(),
    "variable_shapes": VariableShapesCheck(),
    "architecture": ArchitectureCheck(),
    "parameter_count": ParameterCountCheck(),
    "data_loader": DataLoaderCheck(),
    "train_function": TrainFunctionCheck(),
    "test_function": TestFunctionCheck(),
    "brief_training": BriefTrainingCheck(),
    "saved_model": SavedModelCheck(),
}
