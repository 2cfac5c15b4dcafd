"""The grader's side of the kernel preamble (grader/observe/kernel_preamble.py): the code that
installs it in a fresh kernel, and the gate through which every probe reaches it.

The gate is found from a literal, `object.__subclasses__()`, by a class name built from a token
drawn when the kernel started: the probe's user expression uses no name the notebook could
shadow, and its value goes straight into the execute reply (no variable a thread could rewrite).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from grader.data.student_files import StudentFiles
from grader.rubric.model import DataSpec

DATA_FOLDER = "data"  # the working directory's data folder (grader/execute/local.py installs it)
PREAMBLE_FAILED = ("The grader's preamble could not be installed in the kernel ({error}); probes run "
                   "without the protections it gives.")
DIGITS_DATA = "the digits in data/digits28.npz (see the exercise)"
TORCHVISION_DATA = "datasets.{name}(root=..., download=True) at any root"


@lru_cache(maxsize=2)
def kernel_source(name: str) -> str:
    return resources.files("grader.observe").joinpath(name).read_text("utf-8")


def probe_source() -> str:
    return kernel_source("kernel_probe.py")


def data_config(data: DataSpec | StudentFiles) -> dict[str, Any]:
    """What the preamble serves to torchvision's data set classes, and how to describe the rest."""
    kind, _, name = data.source.partition(":")
    if kind == "torchvision":
        return {"provided": [name], "folder": DATA_FOLDER, "describe": TORCHVISION_DATA.format(name=name)}
    return {"provided": [], "folder": DATA_FOLDER, "describe": DIGITS_DATA}


@dataclass(frozen=True)
class KernelGate:
    """How probes reach one kernel's preamble. `problem` is set when it could not be installed."""

    token: str
    problem: str = ""

    def expression(self, method: str, *args: str) -> str:
        """A user expression calling `method` of the gate with string arguments. Only literals and
        attribute lookups on them: no name is looked up in the notebook's namespace."""
        name = repr(f"GraderGate_{self.token}")
        arguments = ", ".join(repr(arg) for arg in args)
        return ("[g for g in ().__class__.__mro__[-1].__subclasses__() if ''.__class__.__eq__("
                f"{name}, ().__class__.__class__.__dict__['__qualname__'].__get__(g)) is True][0]"
                f".{method}({arguments})")


def new_token() -> str:
    return secrets.token_hex(8)


def preamble_code(token: str, data: DataSpec | StudentFiles, preload: tuple[str, ...] = ()) -> str:
    """The cell that installs the preamble (run silently, before any student cell) and imports the
    `preload` libraries."""
    config = json.dumps({"token": token, "data": data_config(data), "probe_source": probe_source(),
                         "preload": list(preload)})
    return (
        "def _grader_preamble():\n"
        "    namespace = {'__name__': 'grader_preamble'}\n"
        f"    exec(compile({kernel_source('kernel_preamble.py')!r}, '<grader-preamble>', 'exec'), namespace)\n"
        f"    namespace['install']({config!r})\n"
        "_grader_preamble()\n"
        "del _grader_preamble\n"
    )


def run_preamble(session: Any, data: DataSpec | StudentFiles, timeout_s: float,
                 preload: tuple[str, ...] = ()) -> KernelGate:
    """Install the preamble in a freshly started kernel session; the gate for its probes."""
    token = new_token()
    outcome = session.execute(preamble_code(token, data, preload), timeout_s, silent=True)
    if outcome.status != "ok":
        error = f"{outcome.error}: {outcome.message}" if outcome.error else outcome.status
        return KernelGate(token, problem=PREAMBLE_FAILED.format(error=error))
    return KernelGate(token)


def facts_request(gate: KernelGate) -> tuple[dict[str, str], str]:
    """The user expression that fetches the preamble's facts (restored names, threads, data
    served, working directory), and the nonce its reply must echo."""
    nonce = secrets.token_hex(8)
    return {"result": gate.expression("facts", nonce)}, nonce
