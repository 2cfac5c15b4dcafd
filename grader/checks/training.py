"""D3 and E1: accuracy on the hidden split. Predictions are made in the kernel from the hidden
inputs alone; the labels stay here, in the grader's process, where accuracy is computed. The
students' package has no hidden split: there both measure the test part and say so
(grader/data/sources.py, `evaluation_part`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from grader.checks.base import ScoreContext, Verdict
from grader.checks.feedback import observed_data
from grader.checks.network import NEEDS_MODEL, model_facts, model_not_usable, model_payload, model_used, observed_model
from grader.data.arrays import EvaluationPart
from grader.observe.codec import encode_array
from grader.observe.observations import ProbeRecord
from grader.observe.probe import ProbeRequest
from grader.rubric.fields import Option, TableReader, as_bool, as_int, as_number, as_str, non_negative, one_of, positive
from grader.rubric.model import CheckSpec, Rubric

TRAINING_SETTINGS = ("epochs", "batch_size", "optimizer", "learning_rate", "schedule", "evaluate_each_epoch",
                     "seed", "torch_threads", "time_budget_s", "train_samples")
ACCURACY = "Accuracy on {part}: {accuracy:.4f} (threshold {threshold:.2f}{partial})."
PARTIAL = "; partial credit from {low:.2f}"
TRANSFORMED = " The {images} were {how} at grading time (seed {seed})."
UNTRAINED = ("{prefix}: a freshly built {model_class}, never trained or loaded, already reaches {accuracy:.4f} on "
             "{part} (a network that learns starts near chance, 0.10, and must stay below "
             "{limit:.2f}). Its predictions do not come from the weights it learns, so no accuracy is credited.")


def accuracy_fraction(accuracy: float, threshold: float, partial_from: float | None) -> float:
    """1 at or above the threshold, linear between `partial_from` and it, else 0."""
    if accuracy >= threshold:
        return 1.0
    if partial_from is None or accuracy <= partial_from:
        return 0.0
    return (accuracy - partial_from) / (threshold - partial_from)


def _evaluation(rubric: Rubric) -> EvaluationPart:
    """The hidden split (the test part in the students' package)."""
    from grader.data.sources import evaluation_part

    return evaluation_part(rubric.data)


def shift_images(images: np.ndarray, pixels: int, seed: int) -> np.ndarray:
    """Each N x C x H x W image moved by its own seeded offset of up to `pixels` rows and columns,
    zero-filled: a digit that was stored or memorised no longer matches pixel for pixel."""
    if pixels == 0:
        return images
    offsets = np.random.default_rng(seed).integers(-pixels, pixels + 1, size=(len(images), 2))
    height, width = images.shape[-2:]
    padded = np.pad(images, ((0, 0), (0, 0), (pixels, pixels), (pixels, pixels)))
    shifted = np.empty_like(images)
    for i, (dy, dx) in enumerate(offsets):
        top, left = pixels - dy, pixels - dx
        shifted[i] = padded[i, :, top:top + height, left:left + width]
    return shifted


def add_noise(images: np.ndarray, amplitude: float, seed: int) -> np.ndarray:
    """Seeded uniform noise of +-`amplitude` on every pixel, clipped to [0, 1]: no stored image
    matches any more byte for byte, and a CNN does not notice."""
    if amplitude == 0:
        return images
    noise = np.random.default_rng([seed, 1]).uniform(-amplitude, amplitude, size=images.shape)
    return np.clip(images + noise, 0.0, 1.0).astype(np.float32)


def _hidden_inputs(check: CheckSpec, rng: np.random.Generator, rubric: Rubric) -> tuple[np.ndarray, dict[str, Any]]:
    """The hidden images as this notebook sees them, and how they were transformed (recorded)."""
    pixels, amplitude = check.options["hidden_shift"], check.options["hidden_noise"]
    seed = int(rng.integers(2**31))
    images = add_noise(shift_images(_evaluation(rubric).images, pixels, seed), amplitude, seed)
    return images, {"hidden_shift": pixels, "hidden_noise": amplitude, "shift_seed": seed}


def _transform_text(transform: Mapping[str, Any] | None, part: EvaluationPart) -> str:
    if not transform:
        return ""
    how = []
    if transform.get("hidden_shift"):
        how.append(f"shifted by up to {transform['hidden_shift']} pixel(s)")
    if transform.get("hidden_noise"):
        how.append(f"given noise of +-{transform['hidden_noise']:g}")
    if not how:
        return ""
    return TRANSFORMED.format(images=part.images_name, how=" and ".join(how), seed=transform["shift_seed"])


def _untrained_verdict(check: CheckSpec, data: Mapping[str, Any], rubric: Rubric, prefix: str) -> Verdict | None:
    """A failure when the never-trained instance is already far above chance, else None."""
    predictions = data.get("untrained_predictions")
    part = _evaluation(rubric)
    labels = part.labels
    if predictions is None or len(predictions) != len(labels):
        return None
    accuracy = float(np.mean(np.asarray(predictions) == labels))
    limit = check.options["untrained_max"]
    if accuracy < limit:
        return None
    return Verdict.failed(UNTRAINED.format(prefix=prefix, model_class=data["model_class"], accuracy=accuracy,
                                           part=part.described, limit=limit), untrained_accuracy=accuracy)


def _accuracy_verdict(check: CheckSpec, predictions: list[int], rubric: Rubric, prefix: str,
                      transform: Mapping[str, Any] | None = None, **details: Any) -> Verdict:
    part = _evaluation(rubric)
    labels = part.labels
    if len(predictions) != len(labels):
        return Verdict.failed(f"{prefix}: {len(predictions)} predictions for {len(labels)} {part.images_name}.")
    accuracy = float(np.mean(np.asarray(predictions) == labels))
    threshold, low = check.options["threshold"], check.options["partial_from"]
    fraction = accuracy_fraction(accuracy, threshold, low)
    message = f"{prefix}. " + ACCURACY.format(part=part.described, accuracy=accuracy, threshold=threshold,
                                              partial=PARTIAL.format(low=low) if low is not None else "")
    message += _transform_text(transform, part)
    if fraction == 1.0:
        return Verdict.passed(message, accuracy=accuracy, threshold=threshold, **details)
    return Verdict.failed(message, fraction=fraction, accuracy=accuracy,
                          threshold=threshold, **details)


def _threshold_options(threshold_default: float | None = None) -> dict[str, Option]:
    """`threshold` (required unless a default is given), `partial_from`, and how the hidden split
    is checked: `hidden_shift` pixels of seeded shift and `hidden_noise` of seeded noise on its
    images, `untrained_max` for a never-trained instance."""
    threshold = (Option("an accuracy in (0, 1]", positive(as_number)) if threshold_default is None
                 else Option("an accuracy in (0, 1]", positive(as_number), threshold_default))
    return {
        "threshold": threshold,
        "partial_from": Option("an accuracy below the threshold", non_negative(as_number), None),
        "hidden_shift": Option("a number of pixels from 0 to 4", non_negative(as_int), 0),
        "hidden_noise": Option("a noise amplitude from 0 to 0.1", non_negative(as_number), 0.0),
        "untrained_max": Option("an accuracy in (0, 1]", positive(as_number), 1.0),
    }


def _validate_thresholds(options: Mapping[str, Any], reader: TableReader) -> None:
    for name in ("threshold", "untrained_max"):
        if options[name] > 1:
            raise reader.error(name, "an accuracy in (0, 1]")
    if options["hidden_shift"] > 4:
        raise reader.error("hidden_shift", "a number of pixels from 0 to 4")
    if options["hidden_noise"] > 0.1:
        raise reader.error("hidden_noise", "a noise amplitude from 0 to 0.1")
    if options["partial_from"] is not None and options["partial_from"] >= options["threshold"]:
        raise reader.error("partial_from", "an accuracy below the threshold")


class BriefTrainingCheck:
    """D3: a fresh, seeded instance of the student's class trained by the grader's own loop."""

    options: Mapping[str, Option] = {
        "epochs": Option("a positive integer", positive(as_int), 4),
        "batch_size": Option("a positive integer", positive(as_int), 64),
        "optimizer": Option("one of sgd, adam", one_of(("sgd", "adam")), "adam"),
        "learning_rate": Option("a number > 0 (the peak rate with one_cycle)", positive(as_number), 1e-3),
        "schedule": Option("one of constant, one_cycle", one_of(("constant", "one_cycle")), "constant"),
        "evaluate_each_epoch": Option("true or false", as_bool, True),
        "seed": Option("a non-negative integer", non_negative(as_int), 0),
        "torch_threads": Option("a positive integer", positive(as_int), 1),
        "time_budget_s": Option("a number of seconds > 0", positive(as_number), 120.0),
        "train_samples": Option("a non-negative integer (0: all)", non_negative(as_int), 0),
        **_threshold_options(),
    }

    def validate(self, options: Mapping[str, Any], reader: TableReader) -> None:
        _validate_thresholds(options, reader)

    def plan(self, check: CheckSpec, rng: np.random.Generator, rubric: Rubric) -> tuple[ProbeRequest | None, Any]:
        from grader.data.sources import student_arrays

        if rubric.model is None:
            return None, None
        settings = {key: check.options[key] for key in TRAINING_SETTINGS}
        arrays = student_arrays(rubric.data)
        count = settings["train_samples"] or len(arrays.x_train)
        x_eval, transform = _hidden_inputs(check, rng, rubric)
        model = rubric.model
        payload = {"op": "training", **model_payload(model),
                   "x": encode_array(arrays.x_train[:count]), "y": encode_array(arrays.y_train[:count]),
                   "x_eval": encode_array(x_eval), "threads": settings["torch_threads"],
                   **{k: settings[k] for k in ("epochs", "batch_size", "optimizer", "learning_rate", "schedule",
                                               "evaluate_each_epoch", "seed", "time_budget_s")}}
        timeout = settings["time_budget_s"] + rubric.execution.probe_timeout_s
        inputs = {"settings": settings, "train_samples": count, **transform}
        return ProbeRequest(check.id, payload, timeout), inputs

    def evaluate(self, check: CheckSpec, record: ProbeRecord | None, context: ScoreContext) -> Verdict:
        rubric = context.rubric
        verdict, data = observed_model(record, rubric, "train a network")
        if verdict is not None:
            return verdict
        assert record is not None
        if "error" in data:
            error = data["error"]
            return Verdict.failed(f"Training your {data['model_class']} with the grader's loop raised "
                                  f"{error['error']}: {error['message']}")
        epochs = data["epochs"]
        part = _evaluation(rubric)
        curve = {"epoch": list(range(1, len(epochs) + 1)),
                 "train_loss": [round(e["train_loss"], 6) for e in epochs]}
        if all("predictions" in e for e in epochs):
            curve["accuracy"] = [round(float(np.mean(np.asarray(e["predictions"]) == part.labels)), 6)
                                 for e in epochs]
            if not part.hidden:  # the students' package: the curve is not on the hidden split
                curve["on"] = part.name
        settings = record.inputs["settings"]
        schedule = " one-cycle" if settings.get("schedule") == "one_cycle" else ""
        steps = sum(e["batches"] for e in epochs)
        prefix = (f"The grader trained a fresh {data['model_class']}{model_used(data)} ({steps} steps of batch"
                  f" {settings['batch_size']} on {record.inputs['train_samples']} training images, "
                  f"{settings['optimizer']}{schedule} lr {settings['learning_rate']:g}, seed {settings['seed']}, "
                  f"{settings['torch_threads']} thread(s))")
        if data.get("out_of_time"):
            prefix += f", stopped by the time budget of {settings['time_budget_s']:g} s"
        untrained = _untrained_verdict(check, data, rubric, prefix)
        if untrained is not None:
            return untrained
        return _accuracy_verdict(check, epochs[-1]["predictions"], rubric, prefix, record.inputs, curve=curve,
                                 seconds=data.get("seconds"))


class SavedModelCheck:
    """E1: the notebook's saved state dict, loaded with weights_only=True into the student's class."""

    options: Mapping[str, Option] = {
        "aspect": Option("one of loads, accuracy", one_of(("loads", "accuracy"))),
        "path": Option("a file name in the notebook's working directory", as_str, "cnn.pt"),
        # `loads` judges no accuracy: its threshold is never used, so it need not be given.
        **_threshold_options(threshold_default=1.0),
    }

    def validate(self, options: Mapping[str, Any], reader: TableReader) -> None:
        _validate_thresholds(options, reader)

    def plan(self, check: CheckSpec, rng: np.random.Generator, rubric: Rubric) -> tuple[ProbeRequest | None, Any]:
        if rubric.model is None:
            return None, None
        x_eval, transform = _hidden_inputs(check, rng, rubric)
        payload = {"op": "saved_model", "path": check.options["path"], **model_payload(rubric.model)}
        if check.options["aspect"] != "loads":  # whether it loads needs no predictions
            payload.update(x_eval=encode_array(x_eval), seed=transform["shift_seed"])
        return ProbeRequest(check.id, payload, rubric.execution.probe_timeout_s), transform

    def evaluate(self, check: CheckSpec, record: ProbeRecord | None, context: ScoreContext) -> Verdict:
        rubric = context.rubric
        path = check.options["path"]
        if rubric.model is None:
            return Verdict.errored(f"The rubric cannot load a model: {NEEDS_MODEL}.")
        verdict, data = observed_data(record, f"`{path}`")
        if verdict is not None:
            return verdict
        if not data["exists"]:
            files = ", ".join(data.get("files", [])) or "nothing"
            return Verdict.failed(f"`{path}` was not found in the notebook's folder (it holds: {files}). Save it "
                                  f"with torch.save(model.state_dict(), \"{path}\").")
        if "load_error" in data:
            error = data["load_error"]
            return Verdict.failed(f"torch.load(\"{path}\", weights_only=True) raised {error['error']}: "
                                  f"{error['message']} Save the state dict, not the whole model: "
                                  f"torch.save(model.state_dict(), \"{path}\").")
        if "state_type" in data:
            return Verdict.failed(f"`{path}` holds a {data['state_type']}, not a state dict. Save it with "
                                  f"torch.save(model.state_dict(), \"{path}\").")
        verdict = model_not_usable(data, rubric.model)
        if verdict is not None:
            return verdict
        if "strict_error" in data:
            error = data["strict_error"]
            return Verdict.failed(f"Loading `{path}` into {data['model_class']}() with strict=True raised "
                                  f"{error['error']}: {error['message']}")
        if check.options["aspect"] == "loads":
            return Verdict.passed(f"`{path}` loads into {data['model_class']}(){model_used(data)} with "
                                  f"weights_only=True and strict=True.", **model_facts(data))
        if "predict_error" in data:
            error = data["predict_error"]
            return Verdict.failed(f"Predicting with the loaded model raised {error['error']}: {error['message']}")
        prefix = f"Your saved {data['model_class']} from `{path}`"
        untrained = _untrained_verdict(check, data, rubric, prefix)
        if untrained is not None:
            return untrained
        return _accuracy_verdict(check, data["predictions"], rubric, prefix, record.inputs)
