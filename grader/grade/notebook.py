"""Read a submitted notebook, or say plainly why it cannot be run."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import nbformat

from grader.errors import NotebookUnreadableError

EMPTY = "the file is empty (0 bytes). Save the notebook in Jupyter and submit the .ipynb file again."
NOT_UTF8 = "the file is not UTF-8 text, so it is not a Jupyter notebook (.ipynb) file."
NOT_JSON = ("the file is not valid JSON ({error}); it may have been cut off or edited by hand. "
            "Open it in Jupyter, save it, and submit it again.")
NOT_NOTEBOOK = "the file is JSON but not a Jupyter notebook ({error})."


def read_notebook(raw: bytes) -> dict[str, Any]:
    """Parse notebook bytes into an nbformat v4 notebook; NotebookUnreadableError says why not."""
    if not raw.strip():
        raise NotebookUnreadableError(EMPTY)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotebookUnreadableError(NOT_UTF8) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise NotebookUnreadableError(NOT_JSON.format(error=error)) from None
    if not isinstance(document, dict) or "cells" not in document and "worksheets" not in document:
        raise NotebookUnreadableError(NOT_NOTEBOOK.format(error="it has no 'cells'"))
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as error:  # noqa: BLE001 - nbformat raises many types for malformed input
        raise NotebookUnreadableError(NOT_NOTEBOOK.format(error=error)) from None
    for cell in notebook.cells:
        cell.setdefault("metadata", {})
        if cell.cell_type == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    return notebook


def locate_definitions(notebook: dict[str, Any], names: Iterable[str]) -> dict[str, int]:
    """The index of the last code cell that defines each name (def, class or assignment)."""
    found: dict[str, int] = {}
    for name in names:
        pattern = re.compile(rf"^(?:def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*(?::[^=\n]*)?=(?!=)",
                             re.MULTILINE)
        for index, cell in enumerate(notebook["cells"]):
            if cell["cell_type"] == "code" and pattern.search(cell.get("source", "")):
                found[name] = index
    return found
