"""Calibrate D3 and E1 on the gallery of tests/calibration/ (issue 11).

Every network in `reasonable/` must earn full D3 (the grader's brief training) and pass E1 (its
own training as the template suggests, then saved and loaded); every one in `cannot_learn/`
must lose D3 and E1. Both with the default rubric (class `CNN`) and the free-form one (class
"auto"), on several seeds. The training and the verdicts are the grader's own code: each check
plans its probe, `kernel_probe.run` answers it in this process (no kernel, no sandbox: the
gallery is ours) and the check judges the reply.

    python tests/calibrate.py                       # the rubrics' settings, seeds 0 1 2
    python tests/calibrate.py --seeds 0 --no-e1 --set epochs=3 --set train_samples=1024
    python tests/calibrate.py --only tiny_8_16 lenet5

Per seed it prints the lowest accuracy of a reasonable network and the highest of one that
cannot learn, for D3 and E1, with the margins to the thresholds and the hidden split's sampling
noise. Exit status 1 when a network gets the wrong verdict.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
GALLERY = Path(__file__).resolve().parent / "calibration"
RUBRICS = (ROOT / "rubrics" / "ex06.toml", ROOT / "rubrics" / "cnn_freeform.toml")
sys.path.insert(0, str(ROOT))

from grader.checks.base import ProbeRecord, ScoreContext  # noqa: E402
from grader.checks.registry import CHECK_KINDS  # noqa: E402
from grader.data.sources import data_arrays  # noqa: E402
from grader.execute.base import ExecutionSummary  # noqa: E402
from grader.grade.seeds import check_rng  # noqa: E402
from grader.observe import kernel_probe  # noqa: E402
from grader.rubric.load import load_rubric  # noqa: E402

# How the template tells students to train before saving cnn.pt (reference/template.ipynb, Part D).
TEMPLATE_EPOCHS, TEMPLATE_BATCH, TEMPLATE_LR = 5, 64, 1e-3


@dataclass(frozen=True)
class Network:
    name: str
    group: str  # "reasonable" or "cannot_learn"
    source: str

    def namespace(self, rubric_class: str) -> dict[str, Any]:
        """The names a notebook defining this network would hold (classes in `__main__`)."""
        namespace: dict[str, Any] = {"__name__": "__main__"}
        exec(compile(self.source, f"<{self.name}>", "exec"), namespace)
        if "TABLE" in namespace:  # the lookup attack carries the hidden split itself
            arrays = data_arrays(load_rubric(RUBRICS[0]).data)
            namespace["TABLE"] = (torch.from_numpy(arrays.x_hidden), torch.from_numpy(arrays.hidden_labels))
        if rubric_class != "auto":
            namespace[rubric_class] = network_class(namespace)
        return namespace

    def parameters(self) -> int:
        model = network_class(self.namespace("auto"))()
        with torch.no_grad():
            model.eval()(torch.zeros(2, 1, 28, 28))
        return sum(p.numel() for p in model.parameters())


def network_class(namespace: dict[str, Any]) -> type:
    return next(v for v in namespace.values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
                and v.__module__ == "__main__")


def gallery(only: list[str]) -> list[Network]:
    networks = [Network(path.stem, group, path.read_text("utf-8"))
                for group in ("reasonable", "cannot_learn") for path in sorted((GALLERY / group).glob("*.py"))]
    return [n for n in networks if not only or n.name in only]


def with_overrides(check, seed: int, overrides: dict[str, Any]):
    options = {**check.options, **{k: v for k, v in overrides.items() if k in check.options}}
    if "seed" in options:
        options["seed"] = seed
    return replace(check, options=MappingProxyType(options))


def judge(check, rubric, namespace: dict[str, Any], seed: int, replies: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Plan the check's probe, answer it here with the probe's code, and judge the reply.

    A request that differs from one already answered only in how the class is named (the rubrics
    share their training settings) gets that reply again once the class it resolves to is the
    same: the training is deterministic, so running it twice would only cost time."""
    kind = CHECK_KINDS[check.kind]
    request, inputs = kind.plan(check, check_rng(seed, check.id), rubric)
    resolved, _ = kernel_probe.resolve_model_class(namespace, request.payload)
    key = json.dumps({**request.payload, "model_class": getattr(resolved, "__qualname__", None), "kwargs": None},
                     sort_keys=True)
    if key not in replies:
        replies[key] = json.loads(kernel_probe.run(namespace, json.dumps(request.payload)))
    reply = replies[key]
    record = ProbeRecord(inputs=inputs, status="ok", data=reply)
    context = ScoreContext(rubric=rubric, execution=ExecutionSummary(seconds=0.0, cells=()), definitions={})
    return kind.evaluate(check, record, context), reply


def train_as_template(namespace: dict[str, Any], rubric, seed: int) -> dict[str, torch.Tensor]:
    """Five epochs of Adam 1e-3 on batches of 64 of the whole student train part, as in the template."""
    arrays = data_arrays(rubric.data)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(arrays.x_train), torch.from_numpy(arrays.y_train)),
        batch_size=TEMPLATE_BATCH, shuffle=True)
    torch.manual_seed(seed)
    model = network_class(namespace)()
    with torch.no_grad():
        model.eval()(torch.zeros(2, 1, 28, 28))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable or [torch.nn.Parameter(torch.zeros(1))], lr=TEMPLATE_LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(TEMPLATE_EPOCHS):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            if loss.requires_grad:  # the networks that cannot learn may give nothing to differentiate
                loss.backward()
                optimizer.step()
    return model.state_dict()


def judge_saved(check, rubric, namespace: dict[str, Any], seed: int, replies: dict[str, Any],
                state: dict[str, torch.Tensor]) -> tuple[Any, dict[str, Any]]:
    """E1 on `state` saved where the probe looks for it: the working directory."""
    with tempfile.TemporaryDirectory() as folder:
        torch.save(state, os.path.join(folder, check.options["path"]))
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            return judge(check, rubric, namespace, seed, replies)
        finally:
            os.chdir(cwd)


@dataclass
class Outcome:
    network: Network
    rubric: str
    seed: int
    check: str
    accuracy: float | None
    untrained: float | None
    fraction: float
    seconds: float | None
    message: str


def accuracy_of(verdict, reply: dict[str, Any], labels: np.ndarray, key: str) -> float | None:
    if "accuracy" in verdict.details:
        return float(verdict.details["accuracy"])
    if key == "training" and reply.get("epochs"):
        predictions = reply["epochs"][-1].get("predictions")
    else:
        predictions = reply.get("predictions")
    return None if predictions is None else float(np.mean(np.asarray(predictions) == labels))


def run(networks: list[Network], seeds: list[int], overrides: dict[str, Any], with_e1: bool) -> list[Outcome]:
    torch.set_num_threads(1)
    outcomes = []
    rubrics = [(path.name, load_rubric(path)) for path in RUBRICS]
    labels = data_arrays(rubrics[0][1].data).hidden_labels
    for seed in seeds:
        for network in networks:
            states: dict[str, Any] = {}
            replies: dict[str, Any] = {}
            for rubric_name, rubric in rubrics:
                namespace = network.namespace(rubric.model.model_class)
                for check in rubric.checks:
                    if check.kind == "brief_training":
                        verdict, reply = judge(with_overrides(check, seed, overrides), rubric, namespace, seed, replies)
                        key = "training"
                    elif check.kind == "saved_model" and check.options["aspect"] == "accuracy" and with_e1:
                        if "state" not in states:
                            states["state"] = train_as_template(network.namespace("auto"), rubric, seed)
                        verdict, reply = judge_saved(with_overrides(check, seed, overrides), rubric, namespace,
                                                     seed, replies, states["state"])
                        key = "saved_model"
                    else:
                        continue
                    untrained = reply.get("untrained_predictions")
                    outcome = Outcome(network, rubric_name, seed, check.id, accuracy_of(verdict, reply, labels, key),
                                      None if untrained is None else float(np.mean(np.asarray(untrained) == labels)),
                                      verdict.fraction, reply.get("seconds"), verdict.message)
                    outcomes.append(outcome)
                    print(f"  seed {seed} {rubric_name:18} {check.id:18} {network.group:12} {network.name:22} "
                          f"acc {fmt(outcome.accuracy)} untrained {fmt(outcome.untrained)} "
                          f"fraction {outcome.fraction:.2f} {fmt(outcome.seconds, 's')}", flush=True)
    return outcomes


def fmt(value: float | None, unit: str = "") -> str:
    return "  -  " if value is None else f"{value:.3f}{unit}"


def summarise(outcomes: list[Outcome], seeds: list[int]) -> bool:
    rubric = load_rubric(RUBRICS[0])
    hidden = len(data_arrays(rubric.data).hidden_labels)
    ok = True
    print()
    for check_id in sorted({o.check for o in outcomes}):
        threshold = rubric.check(check_id).options["threshold"]
        untrained_max = rubric.check(check_id).options["untrained_max"]
        noise = math.sqrt(threshold * (1 - threshold) / hidden)
        print(f"{check_id}: threshold {threshold:.3f}; sampling noise of the {hidden} hidden digits at it "
              f"{noise:.4f} (one standard deviation)")
        for seed in seeds:
            rows = [o for o in outcomes if o.check == check_id and o.seed == seed]
            good = [o for o in rows if o.network.group == "reasonable"]
            bad = [o for o in rows if o.network.group == "cannot_learn"]
            line = f"  seed {seed}:"
            if good:
                low = min(good, key=lambda o: o.accuracy or 0.0)
                top_untrained = max((o.untrained or 0.0) for o in good)
                line += (f" lowest reasonable {fmt(low.accuracy)} ({low.network.name}, {low.rubric}), margin "
                         f"{(low.accuracy or 0.0) - threshold:+.3f} = {((low.accuracy or 0.0) - threshold) / noise:.1f}"
                         f" sd; highest untrained {top_untrained:.3f};")
            # A lookup of the hidden split is right on every image; what matters is that it gets nothing.
            learning = [o for o in bad if (o.untrained or 0.0) < untrained_max]
            if learning:
                high = max(learning, key=lambda o: o.accuracy or 0.0)
                line += f" highest that cannot learn {fmt(high.accuracy)} ({high.network.name})"
            caught = sorted({o.network.name for o in bad if (o.untrained or 0.0) >= untrained_max})
            if caught:
                line += f"; refused as already right untrained: {', '.join(caught)}"
            print(line)
            for o in good:
                if o.fraction < 1.0:
                    ok = False
                    print(f"    WRONG: {o.network.name} ({o.rubric}) got {o.fraction:.2f}: {o.message}")
            for o in bad:
                if o.fraction > 0.0:
                    ok = False
                    print(f"    WRONG: {o.network.name} ({o.rubric}) got {o.fraction:.2f}: {o.message}")
    reference = [o.seconds for o in outcomes if o.network.name == "reference" and o.seconds]
    if reference:
        print(f"D3 seconds of the reference CNN: {min(reference):.2f} to {max(reference):.2f}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="*", default=[], help="network names (file stems) to run")
    parser.add_argument("--no-e1", dest="e1", action="store_false", help="skip E1 (template training)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="OPTION=VALUE",
                        help="override a D3 / E1 option, e.g. epochs=3 (JSON values)")
    args = parser.parse_args()
    overrides = {}
    for item in args.overrides:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    networks = gallery(args.only)
    reference = Network("reference", "reasonable", (ROOT / "reference" / "ex06_reference.py").read_text("utf-8"))
    if not args.only or "reference" in args.only:
        networks.insert(0, reference)
    for network in networks:
        print(f"{network.group:12} {network.name:22} {network.parameters():>9,} parameters")
    started = time.perf_counter()
    ok = summarise(run(networks, args.seeds, overrides, args.e1), args.seeds)
    print(f"{'every verdict as expected' if ok else 'SOME VERDICTS ARE WRONG'} "
          f"({time.perf_counter() - started:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
