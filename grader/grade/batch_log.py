"""The batch's log file in the output folder, without changing what the caller's own logging shows.

Every message is one line of printable text: a student's file name with CR, LF or an escape
sequence in it is written escaped (grader.names.printable), so it cannot forge a log line or
redraw the terminal that shows the log."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from grader.names import printable

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"


def escaped(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of `record` whose message is printable text on one line."""
    safe = copy.copy(record)
    safe.msg, safe.args = printable(record.getMessage()), None
    return safe


class _EscapingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return super().format(escaped(record))


class _ToCallerHandlers(logging.Handler):
    """Passes records on to the root logger's handlers, as propagation would have (escaped)."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(escaped(record))


@contextmanager
def batch_log(path: Path, level: int = logging.INFO) -> Iterator[Path]:
    """Record the `grader` loggers' messages at `level` and above in `path` while the block runs.

    The file needs INFO even when the caller's logging is set to WARNING; the caller's handlers
    keep getting only what they got before (records at the `grader` logger's former level)."""
    logger = logging.getLogger("grader")
    before = (logger.level, logger.propagate, logger.getEffectiveLevel())
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path, mode="a", encoding="utf-8")
    to_file.setFormatter(_EscapingFormatter(LOG_FORMAT))
    to_file.setLevel(level)
    to_caller = _ToCallerHandlers(before[2])
    logger.addHandler(to_file)
    logger.addHandler(to_caller)
    logger.propagate = False
    logger.setLevel(min(level, before[2]))
    try:
        yield path
    finally:
        logger.removeHandler(to_file)
        logger.removeHandler(to_caller)
        to_file.close()
        logger.setLevel(before[0])
        logger.propagate = before[1]
