"""Student-controlled text made safe to show: no terminal colour codes, no control characters."""

from __future__ import annotations

import re

ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
# Characters XML 1.0 forbids (tab, newline and carriage return are allowed).
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def clean_text(text: object) -> str:
    """`text` as plain printable text: colour codes dropped, other control characters removed."""
    return CONTROL_CHARS.sub("", ANSI_ESCAPE.sub("", str(text)))


def points(value: float) -> str:
    """A score as people write it: 3, 2.5, 0.33."""
    return f"{round(value, 2):g}"

