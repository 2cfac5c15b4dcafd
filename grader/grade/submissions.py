"""Find the submissions in a folder (or zip): `.ipynb` files, or per-student folders of one notebook."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from grader.errors import SubmissionsError

NOT_FOUND = "Submissions folder not found: {path}. Pass a folder of .ipynb files, or of per-student folders."
NO_SUBMISSIONS = ("No submissions found in {path}: expected .ipynb files or per-student folders that "
                  "each hold one notebook.")
DUPLICATE_ID = "Two submissions in {path} have the id {id!r} (a notebook and a folder); rename one."
NO_NOTEBOOK = "the folder {folder} holds no .ipynb file"
MANY_NOTEBOOKS = "the folder {folder} holds {count} notebooks ({names}); a submission folder must hold exactly one"


@dataclass(frozen=True)
class Submission:
    """One student's submission; `problem` says why it cannot be run when `notebook` is None."""

    id: str
    notebook: Path | None
    problem: str = ""


def _visible(path: Path) -> bool:
    return not _hidden_name(path.name)


def _hidden_name(name: str) -> bool:
    return name.startswith((".", "_"))


def _notebooks_in(folder: Path) -> list[Path]:
    """Notebooks anywhere under `folder`, skipping hidden folders such as .ipynb_checkpoints."""
    return sorted(p for p in folder.rglob("*.ipynb")
                  if not any(_hidden_name(part) for part in p.relative_to(folder).parts))


def discover_submissions(path: Path) -> list[Submission]:
    """Submissions in `path`, sorted by id. A zip file is extracted next to a temp folder first."""
    if path.is_file() and path.suffix == ".ipynb":
        return [Submission(path.stem, path)]
    if not path.is_dir():
        raise SubmissionsError(NOT_FOUND.format(path=path))
    found: dict[str, Submission] = {}
    for entry in sorted(path.iterdir()):
        if not _visible(entry):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            submission = Submission(entry.stem, entry)
        elif entry.is_dir():
            notebooks = _notebooks_in(entry)
            if len(notebooks) == 1:
                submission = Submission(entry.name, notebooks[0])
            elif not notebooks:
                submission = Submission(entry.name, None, NO_NOTEBOOK.format(folder=entry))
            else:
                names = ", ".join(str(n.relative_to(entry)) for n in notebooks)
                submission = Submission(entry.name, None, MANY_NOTEBOOKS.format(
                    folder=entry, count=len(notebooks), names=names))
        else:
            continue
        if submission.id in found:
            raise SubmissionsError(DUPLICATE_ID.format(path=path, id=submission.id))
        found[submission.id] = submission
    if not found:
        raise SubmissionsError(NO_SUBMISSIONS.format(path=path))
    return [found[key] for key in sorted(found)]


def extract_zip(archive: Path, into: Path) -> Path:
    """Extract a zip of submissions safely (no paths outside `into`); return the folder to grade."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.infolist():
                target = (into / member.filename).resolve()
                if not target.is_relative_to(into.resolve()):
                    raise SubmissionsError(f"{archive}: member {member.filename!r} points outside the archive")
            zipped.extractall(into)
    except zipfile.BadZipFile as error:
        raise SubmissionsError(f"{archive}: not a readable zip file ({error})") from None
    entries = [e for e in into.iterdir() if _visible(e)]
    # A zip of one top folder that holds the submissions (several entries, or folders): unwrap it.
    if len(entries) == 1 and entries[0].is_dir():
        inner = [e for e in entries[0].iterdir() if _visible(e)]
        if len(inner) > 1 or (inner and inner[0].is_dir()):
            return entries[0]
    return into
