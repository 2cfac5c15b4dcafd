"""Probe requests (what to observe in the kernel) and their replies, and the code that carries them.

A probe is one user expression, evaluated by the kernel after an empty cell: it reaches the
preamble's gate (see grader/observe/preamble.py) without looking up any name in the notebook's
namespace, and its value goes straight into the execute reply, with no variable in between that a
thread could rewrite. The reply must echo a nonce drawn for this probe alone. Text the notebook
printed or files it wrote never count as observations.
"""

from __future__ import annotations

import ast
import json
import secrets
from dataclasses import dataclass
from typing import Any

from grader.observe.preamble import KernelGate


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


def new_nonce() -> str:
    return secrets.token_hex(8)


def render_probe(request: ProbeRequest, gate: KernelGate) -> tuple[str, dict[str, str], str]:
    """The (empty) cell code, the user expression that runs the probe, and the nonce to expect."""
    nonce = new_nonce()
    expression = gate.expression("probe", nonce, json.dumps(request.payload))
    return "", {"result": expression}, nonce


def parse_reply(user_expressions: dict[str, Any], nonce: str) -> dict[str, Any]:
    """Decode the probe's JSON result from the execute reply; ValueError if it is not there or
    does not echo this probe's nonce."""
    entry = user_expressions.get("result")
    if not entry or entry.get("status") != "ok":
        entry = entry or {}
        raise ValueError(f"the probe returned no result ({entry.get('ename', 'missing')}: "
                         f"{str(entry.get('evalue', ''))[:300]})")
    text = ast.literal_eval(entry["data"]["text/plain"])
    if not isinstance(text, str):
        raise ValueError("the probe result is not a string")
    reply = json.loads(text)
    if not isinstance(reply, dict) or reply.get("nonce") != nonce:
        raise ValueError("the probe's reply does not carry this probe's nonce")
    return reply["result"]
