"""Probe requests (what to observe in the kernel) and their replies, and the code that carries them.

A reply is taken only from the `user_expressions` of the probe's own execute reply, under a
variable name built from a nonce drawn after the student's cells ran: text the notebook printed
or files it wrote never count as observations.
"""

from __future__ import annotations

import ast
import json
import secrets
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class ProbeRequest:
    """One observation to make: `key` is the check id, `payload` the JSON request to the probe."""

    key: str
    payload: dict[str, Any]
    timeout_s: float


@dataclass(frozen=True)
class ProbeReply:
    """status: ok | timeout | probe_error | kernel_died | not_run."""

    status: str
    data: dict[str, Any] | None = None
    message: str = ""
    seconds: float = 0.0


@lru_cache(maxsize=1)
def probe_source() -> str:
    return resources.files("grader.observe").joinpath("kernel_probe.py").read_text("utf-8")


def new_nonce() -> str:
    return secrets.token_hex(8)


def render_probe(request: ProbeRequest, nonce: str) -> tuple[str, dict[str, str]]:
    """The code to execute in the kernel and the user expression that fetches its result."""
    result_name = f"_grader_result_{nonce}"
    function_name = f"_grader_probe_{nonce}"
    code = (
        f"def {function_name}():\n"
        f"    import IPython\n"
        f"    namespace = {{'__name__': 'grader_probe'}}\n"
        f"    exec(compile({probe_source()!r}, '<grader-probe>', 'exec'), namespace)\n"
        f"    return namespace['run'](IPython.get_ipython().user_ns, {json.dumps(request.payload)!r})\n"
        f"{result_name} = {function_name}()\n"
        f"del {function_name}\n"
    )
    return code, {"result": f"globals().pop({result_name!r})"}


def parse_reply(user_expressions: dict[str, Any]) -> dict[str, Any]:
    """Decode the probe's JSON result from the execute reply; ValueError if it is not there."""
    entry = user_expressions.get("result")
    if not entry or entry.get("status") != "ok":
        raise ValueError(f"the probe returned no result ({(entry or {}).get('ename', 'missing')})")
    text = ast.literal_eval(entry["data"]["text/plain"])
    if not isinstance(text, str):
        raise ValueError("the probe result is not a string")
    return json.loads(text)
