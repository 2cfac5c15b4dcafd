"""Data sources a rubric can name, and what the rest of the grader asks of them: the students'
files for a working directory's `data/`, the students' train and test parts (D1, D2, D3's training
images), and the part D3 and E1 measure accuracy on.

In the grader's installation the sources are grader/data/grading_sources.py: they build the hidden
split, whose labels never leave the grader's process, and accuracy is measured on it. In the
students' package (`grader bundle --public`) that module and the split are absent: every source
is served from the students' files the package holds (grader/data/packaged.py), and D3 and E1
measure accuracy on the test part."""

from __future__ import annotations

import tempfile
import threading
from functools import lru_cache
from pathlib import Path

from grader.data.arrays import EvaluationPart, StudentArrays
from grader.data.packaged import PackagedData, packaged_data
from grader.data.student_files import StudentFiles
from grader.errors import GraderError, RubricError
from grader.rubric.model import DataSpec

# CIFAR10 is not offered: torchvision checks the MD5 of every CIFAR batch file, so its test batch
# cannot be handed over without the hidden images (and labels) that the grader keeps.
TORCHVISION_SETS = ("FashionMNIST", "MNIST")
SOURCE_NAMES = ("mnist", "digits28", *(f"torchvision:{name}" for name in TORCHVISION_SETS))
OTHER_SOURCE = ("data.source: this students' package holds the data of `{packaged}` only, not of `{source}`: "
                "check with the rubric it was built from (its default rubric).")
NO_DATA = ("This grader holds neither the grader's data sources nor the students' data files "
           "(grader/data/student/): install the wheel again.")
NO_HIDDEN_SPLIT = ("The students' package has no hidden split (grader/data/packaged.py); grading with hidden "
                   "data needs the grader's installation.")


def _packaged(spec: DataSpec) -> PackagedData | None:
    """The students' data when this is a students' package (for `spec`'s source), else None."""
    packaged = packaged_data()
    if packaged is not None and packaged.source != spec.source:
        raise RubricError(OTHER_SOURCE.format(packaged=packaged.source, source=spec.source))
    return packaged


def serves_without_root(source: str) -> bool:
    """True in a students' package holding `source`'s files: a torchvision source needs no data.root there."""
    packaged = packaged_data()
    return packaged is not None and packaged.source == source


def _grading_source(spec: DataSpec):
    try:
        from grader.data.grading_sources import grading_source  # not in the students' package
    except ModuleNotFoundError as error:  # a students' package that lost its data folder
        if error.name != "grader.data.grading_sources":
            raise
        raise GraderError(NO_DATA) from None
    return grading_source(spec.source)


# The sources read and split their data once per process (cached); a kernel started ahead
# (grader/execute/pool.py) may ask while the batch's own thread does: one at a time, read once.
_READING = threading.RLock()


def install_data(data_dir: Path, spec: DataSpec | StudentFiles) -> None:
    """Write the students' files into `data_dir`: from the rubric's source, or from the bytes a
    batch made once (a remote worker gets those; it has no data source of its own)."""
    if isinstance(spec, StudentFiles):
        spec.install(data_dir)
        return
    packaged = _packaged(spec)
    if packaged is not None:
        packaged.install(data_dir)
        return
    with _READING:
        _grading_source(spec).install(data_dir, spec)


def student_arrays(spec: DataSpec) -> StudentArrays:
    """The students' train and test parts (what D1 and D2 send, what D3 trains on)."""
    packaged = _packaged(spec)
    return packaged.arrays() if packaged is not None else data_arrays(spec)


def evaluation_part(spec: DataSpec) -> EvaluationPart:
    """What D3 and E1 measure accuracy on: the hidden split when grading; the test part in a
    students' package, which has no hidden split."""
    packaged = _packaged(spec)
    return packaged.evaluation_part() if packaged is not None else data_arrays(spec).evaluation_part()


def prepare_data(spec: DataSpec) -> None:
    """Check the rubric's data and load it once (cached) before any notebook runs."""
    student_arrays(spec)
    evaluation_part(spec)


def data_arrays(spec: DataSpec):
    """All parts, the hidden split included: the grader's installation only."""
    if _packaged(spec) is not None:
        raise GraderError(NO_HIDDEN_SPLIT)
    with _READING:
        return _grading_source(spec).arrays(spec)


@lru_cache(maxsize=4)
def student_files(spec: DataSpec) -> StudentFiles:
    """What `install_data` writes for this data source, as bytes (made once per batch)."""
    packaged = _packaged(spec)
    if packaged is not None:
        return packaged.files
    with tempfile.TemporaryDirectory(prefix="grader-data-") as tmp:
        root = Path(tmp)
        install_data(root, spec)
        found = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        return StudentFiles(tuple((p.relative_to(root).as_posix(), p.read_bytes()) for p in found),
                            source=spec.source)
