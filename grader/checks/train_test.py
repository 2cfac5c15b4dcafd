"""Part D1/D2: the student's train() and test() run in the kernel on the reference network, from
the same initial weights and batches as the reference train() / test() run in the grader."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from grader.checks.base import ScoreContext, Verdict
from grader.checks.feedback import decode_output, defining_cell, not_defined, observed_data
from grader.checks.numeric import allclose
from grader.observe.codec import encode_array
from grader.observe.observations import ProbeRecord
from grader.observe.probe import ProbeRequest
from grader.rubric.fields import Option, TableReader, as_int, as_number, as_str, non_negative, one_of, positive
from grader.rubric.model import CheckSpec, Rubric

SETTINGS = ("samples", "batch_size", "seed", "optimizer", "learning_rate")
NEEDS_REFERENCE = "this check kind needs [model] and [reference] tables in the rubric"
RAISED = "Calling `{call}` on the reference network raised {error}: {message}"
NO_STEP = ("After `train()` the weights are exactly the initial ones: call optimizer.step() after "
           "loss.backward() for every batch.")
WEIGHTS_DIFFER = ("After one epoch, your train() left other weights than the reference train() from the "
                  "same start and batches ({where_}). Typical causes: a missing optimizer.zero_grad() "
                  "(gradients then add up over batches), the wrong loss, or steps done twice.")
LOSS_DIFFERS = "`train()` returned {got}; the mean of the batch losses is {expected:.6g}."
LOSS_IS_SUM = " That is the sum over the {batches} batches: divide by the number of batches."
NOT_A_NUMBER = "`{name}()` returned {got}; expected {what}."


def _run_reference(kind: str, payload: dict[str, Any], rubric: Rubric) -> dict[str, Any]:
    """The reference function on the same request, through the very same probe code."""
    from grader.observe import kernel_probe
    from grader.reference_model import load_reference_module, recorded_outcome

    assert rubric.reference is not None
    recorded = recorded_outcome(rubric.reference, kind, payload)  # the students' package
    if recorded is not None:
        return recorded
    module = load_reference_module(rubric.reference.module)
    handler = kernel_probe.observe_train_function if kind == "train" else kernel_probe.observe_test_function
    return handler({payload["function"]: getattr(module, kind)}, payload)


# What D1/D2 compare with depends on the rubric alone (never on the student): the request, the
# reference's outcome on it and the network's initial weights are computed once per process and
# kept by rubric, reference module and request settings. One lock: the computations seed torch's
# global random generator, and each is done once even when several threads score at the same time.
_REFERENCE_WORK: dict[tuple, Any] = {}
_REFERENCE_LOCK = threading.Lock()  # the reference's runs (torch's global generator)
_PAYLOAD_LOCK = threading.Lock()  # the requests: planning never waits for a reference run


def _rubric_key(rubric: Rubric) -> tuple:
    reference = rubric.reference
    return (rubric.sha256, str(rubric.path), None if reference is None else str(reference.module))


def _once(key: tuple, compute: Callable[[], Any], lock: threading.Lock = _REFERENCE_LOCK) -> Any:
    with lock:
        if key not in _REFERENCE_WORK:
            _REFERENCE_WORK[key] = compute()
        return _REFERENCE_WORK[key]


def _settings_key(settings: Mapping[str, Any]) -> tuple:
    return tuple(sorted(settings.items()))


def request_payload(op: str, settings: Mapping[str, Any], rubric: Rubric, part: str) -> dict[str, Any]:
    """The probe's request for these settings (the same dict for every student: do not change it)."""
    return _once(("payload", *_rubric_key(rubric), op, _settings_key(settings)),
                 lambda: _payload(op, settings, rubric, part), _PAYLOAD_LOCK)


def reference_outcome(op: str, settings: Mapping[str, Any], rubric: Rubric, part: str) -> dict[str, Any]:
    """The reference train() / test() outcome on that request."""
    payload = request_payload(op, settings, rubric, part)
    return _once(("outcome", *_rubric_key(rubric), op, _settings_key(settings)),
                 lambda: _run_reference(part, payload, rubric))


def initial_fingerprint(op: str, settings: Mapping[str, Any], rubric: Rubric, part: str) -> dict[str, Any]:
    """The fingerprint of the network's weights before training (to tell "no step" apart)."""
    from grader.observe.kernel_probe import build_network, fingerprint

    payload = request_payload(op, settings, rubric, part)
    return _once(("initial", *_rubric_key(rubric), op, _settings_key(settings)),
                 lambda: fingerprint(build_network(payload)))


def prepare_reference(rubric: Rubric) -> None:
    """Compute what every D1/D2 check of the rubric compares with, ahead of scoring (a batch calls
    this once, in the background, while the first notebooks run)."""
    from grader.checks.registry import CHECK_KINDS  # it imports this module

    for check in rubric.checks:
        kind = CHECK_KINDS[check.kind]
        if not isinstance(kind, _TrainTestCheck) or rubric.reference is None:
            continue
        settings = {key: check.options[key] for key in ("function", *SETTINGS)}
        reference_outcome(kind.op, settings, rubric, kind.part)


def _payload(op: str, settings: Mapping[str, Any], rubric: Rubric, part: str) -> dict[str, Any]:
    from grader.data.sources import student_arrays
    from grader.reference_model import reference_network_source

    reference = rubric.reference
    assert reference is not None
    arrays = student_arrays(rubric.data)
    x, y = (arrays.x_train, arrays.y_train) if part == "train" else (arrays.x_test, arrays.y_test)
    count = settings["samples"]
    return {"op": op, "function": settings["function"],
            "network_source": reference_network_source(reference),
            "network_class": reference.model_class, "network_kwargs": dict(reference.model_kwargs),
            "init_seed": settings["seed"], "train_seed": settings["seed"] + 1,
            "x": encode_array(x[:count]), "y": encode_array(y[:count]),
            "batch_size": settings["batch_size"], "optimizer": settings["optimizer"],
            "learning_rate": settings["learning_rate"]}


def _fingerprint_difference(expected: Mapping[str, Any], observed: Mapping[str, Any],
                            rtol: float, atol: float) -> str | None:
    """None when the fingerprints agree within tolerance, else the name of the first tensor that differs."""
    for name, want in expected.items():
        got = observed.get(name)
        if got is None:
            return name
        for field in ("sum", "sumsq", "samples"):
            if not allclose(got[field], want[field], atol, rtol):
                return name
    return None


def _number(value: Any) -> float | None:
    """A single real number (int, float, 0-d or 1-element array); None for anything else."""
    if value is None or isinstance(value, (str, bool)):
        return None
    array = np.asarray(value)
    if array.dtype.kind not in "iuf" or array.size != 1:
        return None
    return float(array.reshape(()))


def _function_not_usable(check: CheckSpec, record: ProbeRecord | None, context: ScoreContext) -> Verdict | None:
    """The verdict when the student's function could not be run on the reference network, else None."""
    name = check.options["function"]
    verdict, data = observed_data(record, f"`{name}()`")
    if verdict is not None:
        return verdict
    assert record is not None
    if not data.get("defined"):
        optimizer = ", optimizer" if record.inputs["op"] == "train_function" else ""
        return not_defined(name, f"{name}(model, loader, loss_fn{optimizer})", context)
    if not data.get("callable"):
        return Verdict.failed(f"`{name}` is defined but is not a function.")
    if "error" in data:
        call = f"{name}(model, loader, loss_fn, ...)"
        return Verdict.failed(RAISED.format(call=call, error=data["error"]["error"],
                                            message=data["error"]["message"]))
    return None


class _TrainTestCheck:
    op = ""
    part = ""
    aspects: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = {}

    @property
    def options(self) -> Mapping[str, Option]:
        d = self.defaults
        return {
            "aspect": Option(f"one of {', '.join(self.aspects)}", one_of(self.aspects)),
            "function": Option("the name of the student's function", as_str, d["function"]),
            "samples": Option("a positive integer", positive(as_int), d["samples"]),
            "batch_size": Option("a positive integer", positive(as_int), d["batch_size"]),
            "seed": Option("a non-negative integer", non_negative(as_int), d["seed"]),
            "optimizer": Option("one of sgd, adam", one_of(("sgd", "adam")), "sgd"),
            "learning_rate": Option("a number > 0", positive(as_number), 0.05),
            "rtol": Option("a number >= 0", non_negative(as_number), 1e-3),
            "atol": Option("a number >= 0", non_negative(as_number), 1e-5),
        }

    def validate(self, options: Mapping[str, Any], reader: TableReader) -> None:
        return None

    def plan(self, check: CheckSpec, rng: np.random.Generator, rubric: Rubric) -> tuple[ProbeRequest | None, Any]:
        if rubric.reference is None:
            return None, None
        settings = {key: check.options[key] for key in ("function", *SETTINGS)}
        payload = request_payload(self.op, settings, rubric, self.part)
        timeout = rubric.execution.probe_timeout_s
        return ProbeRequest(check.id, payload, timeout), {"op": self.op, "settings": settings}

    def reference_outcome(self, record: ProbeRecord, rubric: Rubric) -> dict[str, Any]:
        return reference_outcome(self.op, record.inputs["settings"], rubric, self.part)

    def evaluate(self, check: CheckSpec, record: ProbeRecord | None, context: ScoreContext) -> Verdict:
        if context.rubric.reference is None:
            return Verdict.errored(f"The rubric cannot grade `{check.options['function']}`: {NEEDS_REFERENCE}.")
        verdict = _function_not_usable(check, record, context)
        if verdict is not None:
            return verdict
        assert record is not None and record.data is not None
        expected = self.reference_outcome(record, context.rubric)
        return getattr(self, f"_{check.options['aspect']}")(check, record.data, expected, context)


class TrainFunctionCheck(_TrainTestCheck):
    op, part = "train_function", "train"
    aspects = ("weights", "mean_loss")
    defaults = {"function": "train", "samples": 64, "batch_size": 16, "seed": 0}

    def _weights(self, check: CheckSpec, data: Mapping[str, Any], expected: Mapping[str, Any],
                 context: ScoreContext) -> Verdict:
        options = check.options
        observed = data["fingerprint"]
        differs = _fingerprint_difference(expected["fingerprint"], observed, options["rtol"], options["atol"])
        if differs is None:
            return Verdict.passed("After one epoch the weights match the reference train() from the same "
                                  "start and batches.")
        initial = initial_fingerprint(self.op, {k: options[k] for k in ("function", *SETTINGS)}, context.rubric,
                                      self.part)
        if _fingerprint_difference(initial, observed, 0.0, 0.0) is None:
            return Verdict.failed(NO_STEP)
        cell = defining_cell(options["function"], context)
        place = f"defined in cell {cell}" if cell is not None else "your train()"
        return Verdict.failed(WEIGHTS_DIFFER.format(where_=f"first difference in `{differs}`; {place}"),
                              tensor=differs)

    def _mean_loss(self, check: CheckSpec, data: Mapping[str, Any], expected: Mapping[str, Any],
                   context: ScoreContext) -> Verdict:
        want = _number(decode_output(expected["returned"])[0])
        value, kind = decode_output(data["returned"])
        got = _number(value)
        if got is None:
            return Verdict.failed(NOT_A_NUMBER.format(name=check.options["function"], got=kind,
                                                      what="the mean training loss (a float)"))
        if want is not None and np.isclose(got, want, rtol=check.options["rtol"], atol=check.options["atol"]):
            return Verdict.passed(f"train() returned the mean batch loss ({got:.6g}).")
        message = LOSS_DIFFERS.format(got=f"{got:.6g}", expected=want)
        batches = -(-check.options["samples"] // check.options["batch_size"])
        if want is not None and np.isclose(got, want * batches, rtol=check.options["rtol"]):
            message += LOSS_IS_SUM.format(batches=batches)
        return Verdict.failed(message, expected=want, observed=got)


class TestFunctionCheck(_TrainTestCheck):
    __test__ = False  # not a pytest test class, despite its name
    op, part = "test_function", "test"
    aspects = ("loss_accuracy", "no_side_effects")
    defaults = {"function": "test", "samples": 128, "batch_size": 32, "seed": 1}

    def _loss_accuracy(self, check: CheckSpec, data: Mapping[str, Any], expected: Mapping[str, Any],
                       context: ScoreContext) -> Verdict:
        name = check.options["function"]
        want = decode_output(expected["returned"])[0]
        value, kind = decode_output(data["returned"])
        if not isinstance(value, list) or len(value) != 2 or any(_number(v) is None for v in value):
            return Verdict.failed(NOT_A_NUMBER.format(name=name, got=kind, what="a pair (mean loss, accuracy)"))
        loss, accuracy = (_number(v) for v in value)
        want_loss, want_accuracy = (_number(v) for v in want)
        problems = []
        if not np.isclose(loss, want_loss, rtol=check.options["rtol"], atol=check.options["atol"]):
            problems.append(f"mean loss {loss:.6g}, expected {want_loss:.6g}")
        if not np.isclose(accuracy, want_accuracy, atol=1e-6):
            note = " (accuracy is a fraction in [0, 1], not a percentage)" if accuracy > 1 else ""
            problems.append(f"accuracy {accuracy:.6g}, expected {want_accuracy:.6g}{note}")
        if not problems:
            return Verdict.passed(f"test() returned loss {loss:.6g} and accuracy {accuracy:.4g}, as expected.")
        return Verdict.failed(f"On the same network and batches, {name}() returned " + "; ".join(problems)
                              + ". Evaluate in eval mode (model.eval()) without gradients, average the batch "
                                "losses, and divide the correct predictions by the number of samples.",
                              expected=[want_loss, want_accuracy], observed=[loss, accuracy])

    def _no_side_effects(self, check: CheckSpec, data: Mapping[str, Any], expected: Mapping[str, Any],
                         context: ScoreContext) -> Verdict:
        name = check.options["function"]
        problems = []
        calls = data.get("forward_calls", [])
        if any(call["training"] for call in calls):
            problems.append("the model was in training mode during the forward passes: call model.eval() "
                            "first, so dropout is off and batch norm uses its running statistics")
        if any(call["grad_enabled"] for call in calls):
            problems.append("gradients were being recorded: wrap the loop in `with torch.no_grad():`")
        changed = _fingerprint_difference(data["before"], data["after"], 0.0, 0.0)
        if changed is not None:
            problems.append(f"the model's state changed (first in `{changed}`): test() must not train "
                            f"or update batch-norm statistics")
        if not calls:
            problems.append("the model was never called")
        if not problems:
            return Verdict.passed(f"{name}() ran in eval mode without gradients and left the model unchanged.")
        return Verdict.failed(f"{name}(): " + "; ".join(problems) + ".")
