"""The students' data: what the students' package (`grader bundle --public`) holds instead of the
grader's data sources. A folder `student/` next to this module holds the files students get in
`data/`, exactly as the grader's source writes them when grading (their train and test parts), and
`manifest.json` naming the source and each file's SHA-256. The arrays the public checks send (D1,
D2, D3's training images) are read back from those files, and D3 and E1 measure accuracy on the
test part: there is no hidden split here, and nothing that could build one.

In the grader's own installation the folder does not exist and `packaged_data()` is None."""

from __future__ import annotations

import hashlib
import io
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from grader.data.arrays import EvaluationPart, StudentArrays
from grader.data.idx import RAW_FILES, images_from_grey, read_idx
from grader.data.student_files import StudentFiles
from grader.errors import GraderError

FOLDER = Path(__file__).resolve().parent / "student"
MANIFEST = "manifest.json"
STUDENT_KEYS = ("x_train", "y_train", "x_test", "y_test")
BROKEN = ("The students' data in {folder} is damaged ({problem}): install the grader's wheel again "
          "(pip install --force-reinstall <the wheel>).")


class PackagedDataError(GraderError):
    """The students' package's data files are missing or do not match their manifest."""


def arrays_file(source: str) -> str:
    """Where a source's files hold the arrays: `<source>.npz` (mnist, digits28), or the raw
    folder of a torchvision set, `<Name>/raw`."""
    kind, _, name = source.partition(":")
    return f"{name}/raw" if kind == "torchvision" else f"{source}.npz"


def read_arrays(files: StudentFiles) -> StudentArrays:
    """The train and test parts, read from the students' files of `files.source`."""
    content = dict(files.files)
    where = arrays_file(files.source)
    if where.endswith(".npz"):
        with np.load(io.BytesIO(content[where]), allow_pickle=False) as archive:
            return StudentArrays(*(archive[key] for key in STUDENT_KEYS))
    parts = []
    for part in ("train", "test"):
        images_name, labels_name = RAW_FILES[part]
        parts += [images_from_grey(read_idx(content[f"{where}/{images_name}"])),
                  read_idx(content[f"{where}/{labels_name}"]).astype(np.int64)]
    return StudentArrays(*parts)


def write_packaged(folder: Path, files: StudentFiles) -> Path:
    """Write the students' files and their manifest into `folder` (the bundler's side)."""
    manifest = {"source": files.source, "arrays": arrays_file(files.source),
                "files": {name: hashlib.sha256(content).hexdigest() for name, content in files.files}}
    files.install(folder)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", "utf-8")
    return folder / MANIFEST


class PackagedData:
    """The students' files of one data source, and the arrays read back from them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
            self.source: str = manifest["source"]
            self.hashes: dict[str, str] = dict(manifest["files"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise PackagedDataError(BROKEN.format(folder=folder, problem=f"{MANIFEST}: {error}")) from None

    @property
    def files(self) -> StudentFiles:
        return _read_files(self.folder, tuple(sorted(self.hashes.items())), self.source)

    def install(self, data_dir: Path) -> None:
        self.files.install(data_dir)

    def arrays(self) -> StudentArrays:
        return _read_arrays(self.folder, tuple(sorted(self.hashes.items())), self.source)

    def evaluation_part(self) -> EvaluationPart:
        """The test part: what D3 and E1 measure in a students' package."""
        arrays = self.arrays()
        return EvaluationPart(arrays.x_test, arrays.y_test, hidden=False)


@lru_cache(maxsize=2)
def _read_files(folder: Path, hashes: tuple[tuple[str, str], ...], source: str) -> StudentFiles:
    files = []
    for name, digest in hashes:
        try:
            content = (folder / name).read_bytes()
        except OSError as error:
            raise PackagedDataError(BROKEN.format(folder=folder, problem=f"{name}: {error.strerror}")) from None
        if hashlib.sha256(content).hexdigest() != digest:
            raise PackagedDataError(BROKEN.format(folder=folder, problem=f"{name} does not match its SHA-256"))
        files.append((name, content))
    return StudentFiles(tuple(files), source=source)


@lru_cache(maxsize=2)
def _read_arrays(folder: Path, hashes: tuple[tuple[str, str], ...], source: str) -> StudentArrays:
    return read_arrays(_read_files(folder, hashes, source))


@lru_cache(maxsize=1)
def packaged_data() -> PackagedData | None:
    """The students' data when this is a students' package, else None (the grader's installation)."""
    if not (FOLDER / MANIFEST).is_file():
        return None
    return PackagedData(FOLDER)
