"""Data sources a rubric can name: each puts the students' files into a working directory's data/."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from grader.data import digits28
from grader.rubric.model import DataSpec


class DataSource(Protocol):
    def install(self, data_dir: Path, spec: DataSpec) -> None:
        """Write or link what the notebook may read into `data_dir` (never the hidden labels)."""


class Digits28Source:
    def install(self, data_dir: Path, spec: DataSpec) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / digits28.STUDENT_FILE_NAME).write_bytes(digits28.student_file_bytes())


DATA_SOURCES: dict[str, DataSource] = {"digits28": Digits28Source()}


def install_data(data_dir: Path, spec: DataSpec) -> None:
    DATA_SOURCES[spec.source].install(data_dir, spec)
