"""The students' data files as bytes: made once on the grader's side, written into every sandbox.

A remote worker (grader/execute/dask_executor.py) gets these bytes instead of the rubric's data
source, so it needs neither the grader's file system nor the hidden split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class StudentFiles:
    """Relative path (under the notebook's `data/`) and content of every file a notebook may read."""

    files: tuple[tuple[str, bytes], ...]
    source: str = ""  # the rubric's data source they come from (the kernel preamble serves by it)

    @property
    def size_bytes(self) -> int:
        return sum(len(content) for _, content in self.files)

    def install(self, data_dir: Path) -> None:
        for relative, content in self.files:
            parts = PurePosixPath(relative).parts
            if not parts or parts[0] in ("/", "..") or ".." in parts:
                raise ValueError(f"refusing a data file outside data/: {relative!r}")
            target = data_dir.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
