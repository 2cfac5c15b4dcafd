"""D3 and E1 judged on hand-written observations: no kernel. The accuracy must come from training
(a never-trained instance near chance), and the hidden images are shifted with a recorded seed."""

from __future__ import annotations

import numpy as np
import pytest
from support import DEFAULT_RUBRIC

from grader.checks.base import ProbeRecord, ScoreContext
from grader.checks.registry import CHECK_KINDS
from grader.checks.training import shift_images
from grader.data.sources import data_arrays
from grader.execute.base import ExecutionSummary
from grader.grade.seeds import check_rng
from grader.rubric.load import load_rubric


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(DEFAULT_RUBRIC)


@pytest.fixture(scope="module")
def labels(rubric) -> np.ndarray:
    return data_arrays(rubric.data).hidden_labels


def judge(rubric, check_id: str, data: dict, inputs=None):
    check = rubric.check(check_id)
    if inputs is None:
        _, inputs = CHECK_KINDS[check.kind].plan(check, check_rng(1, check_id), rubric)
    context = ScoreContext(rubric=rubric, execution=ExecutionSummary(seconds=0.0, cells=()), definitions={})
    return CHECK_KINDS[check.kind].evaluate(check, ProbeRecord(inputs, "ok", data), context)


def chance(labels: np.ndarray) -> list[int]:
    return np.roll(labels, 1).tolist()  # about 10% right, like an untrained network


def training_reply(labels, final: list[int], untrained: list[int]) -> dict:
    return {"found": True, "model_class": "CNN", "untrained_predictions": untrained, "out_of_time": False,
            "seconds": 3.0, "epochs": [{"train_loss": 1.0, "batches": 110, "predictions": chance(labels)},
                                       {"train_loss": 0.2, "batches": 110, "predictions": final}]}


def test_d3_credits_accuracy_that_training_brought(rubric, labels) -> None:
    verdict = judge(rubric, "D3.brief_training", training_reply(labels, labels.tolist(), chance(labels)))
    assert verdict.status == "pass" and verdict.details["accuracy"] == 1.0
    assert "given noise of +-0.05 at grading time" in verdict.message
    assert len(verdict.details["curve"]["accuracy"]) == 2


def test_d3_credits_nothing_when_the_untrained_instance_already_knows_the_answers(rubric, labels) -> None:
    verdict = judge(rubric, "D3.brief_training", training_reply(labels, labels.tolist(), labels.tolist()))
    assert verdict.status == "fail" and verdict.fraction == 0.0
    assert "a freshly built CNN, never trained or loaded, already reaches 1.0000" in verdict.message
    assert verdict.details["untrained_accuracy"] == 1.0


def test_e1_credits_nothing_when_a_never_loaded_instance_already_knows_the_answers(rubric, labels) -> None:
    reply = {"exists": True, "found": True, "model_class": "CNN", "predictions": labels.tolist(),
             "untrained_predictions": labels.tolist()}
    verdict = judge(rubric, "E1.accuracy", reply)
    assert verdict.status == "fail" and verdict.fraction == 0.0 and "never trained or loaded" in verdict.message
    reply["untrained_predictions"] = chance(labels)
    assert judge(rubric, "E1.accuracy", reply).status == "pass"


def test_the_hidden_images_are_shifted_with_a_recorded_seed_the_same_way_every_time(rubric) -> None:
    check = rubric.check("D3.brief_training")
    first, inputs = CHECK_KINDS[check.kind].plan(check, check_rng(5, check.id), rubric)
    again, _ = CHECK_KINDS[check.kind].plan(check, check_rng(5, check.id), rubric)
    assert first.payload["x_eval"] == again.payload["x_eval"]
    assert inputs["hidden_noise"] == 0.05 and isinstance(inputs["shift_seed"], int)
    other, _ = CHECK_KINDS[check.kind].plan(check, check_rng(6, check.id), rubric)
    assert other.payload["x_eval"] != first.payload["x_eval"]


def test_shift_images_moves_each_image_by_at_most_the_given_pixels_and_fills_zeros() -> None:
    images = np.zeros((50, 1, 28, 28), dtype=np.float32)
    images[:, 0, 10:18, 10:18] = np.arange(64, dtype=np.float32).reshape(8, 8) + 1
    shifted = shift_images(images, 2, seed=3)
    assert shifted.dtype == np.float32 and shifted.shape == images.shape
    moved = 0
    for before, after in zip(images, shifted, strict=True):
        ys, xs = np.nonzero(after[0])
        dy, dx = ys.min() - 10, xs.min() - 10
        assert abs(dy) <= 2 and abs(dx) <= 2
        assert np.array_equal(after[0, 10 + dy:18 + dy, 10 + dx:18 + dx], before[0, 10:18, 10:18])
        moved += (dy, dx) != (0, 0)
    assert moved > 30
    assert shift_images(images, 0, seed=3) is images


def test_noise_changes_every_image_by_at_most_its_amplitude() -> None:
    from grader.checks.training import add_noise

    images = np.random.default_rng(0).uniform(0, 1, size=(20, 1, 28, 28)).astype(np.float32)
    noisy = add_noise(images, 0.05, seed=4)
    assert noisy.dtype == np.float32 and 0.0 <= noisy.min() and noisy.max() <= 1.0
    assert np.abs(noisy - images).max() <= 0.05 + 1e-6
    assert all(a.tobytes() != b.tobytes() for a, b in zip(images, noisy, strict=True))
    assert np.array_equal(add_noise(images, 0.05, seed=4), noisy)


@pytest.mark.parametrize(("old", "new", "field"), [
    ("hidden_noise = 0.05\nuntrained_max = 0.3\nseed = 0", "hidden_noise = 0.5\nuntrained_max = 0.3\nseed = 0",
     "hidden_noise"),
    ('schedule = "one_cycle"', 'schedule = "cosine"', "schedule"),
])
def test_rubric_refuses_out_of_range_training_options(tmp_path, old, new, field) -> None:
    from support import edited_rubric

    from grader.errors import RubricError

    with pytest.raises(RubricError, match=field):
        load_rubric(edited_rubric(tmp_path, (old, new)))
