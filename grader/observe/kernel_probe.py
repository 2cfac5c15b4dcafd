"""The probe: code the grader sends into the student's kernel after the notebook has run.

Its text is executed inside the kernel, in a namespace of its own, and
`run(user_ns, request_json)` returns a JSON string of observations: what the student's objects
did on the inputs in the request. It computes no verdict and holds no reference answer;
everything it sees came from the request or from the student's namespace. The grader imports
this module too, to trace its reference network with the very same code (`trace_model`,
`fingerprint`), never to run student code.
"""

import base64
import json
import time
import traceback

MAX_VALUE_ELEMENTS = 20_000
MAX_TEXT = 2_000
# In the kernel the preamble sets this to its state (start directory, constructor arguments);
# in the grader's own process it stays None.
KERNEL = None
# Names that switch off what the call logs see (torch function modes, dispatch modes, the
# profiler): a function whose code uses one of them hides its library calls on purpose.
ESCAPE_HATCHES = {
    "DisableTorchFunction", "DisableTorchFunctionSubclass", "_DisableTorchDispatch", "_disable_profiler",
    "_pop_torch_function_stack", "_pop_torch_dispatch_stack", "_ExcludeDispatchKeyGuard", "_pop_mode",
    "_set_torch_function_mode", "_IncludeDispatchKeyGuard", "_ForceDispatchKeyGuard",
}


def run(user_ns, request_json):
    request = json.loads(request_json)
    handler = HANDLERS[request["op"]]
    return json.dumps(handler(user_ns, request), allow_nan=True)


def describe_error(error):
    tail = traceback.format_exception(type(error), error, error.__traceback__)
    return {
        "error": type(error).__name__,
        "message": str(error)[:MAX_TEXT],
        "traceback": "".join(tail[-3:])[-MAX_TEXT:],
    }


def decode(value):
    """Turn the grader's JSON encoding of an argument into the object the student receives."""
    if isinstance(value, dict) and "__tensor__" in value:
        import torch

        return torch.tensor(value["__tensor__"], dtype=getattr(torch, value["dtype"]))
    if isinstance(value, dict) and "__b64__" in value:
        import torch

        raw = bytearray(base64.b64decode(value["__b64__"]))
        flat = torch.frombuffer(raw, dtype=getattr(torch, value["dtype"]))
        return flat.reshape(value["shape"]).clone()
    return value


def encode(value, depth=0):
    """A JSON-able record of a student's value: its type, and its content when small enough."""
    kind = type(value).__module__ + "." + type(value).__qualname__
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"type": kind, "value": value if not isinstance(value, str) else value[:MAX_TEXT]}
    if _is_tensor(value):
        return encode_tensor(value, kind)
    if hasattr(value, "tolist") and hasattr(value, "shape"):
        shape = [int(n) for n in value.shape]
        count = 1
        for n in shape:
            count *= n
        record = {"type": kind, "shape": shape, "dtype": str(getattr(value, "dtype", ""))}
        if count <= MAX_VALUE_ELEMENTS:
            data = value.detach() if hasattr(value, "detach") else value
            record["value"] = data.tolist()
        return record
    if depth < 4 and isinstance(value, (list, tuple)):
        return {"type": kind, "items": [encode(item, depth + 1) for item in list(value)[:100]]}
    if depth < 4 and isinstance(value, dict):
        return {"type": kind, "entries": {str(k)[:100]: encode(v, depth + 1)
                                          for k, v in list(value.items())[:100]}}
    return {"type": kind, "repr": repr(value)[:MAX_TEXT]}


def _is_tensor(value):
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and issubclass(type(value), torch._C.TensorBase)


def encode_tensor(value, kind):
    """A tensor read through torch's C-level methods (an immutable type) with __torch_function__
    off: a patched torch.Tensor.tolist / detach / shape or a tensor subclass cannot change what
    is reported."""
    import torch

    base = torch._C.TensorBase
    with torch._C.DisableTorchFunction():
        shape = [int(n) for n in base.size(value)]
        record = {"type": kind, "shape": shape, "dtype": str(base.dtype.__get__(value))}
        count = 1
        for n in shape:
            count *= n
        if count <= MAX_VALUE_ELEMENTS:
            record["value"] = base.tolist(base.detach(value))
    return record


def torch_call_logger():
    """A TorchFunctionMode recording the names of the torch functions called while it is active."""
    try:
        from torch.overrides import TorchFunctionMode
    except ImportError:
        return None

    class CallLogger(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.names = set()

        def __torch_function__(self, func, types, args=(), kwargs=None):
            module = getattr(func, "__module__", None) or "Tensor"
            self.names.add(module + "." + getattr(func, "__qualname__", repr(func)))
            return func(*args, **(kwargs or {}))

    return CallLogger()


def torch_op_logger():
    """A TorchDispatchMode recording the aten operators run while it is active: below torch's
    Python API, so `torch.convolution`, `torch.ops.aten.*` and calls made inside
    `torch._C.DisableTorchFunction()` are seen too."""
    try:
        from torch.utils._python_dispatch import TorchDispatchMode
    except ImportError:
        return None

    class OpLogger(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            packet = getattr(func, "overloadpacket", None)
            self.names.add("aten." + str(getattr(packet, "__name__", func)))
            return func(*args, **(kwargs or {}))

    return OpLogger()


def code_names(function, user_ns, limit=200):
    """The global and attribute names used by a function's code, by the code nested in it and by
    the notebook's own functions it names (transitively, up to `limit` code objects)."""
    import types

    names, seen, pending = set(), set(), [function]
    while pending and len(seen) < limit:
        current = pending.pop()
        code = getattr(current, "__code__", None)
        if not isinstance(code, types.CodeType) or id(code) in seen:
            continue
        codes = [code]
        while codes:
            item = codes.pop()
            seen.add(id(item))
            names.update(item.co_names)
            codes.extend(c for c in item.co_consts if isinstance(c, types.CodeType) and id(c) not in seen)
        for name in code.co_names:
            value = user_ns.get(name)
            if isinstance(value, types.FunctionType) and value.__module__ == "__main__":
                pending.append(value)
    return names


def signature_of(function):
    import inspect

    try:
        return function.__name__ + str(inspect.signature(function))
    except (TypeError, ValueError):
        return repr(function)


def observe_calls(user_ns, request):
    name = request["function"]
    if name not in user_ns:
        return {"defined": False}
    function = user_ns[name]
    if not callable(function):
        return {"defined": True, "callable": False, "value": encode(function)}
    import sys

    names = code_names(function, user_ns) if request.get("trace") else set()
    # A function can only call torch once torch is imported: in a notebook that never imported it
    # (and a function that does not import it), the logs are skipped along with torch's import.
    trace = request.get("trace") and ("torch" in sys.modules or names & {"torch", "import_module", "__import__"})
    results = []
    for case in request["cases"]:
        args = [decode(arg) for arg in case["args"]]
        logger = torch_call_logger() if trace else None
        op_logger = torch_op_logger() if logger is not None else None
        started = time.perf_counter()
        try:
            if logger is not None and op_logger is not None:
                with logger, op_logger:
                    output = function(*args)
            elif logger is not None:
                with logger:
                    output = function(*args)
            else:
                output = function(*args)
            result = {"ok": True, "output": encode(output)}
        except Exception as error:  # the student's error is an observation, not a probe failure
            result = {"ok": False, **describe_error(error)}
        result["seconds"] = round(time.perf_counter() - started, 6)
        if logger is not None:
            result["torch_calls"] = sorted(logger.names | (op_logger.names if op_logger else set()))
        results.append(result)
    info = {"defined": True, "callable": True, "signature": signature_of(function), "results": results}
    if request.get("trace"):
        info["escape_hatches"] = sorted(names & ESCAPE_HATCHES)
    return info


def observe_variable(user_ns, request):
    name = request["name"]
    if name not in user_ns:
        return {"defined": False}
    return {"defined": True, "value": encode(user_ns[name])}


# ------------------------------------------------------------------------ networks (Part B)

# Functional calls recorded in a model trace when made outside any leaf module (a leaf
# module's own internals, e.g. Conv2d calling conv2d, are covered by the module's event).
LAYER_FUNCTIONS = {
    "relu", "relu_", "leaky_relu", "gelu", "elu", "selu", "silu", "sigmoid", "tanh", "softmax",
    "log_softmax", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
    "max_pool2d_with_indices", "dropout", "dropout2d", "feature_dropout", "alpha_dropout",
    "batch_norm", "flatten", "view", "reshape", "linear", "conv2d",
}


def qualified(value):
    kind = type(value)
    return kind.__module__ + "." + kind.__qualname__


def shape_of(value):
    shape = getattr(value, "shape", None)
    return None if shape is None else [int(n) for n in shape]


def module_classes(user_ns):
    """Names of the nn.Module subclasses the notebook itself defined, in definition order."""
    import torch.nn as nn

    return [name for name, value in list(user_ns.items())
            if isinstance(value, type) and issubclass(value, nn.Module)
            and value.__module__ == "__main__" and not name.startswith("_")]


def module_instances(user_ns):
    """(name, instance) of the nn.Module instances in the notebook's globals, in namespace order."""
    import torch.nn as nn

    return [(name, value) for name, value in list(user_ns.items())
            if isinstance(value, nn.Module) and not name.startswith("_")]


def recorded_arguments(instance):
    """The (args, kwargs) the instance was constructed with, as the preamble recorded them."""
    return None if KERNEL is None else KERNEL.constructor_arguments(instance)


def short_repr(value):
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


class Recipe:
    """How the grader builds a fresh instance of the student's network (under its own seed).

    built_with: rubric_kwargs (the rubric's [model] kwargs), no_arguments, recorded_arguments (the
    arguments an instance in the notebook's globals was constructed with) or reinitialised_copy
    (a deep copy of such an instance whose every layer is reset with reset_parameters())."""

    def __init__(self, model_class, built_with, args=(), kwargs=None, instance_name=None, instance=None):
        self.model_class = model_class
        self.built_with = built_with
        self.args, self.kwargs = tuple(args), dict(kwargs or {})
        self.instance_name, self.instance = instance_name, instance

    def build(self):
        import copy

        if self.built_with == "reinitialised_copy":
            return reinitialised_copy(self.instance)
        args, kwargs = self.args, self.kwargs
        if self.built_with == "recorded_arguments":
            try:
                args, kwargs = copy.deepcopy((args, kwargs))
            except Exception:  # arguments that cannot be copied are passed as they are
                pass
        return self.model_class(*args, **kwargs)

    def describe(self):
        arguments = [short_repr(a) for a in self.args] + [f"{k}={short_repr(v)}" for k, v in self.kwargs.items()]
        return {"class": self.model_class.__name__, "built_with": self.built_with,
                "instance": self.instance_name, "arguments": ", ".join(arguments)}


def reinitialised_copy(instance):
    """A deep copy with every layer reset by its own reset_parameters(); refused when a layer with
    parameters or buffers has none (its trained values would survive)."""
    import copy

    model = copy.deepcopy(instance)
    for module in model.modules():
        own = list(module.parameters(recurse=False)) + list(module.buffers(recurse=False))
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        elif own:
            raise TypeError(f"{type(module).__name__} has parameters but no reset_parameters(), so a "
                            f"copy of `{type(instance).__name__}` cannot be re-initialised")
    return model


def recipes_for(model_class, kwargs, user_ns):
    """Every way to build the class, in the order tried: the rubric's kwargs, no arguments, then
    the recorded arguments of each instance of exactly this class in the notebook's globals."""
    recipes = []
    if kwargs:
        recipes.append(Recipe(model_class, "rubric_kwargs", kwargs=kwargs))
    recipes.append(Recipe(model_class, "no_arguments"))
    for name, instance in module_instances(user_ns):
        recorded = recorded_arguments(instance) if type(instance) is model_class else None
        if recorded is not None:
            recipes.append(Recipe(model_class, "recorded_arguments", recorded[0], recorded[1], name, instance))
    return recipes


def first_buildable(recipes):
    """(recipe, model) for the first recipe that builds, or (None, error of the first failure)."""
    first_error = None
    for recipe in recipes:
        try:
            return recipe, recipe.build()
        except TypeError as error:  # wrong arguments: try the next way
            first_error = first_error or error
        except Exception as error:
            first_error = first_error or error
            break
    return None, first_error


def instantiate(model_class, kwargs):
    """An instance built with the rubric's keyword arguments, or with none if it takes none."""
    recipe, model = first_buildable(recipes_for(model_class, kwargs, {}))
    if recipe is None:
        raise model
    return model, recipe.kwargs


def trace_model(model, x):
    """Run `model(x)` recording, in execution order, each leaf module's output and each layer-like
    functional call made outside leaf modules. Returns (events, output)."""
    from torch.overrides import TorchFunctionMode

    events = []
    depth = [0]
    handles = []

    def enter(module, inputs):
        depth[0] += 1

    def leave(module, inputs, output, name):
        depth[0] -= 1
        params = sum(p.numel() for p in module.parameters() if p.requires_grad)
        events.append({"kind": "module", "name": name, "type": type(module).__name__,
                       "shape": shape_of(output), "params": int(params)})

    for name, module in model.named_modules():
        # Leaf modules only; a model without submodules is traced through its functional calls.
        if module is not model and not list(module.children()):
            handles.append(module.register_forward_pre_hook(enter))
            handles.append(module.register_forward_hook(
                lambda m, i, o, name=name: leave(m, i, o, name)))

    class FunctionalCalls(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            result = func(*args, **(kwargs or {}))
            short = getattr(func, "__name__", "").lstrip("_")
            if depth[0] == 0 and short in LAYER_FUNCTIONS:
                events.append({"kind": "function", "name": "", "type": short,
                               "shape": shape_of(result), "params": 0})
            return result

    try:
        with FunctionalCalls():
            output = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return events, output


def layer_table(model):
    return [{"name": name, "type": type(module).__name__,
             "params": int(sum(p.numel() for p in module.parameters() if p.requires_grad))}
            for name, module in model.named_modules()
            if not list(module.children()) and any(True for _ in module.parameters())]


def output_summary(output):
    import torch

    if not isinstance(output, torch.Tensor):
        return {"type": qualified(output)}
    data = output.detach().double()
    summary = {"type": qualified(output), "shape": shape_of(output), "finite": bool(torch.isfinite(data).all())}
    if data.dim() == 2 and data.numel():
        summary.update(min=float(data.min()), max=float(data.max()),
                       row_sums=[float(v) for v in data.sum(dim=1)[:8]])
    return summary


def model_candidates(user_ns, request):
    """The ways to build the network to grade, best first, and what was tried (for the report).

    A named class: its recipes (see recipes_for) that build. "auto": every nn.Module subclass the
    notebook defined, built by its first working recipe, then (only when none of those fits) a
    re-initialised copy of each other nn.Module instance in the notebook's globals (e.g. an
    nn.Sequential); kept when it maps the input shape to the class count, and ordered: classes
    with convolution layers first, then classes with an instance in the notebook's globals, then
    definition (namespace) order."""
    import torch
    import torch.nn as nn

    name = request["model_class"]
    info = {"module_classes": module_classes(user_ns)}
    if name != "auto":
        model_class = user_ns.get(name)
        if model_class is None:
            return [], {**info, "problem": "not_defined"}
        if not (isinstance(model_class, type) and issubclass(model_class, nn.Module)):
            return [], {**info, "problem": "not_module", "type": qualified(model_class)}
        recipes = []
        for recipe in recipes_for(model_class, request["kwargs"], user_ns):
            try:
                recipe.build()
                recipes.append(recipe)
            except Exception as error:
                info.setdefault("construct_error", describe_error(error))
        if recipes:
            info.pop("construct_error", None)
        return recipes, info
    instances = module_instances(user_ns)
    with_instance = {type(instance) for _, instance in instances}
    tried = []
    for candidate in info["module_classes"]:
        tried.append(try_candidate(recipes_for(user_ns[candidate], request["kwargs"], user_ns), request))
    if not any(entry["fits"] for entry, _ in tried):
        classes = {user_ns[c] for c in info["module_classes"]}
        for instance_name, instance in instances:  # losses and activations have no parameters: skipped
            if type(instance) not in classes and any(True for _ in instance.parameters()):
                recipe = Recipe(type(instance), "reinitialised_copy", instance_name=instance_name,
                                instance=instance)
                tried.append(try_candidate([recipe], request))
    fitting = [(entry, recipe) for entry, recipe in tried if entry["fits"]]
    fitting.sort(key=lambda pair: (not pair[0]["has_conv"], pair[1].model_class not in with_instance))
    info["candidates"] = [entry for entry, _ in tried]
    if not fitting:
        return [], {**info, "problem": "no_candidate"}
    torch.manual_seed(0)
    return [recipe for _, recipe in fitting], info


def try_candidate(recipes, request):
    """(what was tried, the recipe that built it) for one candidate class."""
    import torch

    entry = {"class": recipes[0].model_class.__name__}
    torch.manual_seed(0)
    recipe, model = first_buildable(recipes)
    if recipe is None:
        entry.update(fits=False, **describe_error(model))
        return entry, None
    entry.update(recipe.describe())
    try:
        model.eval()
        with torch.no_grad():
            output = model(torch.zeros(2, *request["input_shape"]))
        entry["output_shape"] = shape_of(output)
        entry["has_conv"] = any("Conv" in type(m).__name__ for m in model.modules())
        entry["fits"] = entry["output_shape"] == [2, request["n_classes"]]
    except Exception as error:
        entry.update(fits=False, **describe_error(error))
    return entry, recipe


def resolve_model(user_ns, request):
    """(recipe, info): the network to grade, or (None, info saying why there is none)."""
    recipes, info = model_candidates(user_ns, request)
    if not recipes:
        if "construct_error" in info:
            return None, {**info, "found": True, "model_class": request["model_class"]}
        return None, {**info, "found": False}
    recipe = recipes[0]
    info.update(found=True, model_class=recipe.model_class.__name__, model=recipe.describe(),
                used_kwargs=recipe.kwargs)
    return recipe, info


def observe_model(user_ns, request):
    import torch

    recipe, info = resolve_model(user_ns, request)
    if recipe is None:
        return info
    torch.manual_seed(request["seed"])
    try:
        model = recipe.build()
    except Exception as error:
        return {**info, "construct_error": describe_error(error)}
    generator = torch.Generator().manual_seed(request["seed"])
    x = torch.rand((2, *request["input_shape"]), generator=generator)
    model.eval()
    try:
        with torch.no_grad():
            events, output = trace_model(model, x)
            again = model(x)
    except Exception as error:
        return {**info, "forward_error": describe_error(error)}
    info.update(trace=events, output=output_summary(output), layers=layer_table(model),
                trainable_params=int(sum(p.numel() for p in model.parameters() if p.requires_grad)))
    try:
        info["eval_max_difference"] = float((output - again).abs().max())
    except Exception as error:
        info["eval_max_difference_error"] = describe_error(error)
    batches = {}
    for size in request["batch_sizes"]:
        try:
            with torch.no_grad():
                batches[str(size)] = {"shape": shape_of(model(torch.rand((size, *request["input_shape"]),
                                                                         generator=generator)))}
        except Exception as error:
            batches[str(size)] = describe_error(error)
    info["batch_outputs"] = batches
    return info


# --------------------------------------------------------------------- data loaders (Part C)

def observe_loader(user_ns, request):
    import torch

    name = request["name"]
    if name not in user_ns:
        return {"defined": False}
    loader = user_ns[name]
    info = {"defined": True, "type": qualified(loader),
            "is_dataloader": isinstance(loader, torch.utils.data.DataLoader),
            "batch_size": getattr(loader, "batch_size", None)}
    try:
        batch = next(iter(loader))
    except Exception as error:
        return {**info, "error": describe_error(error)}
    info["batch_type"] = qualified(batch)
    if isinstance(batch, (list, tuple)):
        info["items"] = [{"type": qualified(item), "dtype": str(getattr(item, "dtype", "")),
                          "shape": shape_of(item)} for item in list(batch)[:4]]
        info["length"] = len(batch)
    return info


# -------------------------------------------------------------- train() and test() (Part D)

def build_network(request):
    """The network named by the request, built from the source the request carries."""
    import torch

    namespace = {"__name__": "grader_network"}
    exec(compile(request["network_source"], "<grader-network>", "exec"), namespace)
    torch.manual_seed(request["init_seed"])
    return namespace[request["network_class"]](**request["network_kwargs"])


def make_loader(request):
    from torch.utils.data import DataLoader, TensorDataset

    dataset = TensorDataset(decode(request["x"]), decode(request["y"]))
    return DataLoader(dataset, batch_size=request["batch_size"], shuffle=False)


def make_optimizer(name, parameters, learning_rate):
    import torch

    optimizers = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}
    return optimizers[name](parameters, lr=learning_rate)


def fingerprint(model):
    """A compact, order-independent summary of every tensor in the state dict."""
    summary = {}
    for name, tensor in model.state_dict().items():
        data = tensor.detach().double().flatten()
        count = data.numel()
        samples = [float(data[(i * 7919) % count]) for i in range(min(count, 16))] if count else []
        summary[name] = {"sum": float(data.sum()), "sumsq": float((data * data).sum()), "samples": samples}
    return summary


def student_function(user_ns, name):
    function = user_ns.get(name)
    if function is None:
        return None, {"defined": False}
    if not callable(function):
        return None, {"defined": True, "callable": False, "value": encode(function)}
    return function, {"defined": True, "callable": True, "signature": signature_of(function)}


def observe_train_function(user_ns, request):
    import torch

    function, info = student_function(user_ns, request["function"])
    if function is None:
        return info
    model = build_network(request)
    optimizer = make_optimizer(request["optimizer"], model.parameters(), request["learning_rate"])
    torch.manual_seed(request["train_seed"])
    try:
        info["returned"] = encode(function(model, make_loader(request), torch.nn.CrossEntropyLoss(), optimizer))
    except Exception as error:
        info["error"] = describe_error(error)
    info["fingerprint"] = fingerprint(model)
    return info


def observe_test_function(user_ns, request):
    import torch

    function, info = student_function(user_ns, request["function"])
    if function is None:
        return info
    model = build_network(request)
    calls = []
    hook = model.register_forward_pre_hook(
        lambda module, inputs: calls.append({"training": module.training,
                                             "grad_enabled": torch.is_grad_enabled()}))
    info["before"] = fingerprint(model)
    torch.manual_seed(request["init_seed"])
    try:
        info["returned"] = encode(function(model, make_loader(request), torch.nn.CrossEntropyLoss()))
    except Exception as error:
        info["error"] = describe_error(error)
    finally:
        hook.remove()
    info["after"] = fingerprint(model)
    info["forward_calls"] = calls[:50]
    return info


# ----------------------------------------------------- brief training and saved model (D3, E1)

def predict(model, x, batch_size=256):
    import torch

    model.eval()
    labels = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            labels.extend(int(v) for v in model(x[start:start + batch_size]).argmax(dim=1))
    return labels


def make_schedule(optimizer, request, total_steps):
    """The learning-rate schedule: constant, or one cycle (warm up to the rate, then anneal)."""
    import torch

    if request.get("schedule", "constant") != "one_cycle" or total_steps < 2:
        return None
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=request["learning_rate"], total_steps=total_steps)


def observe_training(user_ns, request):
    """Train a fresh instance of the student's class with the grader's own fixed loop. The
    untrained instance's predictions are kept too: accuracy must come from the training."""
    import torch

    recipe, info = resolve_model(user_ns, request)
    if recipe is None:
        return info
    threads = torch.get_num_threads()
    torch.set_num_threads(request["threads"])
    started = time.perf_counter()
    try:
        torch.manual_seed(request["seed"])
        model = recipe.build()
        x, y, x_eval = decode(request["x"]), decode(request["y"]), decode(request["x_eval"])
        # In eval mode without gradients: materialises lazy layers before the optimizer sees the
        # parameters, and changes no batch-norm statistics.
        info["untrained_predictions"] = predict(model, x_eval)
        optimizer = make_optimizer(request["optimizer"], model.parameters(), request["learning_rate"])
        batch_size = request["batch_size"]
        per_epoch = -(-len(x) // batch_size)
        schedule = make_schedule(optimizer, request, request["epochs"] * per_epoch)
        loss_fn = torch.nn.CrossEntropyLoss()
        generator = torch.Generator().manual_seed(request["seed"])
        epochs = []
        out_of_time = False
        for epoch in range(request["epochs"]):
            model.train()
            order = torch.randperm(len(x), generator=generator)
            total, batches = 0.0, 0
            for start in range(0, len(x), batch_size):
                index = order[start:start + batch_size]
                optimizer.zero_grad()
                loss = loss_fn(model(x[index]), y[index])
                loss.backward()
                optimizer.step()
                if schedule is not None:
                    schedule.step()
                total, batches = total + float(loss.item()), batches + 1
                if time.perf_counter() - started > request["time_budget_s"]:
                    out_of_time = True
                    break
            last = out_of_time or epoch == request["epochs"] - 1
            entry = {"train_loss": total / max(batches, 1), "batches": batches}
            if last or request.get("evaluate_each_epoch", True):
                entry["predictions"] = predict(model, x_eval)
            epochs.append(entry)
            if out_of_time:
                break
        info.update(epochs=epochs, out_of_time=out_of_time)
    except Exception as error:
        info["error"] = describe_error(error)
    finally:
        torch.set_num_threads(threads)
    info["seconds"] = round(time.perf_counter() - started, 3)
    return info


def observe_saved_model(user_ns, request):
    import os

    import torch

    start_dir = KERNEL.start_dir if KERNEL is not None else os.getcwd()
    path = os.path.join(start_dir, request["path"])  # where the notebook started, whatever it chdir'd to
    if not os.path.isfile(path):
        return {"exists": False, "files": sorted(os.listdir(start_dir))[:50]}
    info = {"exists": True, "bytes": os.path.getsize(path)}
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:
        return {**info, "load_error": describe_error(error)}
    if not isinstance(state, dict):
        return {**info, "state_type": qualified(state)}
    recipes, found = model_candidates(user_ns, request)
    info.update(found)
    if not recipes:
        if "construct_error" in found:  # the class exists but no way of building it works
            return {**info, "found": True, "model_class": request["model_class"],
                    "strict_error": found["construct_error"]}
        return {**info, "found": False}
    model, recipe, error = load_into_candidates(recipes, state)
    info.update(found=True, model_class=recipe.model_class.__name__, model=recipe.describe())
    if "x_eval" not in request:  # whether it loads, nothing to predict
        return info if model is not None else {**info, "strict_error": describe_error(error)}
    x_eval = decode(request["x_eval"])
    try:
        # The same network freshly built from the grader's seed, never loaded: accuracy that is
        # already there without the saved weights did not come from training.
        torch.manual_seed(request["seed"])
        info["untrained_predictions"] = predict(recipe.build(), x_eval)
    except Exception as untrained_error:
        info["untrained_error"] = describe_error(untrained_error)
    if model is None:
        return {**info, "strict_error": describe_error(error)}
    try:
        info["predictions"] = predict(model, x_eval)
    except Exception as error:
        info["predict_error"] = describe_error(error)
    return info


def load_into_candidates(recipes, state):
    """(model, recipe, None) for the first candidate that loads the saved state dict strictly;
    else (None, the best candidate, its error)."""
    first_error = None
    for recipe in recipes:
        try:
            model = recipe.build()
            model.load_state_dict(state, strict=True)
            return model, recipe, None
        except Exception as error:
            first_error = first_error or error
    return None, recipes[0], first_error


HANDLERS = {
    "call": observe_calls,
    "variable": observe_variable,
    "model": observe_model,
    "loader": observe_loader,
    "train_function": observe_train_function,
    "test_function": observe_test_function,
    "training": observe_training,
    "saved_model": observe_saved_model,
}
