"""What the CLI shows on a terminal while a batch runs: a progress bar with done / total, the
notebooks being graded and an ETA. The library never imports this module (nor rich)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

PROGRESS_LINE = "{done}/{total} done"
CURRENT = "now: {ids}"
FINISHED_LINE = "{id}: {score:g} / {max_score:g} ({status}, {seconds:.1f} s)"


class BatchProgress:
    """A rich progress display on stderr, fed by grade_batch's on_found/on_start/on_done hooks.

    While it runs, the grader's warnings are printed above the bar instead of through it."""

    def __init__(self, console: Any | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.fields[counts]}"), BarColumn(),
            TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"),
            TextColumn("{task.fields[current]}", markup=False),
            console=self.console, transient=False)
        self.task: Any = None
        self.total = 0
        self.done_count = 0
        self.started_at = time.monotonic()
        self.current: list[str] = []
        self.lock = threading.Lock()
        self.handler: logging.Handler | None = None
        self.saved_handlers: list[logging.Handler] = []

    def __enter__(self) -> BatchProgress:
        from rich.logging import RichHandler

        root = logging.getLogger()
        self.saved_handlers = list(root.handlers)  # they would write through the bar
        self.handler = RichHandler(console=self.console, show_time=False, show_path=False, level=logging.WARNING)
        root.handlers = [self.handler]
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.progress.stop()
        logging.getLogger().handlers = self.saved_handlers

    def found(self, submissions: Sequence[Any]) -> None:
        with self.lock:
            self.total = len(submissions)
            self.started_at = time.monotonic()
            self.task = self.progress.add_task("grading", total=self.total, counts=self._counts(), current="",
                                               eta=self._eta())

    def started(self, submission: Any) -> None:
        with self.lock:
            self.current.append(submission.id)
            self._refresh()

    def finished(self, report: Any) -> None:
        with self.lock:
            if report.submission in self.current:
                self.current.remove(report.submission)
            self.done_count += 1
            seconds = report.seconds
            self.progress.console.print(FINISHED_LINE.format(id=report.submission, score=report.score,
                                                             max_score=report.max_score, status=report.status,
                                                             seconds=seconds), markup=False, highlight=False)
            self._refresh(advance=1)

    def _eta(self) -> str:
        """Time left at the pace so far (notebooks run in parallel, so the pace already counts that)."""
        if not self.done_count:
            return "-:--"
        left = (time.monotonic() - self.started_at) / self.done_count * (self.total - self.done_count)
        minutes, seconds = divmod(int(round(left)), 60)
        return f"{minutes}:{seconds:02d}"

    def _counts(self) -> str:
        return PROGRESS_LINE.format(done=self.done_count, total=self.total)

    def _refresh(self, advance: int = 0) -> None:
        if self.task is None:
            return
        current = CURRENT.format(ids=", ".join(self.current)) if self.current else ""
        self.progress.update(self.task, advance=advance, counts=self._counts(), current=current, eta=self._eta())
