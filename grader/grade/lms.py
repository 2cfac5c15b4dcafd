"""How learning management systems name the files of an assignment download, and who each file
belongs to. Each layout maps a top-level entry of the download to a student id (and name, where
the LMS gives one) and, where the LMS records it, the order of that student's attempts.

- moodle: "Download all submissions" gives per-student folders `Full Name_12345_assignsubmission_file_/`
  (or, without folders, files `Full Name_12345_assignsubmission_file_nb.ipynb`); 12345 is the
  participant id of the grading worksheet ("Participant 12345"). Online-text entries are skipped.
  Moodle keeps one submission per student, so it gives no order between files.
- canvas: "Download Submissions" gives files `lastnamefirstname_12345_67890_nb.ipynb`, with
  `_late_` before the ids of a late one; 12345 is the Canvas user id (the gradebook's ID column)
  and 67890 the file's attachment id, which Canvas numbers in upload order.
- blackboard: "Download Assignment" gives `Assignment_username_attempt_2024-01-31-23-59-59_nb.ipynb`
  and per attempt a `..._attempt_<time>.txt` whose first line is `Name: First Last (username)`;
  the attempt time orders a student's attempts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LAYOUTS = ("moodle", "canvas", "blackboard")
ID_RULES = ("auto", *LAYOUTS, "filename")

MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.*)$", re.DOTALL)
CANVAS = re.compile(r"^(?P<name>[^_]+)_(?:(?P<late>late)_)?(?P<id>\d+)_(?P<attachment>\d+)_(?P<file>.+)$",
                    re.DOTALL)
BLACKBOARD = re.compile(r"^(?P<prefix>.+)_attempt_(?P<time>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})"
                        r"(?:_(?P<file>.+))?$", re.DOTALL)
BLACKBOARD_NAME = re.compile(r"^Name:\s*(?P<name>.*?)\s*\((?P<user>[^()]+)\)\s*$", re.MULTILINE)
BLACKBOARD_TXT_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class LmsEntry:
    """What an LMS's naming says about one top-level entry of its download.

    skip: the entry is part of the layout but holds no notebook to grade (Moodle's online text,
    Blackboard's .txt receipts). order: sorts a student's attempts, later is larger; None when the
    LMS gives no order."""

    student_id: str = ""
    student_name: str = ""
    order: tuple[str | int, ...] | None = None
    late: bool = False
    skip: bool = False


def _moodle(entry: Path, names: dict[str, tuple[str, str]]) -> LmsEntry | None:
    match = MOODLE.match(entry.name)
    if match is None:
        return None
    if match["plugin"] != "file":
        return LmsEntry(skip=True)
    # With blind marking Moodle writes "Participant" where the name would be.
    return LmsEntry(match["id"], "" if match["name"] == "Participant" else match["name"])


def _canvas(entry: Path, names: dict[str, tuple[str, str]]) -> LmsEntry | None:
    match = CANVAS.match(entry.name)
    if match is None:
        return None
    return LmsEntry(match["id"], match["name"], (int(match["attachment"]),), late=bool(match["late"]))


def _blackboard(entry: Path, names: dict[str, tuple[str, str]]) -> LmsEntry | None:
    match = BLACKBOARD.match(entry.name.removesuffix(".txt") if entry.suffix == ".txt" else entry.name)
    if match is None:
        return None
    if entry.suffix == ".txt" and not match["file"]:
        return LmsEntry(skip=True)
    prefix = match["prefix"]
    name, user = names.get(f"{prefix}_attempt_{match['time']}", ("", ""))
    # The assignment name may hold underscores, and so may a username: the receipt says which.
    if not (user and prefix.endswith("_" + user)):
        user = prefix.rsplit("_", 1)[-1] if "_" in prefix else ""
    if not user:
        return None
    return LmsEntry(user, name, (match["time"],))


PARSERS: dict[str, Callable[[Path, dict[str, tuple[str, str]]], LmsEntry | None]] = {
    "moodle": _moodle, "canvas": _canvas, "blackboard": _blackboard}


def blackboard_receipts(entries: list[Path]) -> dict[str, tuple[str, str]]:
    """(full name, username) from each Blackboard attempt receipt, keyed by `<prefix>_attempt_<time>`."""
    found = {}
    for entry in entries:
        if entry.suffix != ".txt" or not BLACKBOARD.match(entry.stem):
            continue
        text = _read_small_text(entry)
        match = BLACKBOARD_NAME.search(text)
        if match:
            found[entry.stem] = (match["name"], match["user"])
    return found


def _read_small_text(path: Path) -> str:
    """The start of a small text file, never through a link and never blocking on a FIFO."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        return os.read(handle, BLACKBOARD_TXT_MAX_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""
    finally:
        os.close(handle)


def detect_layout(entries: list[Path]) -> str:
    """The LMS whose naming matches most entries, and more than half of them (one student's file
    that happens to look like Canvas's naming does not make a batch a Canvas download);
    "filename" otherwise."""
    counts = {layout: sum(1 for entry in entries if PARSERS[layout](entry, {}) is not None)
              for layout in LAYOUTS}
    best = max(LAYOUTS, key=lambda layout: counts[layout])
    return best if 2 * counts[best] > len(entries) else "filename"


def parse_entry(layout: str, entry: Path, receipts: dict[str, tuple[str, str]]) -> LmsEntry | None:
    """What `layout` says about `entry`; None when the entry is not named the layout's way."""
    return PARSERS[layout](entry, receipts)
