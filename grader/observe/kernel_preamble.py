"""The preamble: code the grader runs in each fresh kernel, before the first student cell.

Its text is executed in the kernel in a namespace of its own and `install(config_json)` is called;
it leaves no name in the notebook's namespace. It keeps what the probes rely on out of the
notebook's reach and records what the grader needs to know later:
- the builtins and the probe's own code, taken before any student code runs (a notebook-level
  `def exec` or a patched `builtins.len` never reaches the probe);
- a snapshot of the libraries the probes and the student's correct code rely on (torch,
  torch.nn.functional, Tensor methods, nn.Module and its layers, torch.optim, torch.utils.data,
  numpy, json, the builtins, IPython's reply path) and of the global state that changes results
  (grad mode, default dtype and device, torch function / dispatch modes, global module hooks,
  sys.settrace / setprofile, working directory); each probe restores them first and records
  what it restored. Libraries are snapshot when they finish importing (a notebook without torch
  pays nothing for it);
- the constructor arguments of the notebook's nn.Module instances, to build fresh ones;
- torchvision's MNIST-family and CIFAR data sets read from the sandbox's data folder at any root,
  never downloaded (installed before the snapshot, so restoring keeps it);
- the threads the notebook started.
The probe reaches all this through a gate: a class that the probe's user expression finds from a
literal (`object.__subclasses__()`), never through a name the notebook could shadow.
"""

import builtins

# Functions defined below look their builtins up in this copy, taken before student code runs.
__builtins__ = dict(vars(builtins))
SAFE_BUILTINS = __builtins__

import json  # noqa: E402 - after the builtins copy, on purpose
import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import weakref  # noqa: E402

# Builtins IPython itself swaps in and out around each cell: never "restored".
IPYTHON_BUILTINS = {"exit", "quit", "get_ipython", "display", "__IPYTHON__", "_", "__", "___", "help", "input",
                    "raw_input"}
# Libraries that patch themselves at run time (torch wraps Optimizer.step on first use and
# torch.manual_seed when dynamo loads): a replacement whose code lives in one of these packages
# is the library's own doing and becomes the new reference instead of being "restored".
LIBRARY_PACKAGES = ("torch", "numpy", "IPython", "ipykernel", "json")
# Threads a notebook normally leaves behind: tqdm's monitor, DataLoader's pin-memory thread,
# multiprocessing queues' feeders (DataLoader workers).
NORMAL_THREADS = ("tqdm._monitor.TMonitor", "torch.utils.data._utils.pin_memory._pin_memory_loop",
                  "multiprocessing.queues.Queue._feed", "threading._ExceptHookArgs")
DATASET_MODULES = {"torchvision.datasets.mnist": "MNIST", "torchvision.datasets.cifar": "CIFAR10"}
NOT_PROVIDED = ("The grader provides no {name} data set here and the kernel has no network, so "
                "datasets.{name}(download=True) cannot fetch it. This exercise's data: {provided}.")
MISSING = object()


class KernelState:
    """What the preamble keeps for the probes: built when the kernel starts."""

    def __init__(self, config):
        self.config = config
        self.start_dir = os.getcwd()
        self.start_threads = {thread.ident for thread in threading.enumerate()}
        self.snapshots = []  # (label, owner, {name: value})
        self.global_state = {}
        self.restored = []  # what probes found replaced, in the order found
        self.constructors = {}  # id(instance) -> (weakref, args, kwargs)
        self.data_served = []
        self.problems = []
        self.shell = _shell()
        self.modules = {}  # module name -> the module, for sys.modules entries
        self.reply_path = None

    # ------------------------------------------------------------------ snapshot and restore
    def take(self, label, owner):
        self.snapshots.append((label, owner, dict(vars(owner))))

    def restore(self):
        """Put IPython's reply path, every snapshot library and the global state back; returns
        the names found replaced (also kept, without repeats, in `self.restored`)."""
        # Global state first (with functions taken at snapshot time): setting the default dtype
        # back also puts back what torch derives from it (torch.Storage).
        found = restore_reply_path(self) + self._restore_global_state()
        for label, owner, saved in self.snapshots:
            found.extend(_restore_owner(label, owner, saved))
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                sys.modules[name] = module
                found.append(f"sys.modules[{name!r}]")
        for name in found:
            if name not in self.restored:
                self.restored.append(name)
        return found

    def _restore_global_state(self):
        found = []
        if os.getcwd() != self.start_dir:
            os.chdir(self.start_dir)
            found.append("working directory")
        for name, (getter, setter) in _tracers().items():
            if getter() is not None:
                setter(None)
                found.append(name)
        torch = sys.modules.get("torch")
        if torch is not None and "torch" in self.global_state:
            found.extend(_restore_torch_state(torch, self.global_state["torch"]))
        return found

    # --------------------------------------------------------------------- what was observed
    def constructor_arguments(self, instance):
        entry = self.constructors.get(id(instance))
        if entry is None or entry[0]() is not instance:
            return None
        return entry[1], entry[2]

    def threads(self):
        rows = []
        for thread in threading.enumerate():
            if thread.ident in self.start_threads or thread is threading.current_thread():
                continue
            target = getattr(thread, "_target", None)
            where = _qualified(target) if target is not None else _qualified(type(thread))
            rows.append({"name": str(thread.name)[:100], "class": _qualified(type(thread)),
                         "target": where, "daemon": bool(thread.daemon),
                         "normal": any(where.startswith(n) or _qualified(type(thread)) == n
                                       for n in NORMAL_THREADS)})
        return rows

    def facts(self):
        # No absolute paths: the sandbox's folder differs per run and reports must not.
        return {"restored": list(self.restored),
                "threads": self.threads(), "data_served": list(self.data_served),
                "snapshot_size": sum(len(saved) for _, _, saved in self.snapshots),
                "problems": list(self.problems)}

    def user_ns(self):
        return self.shell.user_ns


# -------------------------------------------------------------------------------- helpers

def _shell():
    from IPython import get_ipython

    return get_ipython()


def _qualified(value):
    module = getattr(value, "__module__", None) or "?"
    return f"{module}.{getattr(value, '__qualname__', type(value).__qualname__)}"


def _restorable(value):
    return callable(value) or hasattr(type(value), "__get__") or type(value).__name__ == "module"


def _library_code(value):
    """Whether a function's code was written in one of LIBRARY_PACKAGES' own files."""
    function = getattr(value, "__func__", value)
    code = getattr(function, "__code__", None)
    if code is None:
        return False
    for package in LIBRARY_PACKAGES:
        module = sys.modules.get(package)
        folder = os.path.dirname(getattr(module, "__file__", None) or "") if module is not None else ""
        if folder and code.co_filename.startswith(folder + os.sep):
            return True
    return False


def _restore_owner(label, owner, saved):
    found = []
    current = vars(owner)
    is_class = isinstance(owner, type)
    for name, value in list(saved.items()):
        now = current.get(name, MISSING)
        if now is value or not _restorable(value):
            continue
        if owner is builtins and name in IPYTHON_BUILTINS:
            continue
        if now is not MISSING and _library_code(now):
            saved[name] = now
            continue
        try:
            if is_class:
                type.__setattr__(owner, name, value)
            else:
                setattr(owner, name, value)
            found.append(f"{label}.{name}")
        except (TypeError, AttributeError):
            pass
    if is_class:
        added = [n for n, v in current.items() if n not in saved and n.startswith("__") and n.endswith("__")
                 and _restorable(v)]  # e.g. a __call__ put on a layer class; not copyreg's __slotnames__
        for name in added:
            try:
                type.__delattr__(owner, name)
                found.append(f"{label}.{name} (added)")
            except (TypeError, AttributeError):
                pass
    return found


def _tracers():
    return {"sys.settrace": (sys.gettrace, sys.settrace), "sys.setprofile": (sys.getprofile, sys.setprofile),
            "threading.settrace": (threading.gettrace, threading.settrace),
            "threading.setprofile": (threading.getprofile, threading.setprofile)}


HOOK_DICTS = ("_global_backward_pre_hooks", "_global_backward_hooks", "_global_forward_pre_hooks",
              "_global_forward_hooks", "_global_forward_hooks_always_called",
              "_global_forward_hooks_with_kwargs", "_global_buffer_registration_hooks",
              "_global_module_registration_hooks", "_global_parameter_registration_hooks")


def _torch_state(torch):
    import torch.nn.modules.module as module_module

    functions = {name: getattr(torch, name) for name in (
        "is_grad_enabled", "set_grad_enabled", "get_default_dtype", "set_default_dtype", "get_default_device",
        "set_default_device", "are_deterministic_algorithms_enabled", "use_deterministic_algorithms",
        "is_anomaly_enabled")}
    functions["set_detect_anomaly"] = torch.autograd.set_detect_anomaly
    return {"functions": functions, "grad": torch.is_grad_enabled(), "dtype": torch.get_default_dtype(),
            "device": str(torch.get_default_device()),
            "function_modes": torch._C._len_torch_function_stack(),
            "dispatch_modes": torch._C._len_torch_dispatch_stack(),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "anomaly": torch.is_anomaly_enabled(),
            "hooks": {name: (getattr(module_module, name), dict(getattr(module_module, name)))
                      for name in HOOK_DICTS if hasattr(module_module, name)}}


def _restore_torch_state(torch, saved):
    import torch.nn.modules.module as module_module

    found = []
    if torch._C._len_torch_function_stack() > saved["function_modes"]:
        found.append("torch function modes")
        while torch._C._len_torch_function_stack() > saved["function_modes"]:
            torch._C._pop_torch_function_stack()
    if torch._C._len_torch_dispatch_stack() > saved["dispatch_modes"]:
        found.append("torch dispatch modes")
        from torch.utils._python_dispatch import _pop_mode

        while torch._C._len_torch_dispatch_stack() > saved["dispatch_modes"]:
            _pop_mode()
    f = saved["functions"]  # the functions as they were at snapshot time, not as patched since
    if str(f["get_default_device"]()) != saved["device"]:
        f["set_default_device"](None)
        found.append("default device")
    if f["is_grad_enabled"]() != saved["grad"]:
        f["set_grad_enabled"](saved["grad"])
        found.append("grad mode")
    if f["get_default_dtype"]() != saved["dtype"]:
        f["set_default_dtype"](saved["dtype"])
        found.append("default dtype")
    if f["are_deterministic_algorithms_enabled"]() != saved["deterministic"]:
        f["use_deterministic_algorithms"](saved["deterministic"])
        found.append("deterministic algorithms")
    if f["is_anomaly_enabled"]() != saved["anomaly"]:
        f["set_detect_anomaly"](saved["anomaly"])
        found.append("anomaly detection")
    for name, (hooks, entries) in saved["hooks"].items():
        current = getattr(module_module, name, None)
        if current is not hooks or dict(hooks) != entries:
            setattr(module_module, name, hooks)
            hooks.clear()
            hooks.update(entries)
            found.append(f"global module hooks ({name.strip('_')})")
    return found


# --------------------------------------------------------------- what is snapshot, and when

def _snapshot_torch(state, torch):
    import torch.nn as nn
    import torch.nn.functional as F  # noqa: N812
    import torch.optim as optim
    import torch.utils.data as data

    for label, module in (("torch", torch), ("torch.nn", nn), ("torch.nn.functional", F),
                          ("torch.nn.init", nn.init), ("torch.optim", optim), ("torch.utils.data", data),
                          ("torch.nn.modules.module", sys.modules["torch.nn.modules.module"])):
        state.take(label, module)
        state.modules[module.__name__] = module
    classes = {torch.Tensor, nn.Module, nn.Parameter, data.DataLoader, data.Dataset, data.TensorDataset,
               optim.Optimizer}
    for namespace in (nn, optim):
        for value in vars(namespace).values():
            if isinstance(value, type):
                classes.update(c for c in value.__mro__ if c.__module__.startswith("torch"))
    classes.discard(object)
    for cls in sorted(classes, key=lambda c: (c.__module__, c.__qualname__)):
        state.take(f"{cls.__module__}.{cls.__qualname__}", cls)
    state.global_state["torch"] = _torch_state(torch)


def _snapshot_numpy(state, numpy):
    state.take("numpy", numpy)
    state.modules["numpy"] = numpy


def _snapshot_kernel(state):
    """The builtins, json and IPython's reply path (how a user expression's value is formatted)."""
    state.take("builtins", builtins)
    state.modules["json"] = json
    state.take("json", json)
    from IPython.core import formatters, interactiveshell
    from IPython.lib import pretty

    state.take("IPython.lib.pretty", pretty)
    for cls in (interactiveshell.InteractiveShell, type(state.shell), formatters.DisplayFormatter,
                formatters.BaseFormatter, formatters.PlainTextFormatter, pretty.RepresentationPrinter,
                pretty.PrettyPrinter):
        state.take(f"{cls.__module__}.{cls.__qualname__}", cls)
    display = state.shell.display_formatter
    plain = display.formatters["text/plain"]
    state.reply_path = (display, plain, plain.type_printers.get(str), pretty._type_pprinters.get(str),
                        {id(owner): set(vars(owner)) for owner in (state.shell, display, plain)})


def restore_reply_path(state):
    """The probe's value is a str: how IPython turns a str into the reply's text/plain. (Other
    printers change legitimately, e.g. IPython moves deferred printers on first use.)"""
    from IPython.lib import pretty

    display, plain, str_printer, pretty_str_printer, attributes = state.reply_path
    found = []
    if state.shell.display_formatter is not display:
        state.shell.display_formatter = display
        found.append("IPython display formatter")
    if display.formatters.get("text/plain") is not plain:
        display.formatters["text/plain"] = plain
        found.append("IPython text/plain formatter")
    if plain.type_printers.get(str) is not str_printer or ("builtins", "str") in plain.deferred_printers \
            or pretty._type_pprinters.get(str) is not pretty_str_printer:
        for printers, printer in ((plain.type_printers, str_printer), (pretty._type_pprinters, pretty_str_printer)):
            if printer is None:
                printers.pop(str, None)
            else:
                printers[str] = printer
        plain.deferred_printers.pop(("builtins", "str"), None)
        found.append("IPython text/plain printers")
    for owner in (state.shell, display, plain):
        for name in [n for n in vars(owner) if n not in attributes[id(owner)]
                     and callable(getattr(type(owner), n, None))]:
            delattr(owner, name)  # an instance attribute hiding one of the class's methods
            found.append(f"IPython {type(owner).__name__}.{name} (instance)")
    if not plain.enabled:
        plain.enabled = True
        found.append("IPython text/plain formatter disabled")
    return found


# ---------------------------------------------------------------- constructor arguments

def _record_constructors(state, torch):
    """nn.Module.__new__ records the arguments a notebook class is built with (D3 and E1 build a
    fresh instance the same way). Only classes defined in the notebook, only calls with arguments."""
    module_class = torch.nn.Module
    records = state.constructors

    def __new__(cls, *args, **kwargs):
        instance = object.__new__(cls)
        if (args or kwargs) and cls.__module__ == "__main__":
            key = id(instance)
            records[key] = (weakref.ref(instance, lambda _, key=key: records.pop(key, None)), args, kwargs)
        return instance

    module_class.__new__ = __new__


# ------------------------------------------------------------------- torchvision data sets

def _intercept_datasets(state, module, base_name):
    import functools
    import inspect

    base = getattr(module, base_name)
    original = base.__init__
    signature = inspect.signature(original)
    provided = set(state.config["data"]["provided"])
    served_root = os.path.join(state.start_dir, state.config["data"]["folder"])

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        name = next(c.__name__ for c in type(self).__mro__ if c.__module__.startswith("torchvision."))
        asked = bound.arguments.get("root")
        if name in provided:
            bound.arguments["root"] = served_root
            if "download" in signature.parameters:
                bound.arguments["download"] = False
            if len(state.data_served) < 20:
                state.data_served.append({"data_set": name, "root_asked": str(asked)[:300],
                                          "root_served": state.config["data"]["folder"],
                                          "train": bool(bound.arguments.get("train", True))})
        elif bound.arguments.get("download"):
            raise RuntimeError(NOT_PROVIDED.format(name=name, provided=state.config["data"]["describe"]))
        else:
            try:
                original(*bound.args, **bound.kwargs)
            except RuntimeError as error:  # torchvision's "Dataset not found", and why
                raise RuntimeError(f"{error}. " + NOT_PROVIDED.format(
                    name=name, provided=state.config["data"]["describe"])) from None
            return
        original(*bound.args, **bound.kwargs)

    functools.update_wrapper(__init__, original)
    base.__init__ = __init__


# ------------------------------------------------------------------------ import hooks

class _AfterImport:
    """A meta path finder that runs a callback right after one of its modules is executed."""

    def __init__(self, callbacks):
        self.callbacks = callbacks

    def find_spec(self, fullname, path, target=None):
        callback = self.callbacks.get(fullname)
        if callback is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_call(module):
            exec_module(module)
            self.callbacks.pop(fullname, None)
            callback(module)

        spec.loader.exec_module = exec_then_call
        return spec


def _guarded(state, label, function):
    def call(module):
        try:
            function(module)
        except Exception as error:  # the preamble must never break the student's import
            state.problems.append(f"{label}: {type(error).__name__}: {error}"[:300])

    return call


def _on_import(state, hooks, name, function):
    if name in sys.modules:
        function(sys.modules[name])
    else:
        hooks[name] = function


def install(config_json):
    """Set everything up in this kernel and return the gate class."""
    config = json.loads(config_json)
    state = KernelState(config)
    _snapshot_kernel(state)
    hooks = {}

    def torch_loaded(torch):
        _record_constructors(state, torch)
        _snapshot_torch(state, torch)

    _on_import(state, hooks, "torch", _guarded(state, "torch", torch_loaded))
    _on_import(state, hooks, "numpy", _guarded(state, "numpy", lambda numpy: _snapshot_numpy(state, numpy)))
    for module_name, base_name in DATASET_MODULES.items():
        _on_import(state, hooks, module_name, _guarded(
            state, module_name, lambda module, base=base_name: _intercept_datasets(state, module, base)))
    sys.meta_path.insert(0, _AfterImport(hooks))
    probe = _load_probe(config["probe_source"], state)
    gate = _make_gate(config["token"], state, probe)
    # The rubric's `preload` libraries are imported now, before any student cell (their import
    # then costs the notebook nothing and their snapshot is taken before student code runs).
    for name in config.get("preload", ()):
        try:
            __import__(name)
        except Exception as error:  # noqa: BLE001 - the notebook's own import will say what is wrong
            state.problems.append(f"preloading {name} failed: {type(error).__name__}: {error}")
    return gate


def _load_probe(source, state):
    namespace = {"__name__": "grader_probe", "__builtins__": SAFE_BUILTINS}
    exec(compile(source, "<grader-probe>", "exec"), namespace)
    namespace["KERNEL"] = state
    return namespace


def _make_gate(token, state, probe):
    import types

    def run_probe(nonce, request_json):
        restored = state.restore()
        torch = sys.modules.get("torch")
        if torch is not None and torch.is_inference_mode_enabled():
            with torch.inference_mode(False):
                text = probe["run"](state.user_ns(), request_json)
        else:
            text = probe["run"](state.user_ns(), request_json)
        return '{"nonce": ' + json.dumps(nonce) + ', "restored": ' + json.dumps(restored) + \
            ', "result": ' + text + "}"

    def facts(nonce):
        state.restore()
        return json.dumps({"nonce": nonce, "result": state.facts()})

    name = f"GraderGate_{token}"
    gate = type(name, (), {"probe": staticmethod(run_probe), "facts": staticmethod(facts),
                           "__module__": f"grader_gate_{token}", "__qualname__": name})
    holder = types.ModuleType(f"_grader_gate_{token}")
    holder.gate = gate
    sys.modules[holder.__name__] = holder  # a strong reference: __subclasses__() holds weak ones
    return gate
