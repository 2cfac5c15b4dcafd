"""Check kinds by the name a rubric uses in `kind = "..."`. A new kind is a new class here."""

from __future__ import annotations

from grader.checks.base import CheckKind
from grader.checks.functions import FunctionCheck
from grader.checks.pending import PendingCheck
from grader.checks.shapes import VariableShapesCheck

PENDING_KINDS = ("architecture", "parameter_count", "data_loaders", "train_function",
                 "test_function", "brief_training", "saved_model")

CHECK_KINDS: dict[str, CheckKind] = {
    "function": FunctionCheck(),
    "variable_shapes": VariableShapesCheck(),
    **{kind: PendingCheck(kind) for kind in PENDING_KINDS},
}
