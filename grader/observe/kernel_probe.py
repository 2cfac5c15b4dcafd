"""The probe: code the grader sends into the student's kernel after the notebook has run.

This file is never imported by the grader. Its text is executed inside the kernel, in a
namespace of its own, and `run(user_ns, request_json)` returns a JSON string of observations:
what the student's objects did on the inputs in the request. It computes no verdict and holds
no reference answer; everything it sees came from the request or from the student's namespace.
"""

import json
import time
import traceback

MAX_VALUE_ELEMENTS = 20_000
MAX_TEXT = 2_000


def run(user_ns, request_json):
    request = json.loads(request_json)
    handler = {"call": observe_calls, "variable": observe_variable}[request["op"]]
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
    results = []
    for case in request["cases"]:
        args = [decode(arg) for arg in case["args"]]
        logger = torch_call_logger() if request.get("trace") else None
        started = time.perf_counter()
        try:
            if logger is not None:
                with logger:
                    output = function(*args)
            else:
                output = function(*args)
            result = {"ok": True, "output": encode(output)}
        except Exception as error:  # the student's error is an observation, not a probe failure
            result = {"ok": False, **describe_error(error)}
        result["seconds"] = round(time.perf_counter() - started, 6)
        if logger is not None:
            result["torch_calls"] = sorted(logger.names)
        results.append(result)
    return {"defined": True, "callable": True, "signature": signature_of(function), "results": results}


def observe_variable(user_ns, request):
    name = request["name"]
    if name not in user_ns:
        return {"defined": False}
    return {"defined": True, "value": encode(user_ns[name])}
