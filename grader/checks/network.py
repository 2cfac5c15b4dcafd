"""Part B: the student's network, observed by the `model` probe (one forward pass, traced with
forward hooks and a TorchFunctionMode), compared with the reference network's trace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from grader.checks.base import ScoreContext, Verdict
from grader.checks.feedback import observed_data
from grader.observe.observations import ProbeRecord
from grader.observe.probe import ProbeRequest
from grader.rubric.fields import Option, TableReader, as_int, as_number, non_negative, one_of
from grader.rubric.model import CheckSpec, ModelSpec, Rubric

CATEGORY_OF = {
    **dict.fromkeys(("Conv2d", "LazyConv2d", "conv2d"), "conv"),
    **dict.fromkeys(("BatchNorm2d", "BatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm1d", "batch_norm"), "bn"),
    **dict.fromkeys(("ReLU", "ReLU6", "LeakyReLU", "GELU", "ELU", "SELU", "SiLU", "Tanh", "relu", "relu_",
                     "leaky_relu", "gelu", "elu", "selu", "silu", "tanh"), "act"),
    **dict.fromkeys(("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "max_pool2d",
                     "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
                     "max_pool2d_with_indices"), "pool"),
    **dict.fromkeys(("Dropout", "Dropout2d", "AlphaDropout", "dropout", "dropout2d", "feature_dropout",
                     "alpha_dropout"), "dropout"),
    **dict.fromkeys(("Flatten", "flatten", "view", "reshape"), "flatten"),
    **dict.fromkeys(("Linear", "LazyLinear", "linear"), "linear"),
    **dict.fromkeys(("Softmax", "LogSoftmax", "Sigmoid", "softmax", "log_softmax", "sigmoid"), "probability"),
}
STAGE_CATEGORIES = ("conv", "pool", "flatten", "linear")
ASPECTS = ("output_shape", "stage_shapes", "layer_order", "logits", "batch_sizes", "eval_deterministic",
           "has_conv")

NOT_DEFINED = ("class `{name}` is not defined after your notebook ran. {defined} The rubric builds "
               "`{call}`, so name your network class `{name}`.")
DEFINED_CLASSES = "Your notebook defines these nn.Module subclasses: {names}."
NO_CLASSES = "Your notebook defines no nn.Module subclass."
NOT_A_MODULE = "`{name}` is a {type}, not an nn.Module subclass: define `class {name}(nn.Module)`."
NO_CANDIDATE = ("No nn.Module subclass of your notebook maps a batch of shape {shape} to {n} class "
                "scores. Tried: {tried}.")
CONSTRUCT_FAILED = "`{call}` raised {error}: {message}"
FORWARD_FAILED = "The forward pass on a batch of shape {shape} raised {error}: {message}"
NOT_JUDGEABLE = ("This cannot be judged yet: forward() returned {output} and the network has no "
                 "layers the grader could see. Build the network in __init__ and return its output.")
NO_CONV_TO_ORDER = ("The order rules look at the convolution stages, and your network has none (the grader saw: "
                    "{layers}). Build the feature extractor from nn.Conv2d layers.")
BUILT_AS = {"recorded_arguments": " (built with the arguments of `{instance}`: {cls}({arguments}))",
            "reinitialised_copy": " (a re-initialised copy of `{instance}`)"}
NO_REFERENCE = "The rubric has no [reference] table, so stage shapes cannot be compared."
NEEDS_MODEL = "this check kind needs a [model] table in the rubric"


def categorise(event: Mapping[str, Any]) -> str:
    category = CATEGORY_OF.get(event["type"], "other")
    if category == "flatten" and len(event.get("shape") or ()) != 2:
        return "other"  # a view/reshape that does not flatten to (batch, features)
    return category


def stages(trace: list[Mapping[str, Any]]) -> list[tuple[str, tuple[int, ...]]]:
    """The (category, per-sample output shape) of each conv, pool, flatten and linear step."""
    return [(categorise(e), tuple(e["shape"][1:])) for e in trace
            if categorise(e) in STAGE_CATEGORIES and e.get("shape")]


def layer_rows(trace: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": e["name"] or "(in forward)", "type": e["type"],
             "output_shape": list(e["shape"][1:]) if e.get("shape") else None, "params": e["params"]}
            for e in trace]


def model_call(model: ModelSpec) -> str:
    arguments = ", ".join(f"{k}={v!r}" for k, v in model.kwargs.items())
    return f"{model.model_class}({arguments})"


def model_payload(model: ModelSpec) -> dict[str, Any]:
    """How every probe that builds the student's network (B, D3, E1) names it and its shapes."""
    return {"model_class": model.model_class, "kwargs": dict(model.kwargs),
            "input_shape": list(model.input_shape), "n_classes": model.n_classes}


def model_facts(data: Mapping[str, Any]) -> dict[str, Any]:
    """The report's `details.model` (which class, instance and arguments), when the probe said."""
    return {"model": dict(data["model"])} if data.get("model") else {}


def model_used(data: Mapping[str, Any]) -> str:
    """How the grader built the network, when it took more than the class alone ('' otherwise)."""
    model = data.get("model") or {}
    template = BUILT_AS.get(model.get("built_with", ""))
    if template is None:
        return ""
    return template.format(instance=model.get("instance"), cls=model.get("class"),
                           arguments=model.get("arguments", ""))


def model_probe(check: CheckSpec, rubric: Rubric) -> ProbeRequest:
    """The shared `model` probe: every Part B check plans the same request, so it runs once."""
    assert rubric.model is not None
    payload = {"op": "model", **model_payload(rubric.model), "seed": 0, "batch_sizes": [1, 3]}
    return ProbeRequest(check.id, payload, rubric.execution.probe_timeout_s)


def model_not_usable(data: Mapping[str, Any], model: ModelSpec) -> Verdict | None:
    """The verdict when the notebook gives no network the grader can use, else None."""
    if not data.get("found"):
        defined = data.get("module_classes") or []
        listing = DEFINED_CLASSES.format(names=", ".join(defined)) if defined else NO_CLASSES
        if data.get("problem") == "not_module":
            return Verdict.failed(NOT_A_MODULE.format(name=model.model_class, type=data.get("type")))
        if data.get("problem") == "no_candidate":
            tried = "; ".join(f"{c['class']}: {c.get('output_shape') or c.get('error')}"
                              for c in data.get("candidates", [])) or "none"
            return Verdict.failed(NO_CANDIDATE.format(shape=(2, *model.input_shape), n=model.n_classes,
                                                      tried=tried))
        return Verdict.failed(NOT_DEFINED.format(name=model.model_class, defined=listing,
                                                 call=model_call(model)))
    if "construct_error" in data:
        error = data["construct_error"]
        return Verdict.failed(CONSTRUCT_FAILED.format(call=model_call(model), error=error["error"],
                                                      message=error["message"]))
    if "forward_error" in data:
        error = data["forward_error"]
        return Verdict.failed(FORWARD_FAILED.format(shape=(2, *model.input_shape), error=error["error"],
                                                    message=error["message"]))
    return None


def observed_model(record: ProbeRecord | None, rubric: Rubric,
                   purpose: str) -> tuple[Verdict | None, Mapping[str, Any]]:
    """(None, the probe's data) when a usable network was observed, else (the verdict, {})."""
    if rubric.model is None:
        return Verdict.errored(f"The rubric cannot {purpose}: {NEEDS_MODEL}."), {}
    verdict, data = observed_data(record, "your network")
    if verdict is None:
        verdict = model_not_usable(data, rubric.model)
    return (verdict, {}) if verdict is not None else (None, data)


class ArchitectureCheck:
    options: Mapping[str, Option] = {
        "aspect": Option(f"one of {', '.join(ASPECTS)}", one_of(ASPECTS)),
        "min_conv_layers": Option("a positive integer", as_int, 1),
        "atol": Option("a number >= 0", non_negative(as_number), 1e-6),
    }

    def validate(self, options: Mapping[str, Any], reader: TableReader) -> None:
        return None

    def plan(self, check: CheckSpec, rng: np.random.Generator, rubric: Rubric) -> tuple[ProbeRequest, None]:
        return model_probe(check, rubric), None

    def evaluate(self, check: CheckSpec, record: ProbeRecord | None, context: ScoreContext) -> Verdict:
        verdict, data = observed_model(record, context.rubric, "grade the network")
        if verdict is not None:
            return verdict
        aspect = check.options["aspect"]
        if aspect != "output_shape" and not _judgeable(data):
            return Verdict.failed(NOT_JUDGEABLE.format(output=_shape_text(data["output"].get("shape"),
                                                                         data["output"])))
        return getattr(self, f"_{aspect}")(check, data, context)

    def _output_shape(self, check: CheckSpec, data: Mapping[str, Any], context: ScoreContext) -> Verdict:
        model = context.rubric.model
        expected = [2, model.n_classes]
        observed = data["output"].get("shape")
        if observed == expected:
            return Verdict.passed(f"{data['model_class']}{model_used(data)} maps a batch of shape "
                                  f"{(2, *model.input_shape)} to shape {tuple(expected)}.",
                                  **model_facts(data))
        return Verdict.failed(f"For a batch of shape {(2, *model.input_shape)} your network returned "
                              f"{_shape_text(observed, data['output'])}; expected {tuple(expected)}: one score "
                              f"per class for each image.")

    def _stage_shapes(self, check: CheckSpec, data: Mapping[str, Any], context: ScoreContext) -> Verdict:
        from grader.reference_model import reference_trace

        if context.rubric.reference is None:
            return Verdict.errored(NO_REFERENCE)
        reference = reference_trace(context.rubric.reference)
        expected, observed = stages(reference), stages(data["trace"])
        details = {"student_layers": layer_rows(data["trace"]), "reference_layers": layer_rows(reference)}
        if expected == observed:
            return Verdict.passed(f"All {len(expected)} conv / pool / flatten / linear outputs match the "
                                  f"reference network.", **details)
        return Verdict.failed(_stage_difference(expected, observed), **details)

    def _layer_order(self, check: CheckSpec, data: Mapping[str, Any], context: ScoreContext) -> Verdict:
        if not any(categorise(e) == "conv" for e in data["trace"]):
            seen = ", ".join(e["type"] for e in data["trace"]) or "nothing"
            return Verdict.failed(NO_CONV_TO_ORDER.format(layers=seen))
        problems = order_problems(data["trace"])
        if not problems:
            return Verdict.passed("Batch norm comes right before each activation, dropout right after one, "
                                  "and the conv stages form a pyramid.")
        return Verdict.failed(" ".join(problems), problems=problems)

    def _logits(self, check: CheckSpec, data: Mapping[str, Any], context: ScoreContext) -> Verdict:
        trace = [e for e in data["trace"] if categorise(e) not in ("other", "flatten")]
        last = trace[-1] if trace else None
        if last is not None and categorise(last) == "probability" and last["type"] not in ("LogSoftmax",
                                                                                          "log_softmax"):
            return Verdict.failed(f"Your network ends with {last['type']}, so it returns probabilities. "
                                  f"For multi-class classification the output layer is linear and returns "
                                  f"logits; nn.CrossEntropyLoss applies the softmax itself.")
        output = data["output"]
        sums = output.get("row_sums") or []
        if sums and output.get("min", -1) >= 0 and all(abs(s - 1) < 1e-4 for s in sums):
            return Verdict.failed("Every output row is non-negative and sums to 1: your network returns "
                                  "probabilities, not logits. Remove the softmax at the end of forward().")
        return Verdict.passed("The network returns logits (no softmax at the output).")

    def _batch_sizes(self, check: CheckSpec, data: Mapping[str, Any], context: ScoreContext) -> Verdict:
        model = context.rubric.model
        wrong = []
        for size, outcome in sorted(data["batch_outputs"].items(), key=lambda item: int(item[0])):
            expected = [int(size), model.n_classes]
            if outcome.get("shape") != expected:
                got = outcome.get("shape") or f"{outcome.get('error')}: {outcome.get('message')}"
                wrong.append(f"batch size {size}: expected {tuple(expected)}, got {got}")
        if not wrong:
            return Verdict.passed("Batches of other sizes work too.")
        return Verdict.failed("Your network only works for some batch sizes (" + "; ".join(wrong) + "). "
                              "Flatten with x.flatten(1) or x.view(x.size(0), -1), not a fixed batch size.")

    def _eval_deterministic(self, check: CheckSpec, data: Mapping[str, Any], context: ScoreContext) -> Verdict:
        difference = data.get("eval_max_difference")
        if difference is not None and difference <= check.options["atol"]:
            return Verdict.passed("Two forward passes in eval mode agree.")
        return Verdict.failed(f"Two forward passes in eval mode on the same batch differ (by up to "
                              f"{difference}). Dropout must be off in eval mode: use nn.Dropout, or "
                              f"F.dropout(x, p, training=self.training).")

    def _has_conv(self, check: CheckSpec, data: Mapping[str, Any], context: ScoreContext) -> Verdict:
        count = sum(1 for e in data["trace"] if categorise(e) == "conv")
        needed = check.options["min_conv_layers"]
        if count >= needed:
            return Verdict.passed(f"The network uses {count} convolution layer(s).")
        return Verdict.failed(f"The network uses {count} convolution layer(s); at least {needed} expected.")


def order_problems(trace: list[Mapping[str, Any]]) -> list[str]:
    """The lecture's order rules: BN right before the activation, dropout right after one, channels
    non-decreasing and spatial size non-increasing through the conv stages."""
    events = [e for e in trace if categorise(e) != "other"]
    problems = []
    for index, event in enumerate(events):
        category = categorise(event)
        label = f"{event['type']} ({event['name'] or 'in forward'})"
        if category == "bn":
            after = events[index + 1] if index + 1 < len(events) else None
            if after is None or categorise(after) != "act":
                follower = after["type"] if after else "nothing"
                problems.append(f"{label} is followed by {follower}: batch normalization goes right before "
                                f"the activation (conv -> batch norm -> ReLU).")
        if category == "dropout":
            before = events[index - 1] if index else None
            if before is None or categorise(before) != "act":
                previous = before["type"] if before else "nothing"
                problems.append(f"{label} comes after {previous}: dropout goes right after the activation.")
    conv_shapes = [tuple(e["shape"][1:]) for e in events if categorise(e) in ("conv", "pool")
                   and e.get("shape") and len(e["shape"]) == 4]
    channels = [s[0] for s in conv_shapes]
    if any(b < a for a, b in zip(channels, channels[1:], strict=False)):
        problems.append(f"Channels go {channels}: in a pyramid architecture they never decrease.")
    areas = [s[1] * s[2] for s in conv_shapes]
    if any(b > a for a, b in zip(areas, areas[1:], strict=False)):
        problems.append(f"Feature map sizes go {[s[1:] for s in conv_shapes]}: they should never grow.")
    return problems


def _stage_difference(expected: list, observed: list) -> str:
    for index, (want, got) in enumerate(zip(expected, observed, strict=False)):
        if want != got:
            return (f"Stage {index + 1} differs from the reference network: expected a {want[0]} output of "
                    f"shape {want[1]}, got a {got[0]} output of shape {got[1]}. Check padding, stride and "
                    f"pooling (see the layer table).")
    return (f"Your network has {len(observed)} conv / pool / flatten / linear steps; the reference has "
            f"{len(expected)}.")


def _judgeable(data: Mapping[str, Any]) -> bool:
    """A network that returns a tensor and has at least one recognisable layer."""
    return data["output"].get("shape") is not None and any(categorise(e) != "other" for e in data["trace"])


def _shape_text(shape: Any, output: Mapping[str, Any]) -> str:
    return f"shape {tuple(shape)}" if shape is not None else f"a {output.get('type')}"


class ParameterCountCheck:
    options: Mapping[str, Option] = {
        "compare": Option("one of reference, budget", one_of(("reference", "budget")), "reference"),
        "tolerance": Option("a non-negative integer", non_negative(as_int), 0),
        "max_params": Option("a positive integer", as_int, None),
        "min_params": Option("a non-negative integer", non_negative(as_int), 0),
    }

    def validate(self, options: Mapping[str, Any], reader: TableReader) -> None:
        if options["compare"] == "budget" and options["max_params"] is None:
            raise reader.error("max_params", "a positive integer (required when compare = \"budget\")")

    def plan(self, check: CheckSpec, rng: np.random.Generator, rubric: Rubric) -> tuple[ProbeRequest, None]:
        return model_probe(check, rubric), None

    def evaluate(self, check: CheckSpec, record: ProbeRecord | None, context: ScoreContext) -> Verdict:
        from grader.reference_model import reference_trace, reference_trainable_params

        rubric = context.rubric
        verdict, data = observed_model(record, rubric, "grade the network")
        if verdict is not None:
            return verdict
        count = data["trainable_params"]
        details: dict[str, Any] = {"student_layers": layer_rows(data["trace"])}
        if check.options["compare"] == "budget":
            low, high = check.options["min_params"], check.options["max_params"]
            if low <= count <= high:
                return Verdict.passed(f"{count:,} trainable parameters, within the budget of {high:,}.", **details)
            return Verdict.failed(f"{count:,} trainable parameters; the budget is {low:,} to {high:,}.",
                                  **details)
        if rubric.reference is None:
            return Verdict.errored(NO_REFERENCE)
        expected = reference_trainable_params(rubric.reference)
        details["reference_layers"] = layer_rows(reference_trace(rubric.reference))
        if abs(count - expected) <= check.options["tolerance"]:
            return Verdict.passed(f"{count:,} trainable parameters, as the reference network.", **details)
        table = _table_text(data.get("layers", []))
        message = (f"Your network has {count:,} trainable parameters; the reference has {expected:,}. "
                   f"Your layers: {table}.")
        return Verdict.failed(message, expected=expected, observed=count, **details)


def _table_text(layers: list[Mapping[str, Any]]) -> str:
    return ", ".join(f"{row['name']} {row['type']} {row['params']:,}" for row in layers) or "none"
