"""ArchitectureCheck on hand-written `model` probe records (grader/observe/kernel_probe.py:
observe_model): the order rules need convolutions to look at, and the model used is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.checks.base import ProbeRecord, ScoreContext
from grader.checks.network import ArchitectureCheck, model_used
from grader.execute.base import ExecutionSummary
from grader.rubric.load import load_rubric

ROOT = Path(__file__).resolve().parent.parent
CHECK = ArchitectureCheck()


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(ROOT / "rubrics" / "cnn_freeform.toml")


def event(kind: str, shape: list[int], name: str = "") -> dict:
    return {"kind": "module", "name": name or kind.lower(), "type": kind, "shape": shape, "params": 0}


def observed(trace: list[dict], model: dict | None = None) -> ProbeRecord:
    data = {"found": True, "model_class": "Net", "trace": trace, "layers": [],
            "output": {"type": "torch.Tensor", "shape": [2, 10], "finite": True}, "trainable_params": 100,
            "eval_max_difference": 0.0, "batch_outputs": {}}
    if model is not None:
        data["model"] = model
    return ProbeRecord(inputs=None, status="ok", data=data)


def context(rubric) -> ScoreContext:
    return ScoreContext(rubric=rubric, execution=ExecutionSummary(seconds=1.0, cells=()), definitions={})


MLP = [event("Flatten", [2, 784]), event("Linear", [2, 64]), event("ReLU", [2, 64]), event("Linear", [2, 10])]
CNN = [event("Conv2d", [2, 8, 28, 28]), event("ReLU", [2, 8, 28, 28]), event("MaxPool2d", [2, 8, 14, 14]),
       event("Flatten", [2, 1568]), event("Linear", [2, 10])]


def test_order_rules_fail_a_network_without_convolutions(rubric):
    verdict = CHECK.evaluate(rubric.check("B1.layer_order"), observed(MLP), context(rubric))
    assert verdict.status == "fail"
    assert "has none" in verdict.message and "Linear" in verdict.message


def test_order_rules_pass_a_plain_cnn(rubric):
    assert CHECK.evaluate(rubric.check("B1.layer_order"), observed(CNN), context(rubric)).status == "pass"


def test_output_shape_says_how_the_model_was_built(rubric):
    model = {"class": "Net", "built_with": "recorded_arguments", "instance": "net", "arguments": "10"}
    verdict = CHECK.evaluate(rubric.check("B1.output_shape"), observed(CNN, model), context(rubric))
    assert verdict.status == "pass"
    assert "built with the arguments of `net`: Net(10)" in verdict.message
    assert verdict.details["model"] == model


@pytest.mark.parametrize("model, text", [
    ({"class": "Net", "built_with": "no_arguments", "instance": None, "arguments": ""}, ""),
    ({"class": "Sequential", "built_with": "reinitialised_copy", "instance": "model", "arguments": ""},
     " (a re-initialised copy of `model`)"),
])
def test_model_used_text(model: dict, text: str):
    assert model_used({"model": model}) == text
