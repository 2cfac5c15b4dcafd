"""Kernels started ahead of need: a sandbox, its data and a first kernel with the preamble
installed, made in a background thread while other notebooks run (or while the grader imports).

Each kernel is handed to exactly one submission and destroyed with its sandbox afterwards; it is
never reused. Isolation is what `open_sandbox` and `start_kernel_session` give any kernel: fresh
folders made for it, no student code run in it before it is handed over. The pool starts no more
kernels than it was told submissions will come (`expect`), keeps at most `ahead` ready at a time,
and refills as kernels are taken. A kernel it could not start is the submission's to start (and
to report on) the usual way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from grader.execute.kernel import KernelSession
from grader.execute.sandbox import Sandbox, SandboxSupport
from grader.observe.preamble import KernelGate

log = logging.getLogger(__name__)


@dataclass
class ReadyKernel:
    """A started first kernel in its open sandbox. `close_kernel` ends the kernel (before a replay
    kernel may be made); `close_sandbox` then kills everything in the sandbox and removes it."""

    key: Any
    support: SandboxSupport
    sandbox: Sandbox
    session: KernelSession
    gate: KernelGate
    sandbox_cm: AbstractContextManager
    session_cm: AbstractContextManager
    kernel_open: bool = True

    def close_kernel(self) -> None:
        if self.kernel_open:
            self.kernel_open = False
            self.session_cm.__exit__(None, None, None)

    def close(self) -> None:
        try:
            self.close_kernel()
        finally:
            self.sandbox_cm.__exit__(None, None, None)


StartKernel = Callable[[Any], ReadyKernel]


class KernelPool:
    """Starts kernels for `key` ahead of need, one at a time, in one background thread."""

    def __init__(self, start: StartKernel, on_exit: Callable[[], None] = lambda: None) -> None:
        self._start = start
        self._on_exit = on_exit
        self._lock = threading.Condition()
        self._ready: list[ReadyKernel] = []
        self._key: Any = None
        self._wanted = 0      # kernels still to start for `_key`
        self._ahead = 0
        self._starting = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def expect(self, key: Any, count: int, ahead: int) -> None:
        """`count` submissions will ask for a kernel of `key`; keep up to `ahead` ready."""
        with self._lock:
            if self._closed or count <= 0 or ahead <= 0:
                return
            self._key, self._wanted, self._ahead = key, count, ahead
            if self._thread is None:
                self._thread = threading.Thread(target=self._fill, name="kernel-pool", daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def take(self, key: Any) -> ReadyKernel | None:
        """A ready kernel for `key` (waiting for one being started), or None: start your own."""
        with self._lock:
            while not self._closed and key == self._key:
                if self._ready:
                    kernel = self._ready.pop(0)
                    self._lock.notify_all()  # room for the next one
                    return kernel
                if not self._starting and self._wanted <= 0:
                    return None
                self._lock.wait(0.5)
            return None

    def close(self) -> None:
        """Stop starting kernels and destroy the ones nobody took."""
        with self._lock:
            self._closed = True
            leftover, self._ready = self._ready, []
            self._lock.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._lock:  # one may have been finished while closing
            leftover += self._ready
            self._ready = []
        for kernel in leftover:
            _close_quietly(kernel)

    def _fill(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._closed and (self._wanted <= 0 or len(self._ready) >= self._ahead):
                        self._lock.wait()
                    if self._closed:
                        return
                    key = self._key
                    self._wanted -= 1
                    self._starting = True
                try:
                    started = time.monotonic()
                    kernel = self._start(key)
                    log.debug("kernel started ahead in %.2f s", time.monotonic() - started)
                except KeyboardInterrupt:
                    return
                except Exception as error:  # noqa: BLE001 - the submission starts its own and reports
                    log.info("starting a kernel ahead failed (%s); submissions start their own", error)
                    with self._lock:
                        self._wanted = 0
                    continue
                finally:
                    with self._lock:
                        self._starting = False
                        self._lock.notify_all()
                with self._lock:
                    if self._closed or key != self._key:
                        stale = kernel
                    else:
                        self._ready.append(kernel)
                        stale = None
                    self._lock.notify_all()
                if stale is not None:
                    _close_quietly(stale)
        finally:
            with self._lock:
                self._starting = False
                self._lock.notify_all()
            self._on_exit()


def _close_quietly(kernel: ReadyKernel) -> None:
    try:
        kernel.close()
    except Exception as error:  # noqa: BLE001 - cleanup of an unused kernel is best effort
        log.warning("closing an unused kernel failed: %s", error)
