"""Find the submissions in a folder (or zip) and read their notebooks safely.

A folder holds `.ipynb` files or per-student folders of one notebook (the id is the file or folder
name), or is an LMS download (Moodle, Canvas, Blackboard; see grader.grade.lms) whose names give
the student's id. Nothing is taken on trust: links are never followed (a linked notebook gets a
report saying so), a notebook is read through a descriptor opened with O_NOFOLLOW and its size is
checked before it is read, and the names of output files are chosen by the grader
(grader.names.output_names), never taken from a file name."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from grader.errors import NotebookUnreadableError, SubmissionsError
from grader.grade.lms import ID_RULES, LmsEntry, blackboard_receipts, detect_layout, parse_entry
from grader.names import output_names, printable

NOT_FOUND = "Submissions folder not found: {path}. Pass a folder of .ipynb files, or of per-student folders."
NO_SUBMISSIONS = ("No submissions found in {path}: expected .ipynb files or per-student folders that "
                  "each hold one notebook.")
DUPLICATE_ID = "Two submissions in {path} have the id {id!r} (a notebook and a folder); rename one."
UNKNOWN_ID_RULE = "Unknown --ids rule {rule!r}; use one of: {rules}."
NO_NOTEBOOK = "the folder {folder} holds no .ipynb file"
MANY_NOTEBOOKS = "the folder {folder} holds {count} notebooks ({names}); a submission folder must hold exactly one"
LINKED = ("{what} is a symbolic link; the grader never follows links (they can point at another "
          "student's work or outside the submissions). Submit the notebook file itself.")
NOT_REGULAR = "{what} is not a regular file (a device, socket or pipe); submit the notebook file itself."
TOO_BIG = ("the notebook is {size:.1f} MB, above the limit of {limit:g} MB (execution.max_notebook_mb in "
           "the rubric). Clear large outputs (Kernel > Restart & Clear Output), save, and submit again.")
CANNOT_READ = "the file cannot be read ({error})"
UNORDERED_VERSIONS = ("{count} notebooks from this student and {lms} gives no order between them ({names}); "
                      "keep the one to grade and run the batch again")
UNMAPPED = "not named the way {lms} names its files, so no student could be found for it; its id is its file name"
LATE = "{lms} marked this submission late"
OLDER_VERSIONS = "graded the latest of {count} versions ({lms} order); not graded: {names}"
ZIP_TOO_BIG = ("{archive}: its notebooks would unpack to {size:.1f} GB, more than the {free:.1f} GB free in the "
               "temp folder; unpack it yourself, or set TMPDIR to a larger disk")
# Only what grading reads is unpacked: notebooks, and Blackboard's attempt receipts.
ZIP_KEPT_SUFFIXES = (".ipynb", ".txt")

# A zip member that is a link becomes a link to this name (never followed, never a real file), so
# discovery finds it and gives that student a report saying so.
ZIP_LINK_PLACEHOLDER = ".grader-refused-zip-link"


@dataclass(frozen=True)
class Submission:
    """One student's submission; `problem` says why it cannot be run when `notebook` is None.

    id: the output name, chosen by the grader (safe as a file name; the report's `submission`).
    student_id / student_name: who it is, as the file name or the LMS says (raw: escape to show).
    source: the file or folder it came from, relative to the batch. other_versions: files of the
    same student that were not graded (older attempts). notes: what an instructor should know."""

    id: str
    notebook: Path | None
    problem: str = ""
    student_id: str = ""
    student_name: str = ""
    source: str = ""
    id_rule: str = "filename"
    other_versions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Found:
    """A notebook (or a reason there is none) before versions are merged and names chosen."""

    student_id: str
    notebook: Path | None
    problem: str
    source: str
    entry: LmsEntry
    notes: tuple[str, ...] = ()
    older: tuple[str, ...] = ()


def _hidden_name(name: str) -> bool:
    return name.startswith((".", "_"))


def _kind(path: Path) -> str:
    """file, dir, link or other, from lstat: a link is never looked through."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "other"
    if stat.S_ISLNK(mode):
        return "link"
    return "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else "other"


def _walk(folder: Path) -> Iterator[Path]:
    """Every entry under `folder`, not descending into links or hidden folders (.ipynb_checkpoints)."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not _hidden_name(d))
        for name in sorted(files + [d for d in dirs if _kind(Path(root, d)) == "link"]):
            if not _hidden_name(name):
                yield Path(root, name)


def _notebook_in(entry: Path, root: Path) -> tuple[Path | None, str]:
    """The one notebook of a file or folder entry, or why there is none."""
    shown = printable(entry.relative_to(root))
    kind = _kind(entry)
    if kind == "link":
        return None, LINKED.format(what=shown)
    if kind == "file":
        return entry, ""
    if kind != "dir":
        return None, NOT_REGULAR.format(what=shown)
    notebooks = [p for p in _walk(entry) if p.suffix == ".ipynb"]
    for notebook in notebooks:
        if _kind(notebook) == "link":
            return None, LINKED.format(what=printable(notebook.relative_to(root)))
    if not notebooks:
        return None, NO_NOTEBOOK.format(folder=shown)
    if len(notebooks) > 1:
        names = ", ".join(printable(n.relative_to(entry)) for n in notebooks)
        return None, MANY_NOTEBOOKS.format(folder=shown, count=len(notebooks), names=names)
    return notebooks[0], ""


def _is_candidate(entry: Path) -> bool:
    """A top-level entry that may be a submission: a notebook file or a folder, or a link that
    looks like one (it gets a report saying links are refused; only its type is looked up)."""
    kind = _kind(entry)
    if kind == "link":
        return entry.suffix in (".ipynb", "") or entry.is_dir()
    return entry.suffix == ".ipynb" or kind == "dir"


def discover_submissions(path: Path, ids: str = "auto") -> list[Submission]:
    """Submissions in `path`, sorted by output name; `ids` says how file names map to students:
    auto (recognise an LMS download, else file names), moodle, canvas, blackboard or filename."""
    if ids not in ID_RULES:
        raise SubmissionsError(UNKNOWN_ID_RULE.format(rule=ids, rules=", ".join(ID_RULES)))
    if path.suffix == ".ipynb" and _kind(path) in ("file", "link"):
        return [single_submission(path)]
    if _kind(path) == "link" and path.is_dir():
        path = path.resolve()  # the folder the instructor named; links inside it are not followed
    if _kind(path) != "dir":
        raise SubmissionsError(NOT_FOUND.format(path=path))
    entries = [e for e in sorted(path.iterdir()) if not _hidden_name(e.name)]
    layout = detect_layout(entries) if ids == "auto" else ids
    found = _by_filename(path, entries) if layout == "filename" else _by_lms(path, entries, layout)
    if not found:
        raise SubmissionsError(NO_SUBMISSIONS.format(path=path))
    return _name(found, layout)


def single_submission(path: Path) -> Submission:
    """One notebook file given by itself (a batch of one, or `grader check`); its id is its stem."""
    if not os.path.lexists(path):
        found = _Found(path.stem, None, f"the file {printable(path)} does not exist", path.name, LmsEntry())
    else:
        notebook, problem = _notebook_in(path, path.parent)
        found = _Found(path.stem, notebook, problem, path.name, LmsEntry())
    return _name([found], "filename")[0]


def _by_filename(root: Path, entries: list[Path]) -> list[_Found]:
    found: dict[str, _Found] = {}
    for entry in filter(_is_candidate, entries):
        student_id = entry.stem if entry.suffix == ".ipynb" else entry.name
        if student_id in found:
            raise SubmissionsError(DUPLICATE_ID.format(path=root, id=printable(student_id)))
        notebook, problem = _notebook_in(entry, root)
        found[student_id] = _Found(student_id, notebook, problem, entry.name, LmsEntry())
    return list(found.values())


def _by_lms(root: Path, entries: list[Path], layout: str) -> list[_Found]:
    receipts = blackboard_receipts(entries) if layout == "blackboard" else {}
    found = []
    for entry in entries:
        parsed = parse_entry(layout, entry, receipts)
        if parsed is not None and parsed.skip:
            continue
        if not _is_candidate(entry):
            continue
        notebook, problem = _notebook_in(entry, root)
        if parsed is None:  # graded all the same, under its file name, and flagged
            student_id = entry.stem if entry.suffix == ".ipynb" else entry.name
            found.append(_Found(student_id, notebook, problem, entry.name, LmsEntry(),
                                (UNMAPPED.format(lms=layout.capitalize()),)))
            continue
        notes = (LATE.format(lms=layout.capitalize()),) if parsed.late else ()
        found.append(_Found(parsed.student_id, notebook, problem, entry.name, parsed, notes))
    return _latest_versions(found, layout)


def _latest_versions(found: list[_Found], layout: str) -> list[_Found]:
    """One entry per student: the latest by the LMS's order; a student whose versions the LMS does
    not order gets no notebook and a problem naming them (the instructor picks)."""
    by_student: dict[tuple[bool, str], list[_Found]] = {}
    for item in found:
        mapped = bool(item.entry.student_id)
        by_student.setdefault((mapped, item.student_id if mapped else item.source), []).append(item)
    merged = []
    lms = layout.capitalize()
    for versions in by_student.values():
        if len(versions) == 1:
            merged.append(versions[0])
            continue
        names = [printable(v.source) for v in versions]
        if any(v.entry.order is None for v in versions):
            first = versions[0]
            problem = UNORDERED_VERSIONS.format(count=len(versions), lms=lms, names=", ".join(names))
            merged.append(replace(first, notebook=None, problem=problem, source=", ".join(v.source for v in versions)))
            continue
        ordered = sorted(versions, key=lambda v: v.entry.order or ())
        latest, older = ordered[-1], ordered[:-1]
        note = OLDER_VERSIONS.format(count=len(versions), lms=lms, names=", ".join(printable(v.source) for v in older))
        merged.append(replace(latest, notes=(*latest.notes, note), older=tuple(v.source for v in older)))
    return merged


def _name(found: list[_Found], layout: str) -> list[Submission]:
    names = output_names((item.source, item.student_id) for item in found)
    submissions = [Submission(id=names[item.source], notebook=item.notebook, problem=item.problem,
                              student_id=item.student_id, student_name=item.entry.student_name,
                              source=item.source, id_rule=layout if item.entry.student_id else "filename",
                              other_versions=item.older, notes=item.notes)
                   for item in found]
    return sorted(submissions, key=lambda s: s.id)


def read_notebook_bytes(path: Path, max_mb: float) -> bytes:
    """The bytes of a submitted notebook, read through one descriptor: opened without following a
    link (O_NOFOLLOW), not blocking on a pipe, and its size checked (fstat) before reading it.
    NotebookUnreadableError says why not."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if _kind(path) == "link":
            raise NotebookUnreadableError(LINKED.format(what=printable(path.name))) from None
        raise NotebookUnreadableError(CANNOT_READ.format(error=error.strerror)) from None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise NotebookUnreadableError(NOT_REGULAR.format(what=printable(path.name)))
        if info.st_size > max_mb * 1024 * 1024:
            raise NotebookUnreadableError(TOO_BIG.format(size=info.st_size / 1024 / 1024, limit=max_mb))
        with os.fdopen(handle, "rb", closefd=False) as stream:
            raw = stream.read(int(max_mb * 1024 * 1024) + 1)  # the file may grow after fstat
    except OSError as error:
        raise NotebookUnreadableError(CANNOT_READ.format(error=error.strerror)) from None
    finally:
        os.close(handle)
    if len(raw) > max_mb * 1024 * 1024:
        raise NotebookUnreadableError(TOO_BIG.format(size=len(raw) / 1024 / 1024, limit=max_mb))
    return raw


def _is_link_member(member: zipfile.ZipInfo) -> bool:
    return member.create_system == 3 and stat.S_ISLNK(member.external_attr >> 16)


def extract_zip(archive: Path, into: Path, max_notebook_mb: float = 25) -> Path:
    """Extract a zip of submissions safely; return the folder to grade.

    Refused (the whole zip): members with absolute paths or `..` that leave `into`, and a zip
    whose notebooks would not fit in the free space of `into`. Not extracted: members that are
    links (a placeholder link that points nowhere stands in, so that student gets a report saying
    the link was refused), files that are neither notebooks nor Blackboard's .txt receipts (their
    folders are kept), and notebooks over `max_notebook_mb` (an empty sparse file of the declared
    size stands in, so that student gets the size report). zipfile never writes more than a
    member's declared size."""
    root = into.resolve()
    max_bytes = int(max_notebook_mb * 1024 * 1024)
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            for member in members:
                target = (into / member.filename).resolve()
                if not target.is_relative_to(root) or Path(member.filename).is_absolute():
                    raise SubmissionsError(
                        f"{archive}: member {printable(member.filename)!r} points outside the archive")
            kept = [m for m in members if _kept(m) and m.file_size <= max_bytes]
            unpacked, free = sum(m.file_size for m in kept), shutil.disk_usage(into).free
            if unpacked > free:
                raise SubmissionsError(ZIP_TOO_BIG.format(archive=archive, size=unpacked / 2**30, free=free / 2**30))
            links = [m for m in members if _is_link_member(m)]
            for member in members:
                if not _is_link_member(member):
                    _extract_member(zipped, member, into, max_bytes)
    except zipfile.BadZipFile as error:
        raise SubmissionsError(f"{archive}: not a readable zip file ({error})") from None
    for member in links:  # after every real file: nothing is ever written through one of these
        _place_refused_link(into, member.filename.rstrip("/"))
    entries = [e for e in into.iterdir() if not _hidden_name(e.name)]
    # A zip of one top folder that holds the submissions (several entries, or folders): unwrap it.
    if len(entries) == 1 and _kind(entries[0]) == "dir":
        inner = [e for e in entries[0].iterdir() if not _hidden_name(e.name)]
        if len(inner) > 1 or (inner and _kind(inner[0]) == "dir"):
            return entries[0]
    return into


def _kept(member: zipfile.ZipInfo) -> bool:
    return not member.is_dir() and not _is_link_member(member) and Path(member.filename).suffix in ZIP_KEPT_SUFFIXES


def _extract_member(zipped: zipfile.ZipFile, member: zipfile.ZipInfo, into: Path, max_bytes: int) -> None:
    target = into / member.filename
    if member.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)  # a folder of only a PDF still gets its report
    if not _kept(member):
        return
    if member.file_size > max_bytes:
        with target.open("wb") as stream:
            stream.truncate(member.file_size)
        return
    zipped.extract(member, into)


def _place_refused_link(into: Path, member: str) -> None:
    target = into / member
    parent = target.parent
    # Only inside real folders, and only where nothing is yet: never through another link.
    for folder in [parent, *parent.parents]:
        if folder == into or not folder.is_relative_to(into):
            break
        if _kind(folder) not in ("dir", "other"):
            return
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if _kind(parent) == "dir" and not os.path.lexists(target):
            os.symlink(ZIP_LINK_PLACEHOLDER, target)
    except OSError:
        pass
