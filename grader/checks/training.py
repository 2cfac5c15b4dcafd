"""D3 and E1: accuracy on the hidden split. Predictions are made in the kernel from the hidden
inputs alone; the labels stay here, in the grader's process, where accuracy is computed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from grader.checks.base import ScoreContext, Verdict
from grader.checks.feedback import observed_data
from grader.checks.network import NEEDS_MODEL, model_facts, model_not_usable, model_payload, model_used, observed_model
from grader.observe.codec import encode_array
from grader.observe.observations import ProbeRecord
from grader.observe.probe import ProbeRequest
from grader.rubric.fields import Option, TableReader, as_int, as_number, as_str, non_negative, one_of, positive
from grader.rubric.model import CheckSpec, Rubric

TRAINING_SETTINGS = ("epochs", "batch_size", "optimizer", "learning_rate", "seed", "torch_threads",
                     "time_budget_s", "train_samples")
ACCURACY = "Accuracy on the hidden split: {accuracy:.4f} (threshold {threshold:.2f}{partial})."
PARTIAL = "; partial credit from {low:.2f}"


def accuracy_fraction(accuracy: float, threshold: float, partial_from: float | None) -> float:
    """1 at or above the threshold, linear between `partial_from` and it, else 0."""
    if accuracy >= threshold:
        return 1.0
    if partial_from is None or accuracy <= partial_from:
        return 0.0
    return (accuracy - partial_from) / (threshold - partial_from)


def _hidden_labels(rubric: Rubric) -> np.ndarray:
    from grader.data.sources import data_arrays

    return data_arrays(rubric.data).hidden_labels


def _accuracy_verdict(check: CheckSpec, predictions: list[int], rubric: Rubric, prefix: str,
                      **details: Any) -> Verdict:
    labels = _hidden_labels(rubric)
    if len(predictions) != len(labels):
        return Verdict.failed(f"{prefix}: {len(predictions)} predictions for {len(labels)} hidden images.")
    accuracy = float(np.mean(np.asarray(predictions) == labels))
    threshold, low = check.options["threshold"], check.options["partial_from"]
    fraction = accuracy_fraction(accuracy, threshold, low)
    message = f"{prefix}. " + ACCURACY.format(accuracy=accuracy, threshold=threshold,
                                              partial=PARTIAL.format(low=low) if low is not None else "")
    if fraction == 1.0:
        return Verdict.passed(message, accuracy=accuracy, threshold=threshold, **details)
    return Verdict.failed(message, fraction=fraction, accuracy=accuracy,
                          threshold=threshold, **details)


def _threshold_options(threshold_default: float | None = None) -> dict[str, Option]:
    """`threshold` (required unless a default is given) and `partial_from`."""
    threshold = (Option("an accuracy in (0, 1]", positive(as_number)) if threshold_default is None
                 else Option("an accuracy in (0, 1]", positive(as_number), threshold_default))
    return {
        "threshold": threshold,
        "partial_from": Option("an accuracy below the threshold", non_negative(as_number), None),
    }


def _validate_thresholds(options: Mapping[str, Any], reader: TableReader) -> None:
    if options["threshold"] > 1:
        raise reader.error("threshold", "an accuracy in (0, 1]")
    if options["partial_from"] is not None and options["partial_from"] >= options["threshold"]:
        raise reader.error("partial_from", "an accuracy below the threshold")


class BriefTrainingCheck:
    """D3: a fresh, seeded instance of the student's class trained by the grader's own loop."""

    options: Mapping[str, Option] = {
        "epochs": Option("a positive integer", positive(as_int), 4),
        "batch_size": Option("a positive integer", positive(as_int), 64),
        "optimizer": Option("one of sgd, adam", one_of(("sgd", "adam")), "adam"),
        "learning_rate": Option("a number > 0", positive(as_number), 1e-3),
        "seed": Option("a non-negative integer", non_negative(as_int), 0),
        "torch_threads": Option("a positive integer", positive(as_int), 1),
        "time_budget_s": Option("a number of seconds > 0", positive(as_number), 120.0),
        "train_samples": Option("a non-negative integer (0: all)", non_negative(as_int), 0),
        **_threshold_options(),
    }

    def validate(self, options: Mapping[str, Any], reader: TableReader) -> None:
        _validate_thresholds(options, reader)

    def plan(self, check: CheckSpec, rng: np.random.Generator, rubric: Rubric) -> tuple[ProbeRequest | None, Any]:
        from grader.data.sources import data_arrays

        if rubric.model is None:
            return None, None
        settings = {key: check.options[key] for key in TRAINING_SETTINGS}
        arrays = data_arrays(rubric.data)
        count = settings["train_samples"] or len(arrays.x_train)
        model = rubric.model
        payload = {"op": "training", **model_payload(model),
                   "x": encode_array(arrays.x_train[:count]), "y": encode_array(arrays.y_train[:count]),
                   "x_eval": encode_array(arrays.x_hidden), "threads": settings["torch_threads"],
                   **{k: settings[k] for k in ("epochs", "batch_size", "optimizer", "learning_rate", "seed",
                                               "time_budget_s")}}
        timeout = settings["time_budget_s"] + rubric.execution.probe_timeout_s
        return ProbeRequest(check.id, payload, timeout), {"settings": settings, "train_samples": count}

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
        labels = _hidden_labels(rubric)
        curve = {"epoch": list(range(1, len(epochs) + 1)),
                 "train_loss": [round(e["train_loss"], 6) for e in epochs],
                 "accuracy": [round(float(np.mean(np.asarray(e["predictions"]) == labels)), 6) for e in epochs]}
        settings = record.inputs["settings"]
        prefix = (f"The grader trained a fresh {data['model_class']}{model_used(data)} ({len(epochs)} epoch(s), "
                  f"{settings['optimizer']} lr {settings['learning_rate']:g}, batch {settings['batch_size']}, "
                  f"seed {settings['seed']}, {settings['torch_threads']} thread(s))")
        if data.get("out_of_time"):
            prefix += f", stopped by the time budget of {settings['time_budget_s']:g} s"
        return _accuracy_verdict(check, epochs[-1]["predictions"], rubric, prefix, curve=curve,
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
        from grader.data.sources import data_arrays

        if rubric.model is None:
            return None, None
        payload = {"op": "saved_model", "path": check.options["path"], **model_payload(rubric.model),
                   "x_eval": encode_array(data_arrays(rubric.data).x_hidden)}
        return ProbeRequest(check.id, payload, rubric.execution.probe_timeout_s), None

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
        return _accuracy_verdict(check, data["predictions"], rubric,
                                 f"Your saved {data['model_class']} from `{path}`")
