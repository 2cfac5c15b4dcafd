"""Names that come from students' files, made safe: an output name the grader chooses for every
submission's files, and the student's own id escaped for terminals, logs and spreadsheets.

A file name is student-controlled text. It never becomes a path in the output folder as it is
(`alice.html.ipynb` would write over alice's page, `grades.csv.ipynb` over the gradebook), and it
is never shown raw (escape sequences redraw a terminal, CR/LF forge log lines, `=HYPERLINK(...)`
is a formula to a spreadsheet)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

# Output names hold no dot: every file the grader writes for a submission is `<name>.json`,
# `<name>.html` or inside the folder `<name>/`, and every batch file (grades.csv, _summary.html)
# has a dot or a leading underscore, so no two of them can be the same path.
UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_-]+")
MAX_NAME_CHARS = 60
HASH_CHARS = 8
EMPTY_NAME = "submission"
# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|")


def printable(text: object) -> str:
    """`text` with every control or invisible formatting character (ESC, CR, LF, DEL, C1, bidi
    overrides, zero-width spaces) written as a visible escape such as `\\x1b` or `\\u202e`."""
    out = []
    for char in str(text):
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def csv_cell(text: str) -> str:
    """A text cell for a CSV file that spreadsheets will show as text, never run as a formula."""
    safe = printable(text)
    return "'" + safe if safe.startswith(FORMULA_START) else safe


def slug(raw_id: str) -> str:
    """The safe part of an id: ASCII letters, digits, `_` and `-`; never starting with `_` or `-`."""
    ascii_text = unicodedata.normalize("NFKD", raw_id).encode("ascii", "ignore").decode("ascii")
    return UNSAFE_RUN.sub("_", ascii_text).strip("_-")[:MAX_NAME_CHARS].rstrip("_-")


def short_hash(text: str, chars: int = HASH_CHARS) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:chars]


def output_names(raw_ids: Iterable[tuple[str, str]]) -> dict[str, str]:
    """An output name for each (key, raw id): the id itself when it is already safe, else its
    slug plus a short hash of the raw id. Names are unique even on case-insensitive file systems
    (`Alice` and `alice` both get a hash). `key` must be unique (e.g. the submission's source
    path); the result maps key -> name, the same for the same batch on every run."""
    pairs = list(raw_ids)
    names = {key: _first_choice(raw) for key, raw in pairs}
    for chars, salted in ((HASH_CHARS, False), (HASH_CHARS, True), (64, True)):
        clashing = _clashes(names)
        if not clashing:
            break
        for key, raw in pairs:
            if key in clashing:
                names[key] = _hashed(raw, key if salted else "", chars)
    if _clashes(names):  # only with a sha256 collision
        raise ValueError("could not choose unique output names")
    return names


def _first_choice(raw_id: str) -> str:
    safe = slug(raw_id)
    return safe if safe and safe == raw_id else _hashed(raw_id, "", HASH_CHARS)


def _hashed(raw_id: str, salt: str, chars: int) -> str:
    return f"{slug(raw_id) or EMPTY_NAME}-{short_hash(raw_id + chr(0) + salt if salt else raw_id, chars)}"


def _clashes(names: dict[str, str]) -> set[str]:
    seen: dict[str, list[str]] = {}
    for key, name in names.items():
        seen.setdefault(name.casefold(), []).append(key)
    return {key for keys in seen.values() if len(keys) > 1 for key in keys}
