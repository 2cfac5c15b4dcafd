"""Open a page in headless Chromium as a person would, over the DevTools protocol on a pipe
(--remote-debugging-pipe: no port, no extra package): collect script errors and any network
request, measure elements, take a full-page screenshot."""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SCREENSHOTS_TAKEN: list[Path] = []  # listed at the end of the test run by conftest.py
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-pipe")
WAIT_S = 60.0  # generous: another engineer's tests may load the same two cores
MEASURE = """(() => {
  const out = {};
  for (const selector of %s) {
    const el = document.querySelector(selector);
    if (!el) { out[selector] = null; continue; }
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    out[selector] = {width: box.width, height: box.height,
                     visible: style.visibility !== 'hidden' && style.display !== 'none'
                              && box.width > 0 && box.height > 0,
                     text: (el.innerText === undefined ? el.textContent : el.innerText).trim().slice(0, 2000)};
  }
  return JSON.stringify(out);
})()"""


def find_chromium() -> str | None:
    override = os.environ.get("CHROMIUM")
    if override:
        return override
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


@dataclass
class PageVisit:
    """What a visit saw: script errors (uncaught exceptions, console.error, error log entries) and
    every request the page made for something other than the file itself."""

    url: str
    script_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class Chromium:
    """One headless Chromium process, driven over the DevTools pipe (fd 3 in, fd 4 out)."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.TemporaryDirectory(prefix="grader-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        high_r = _dup_high(to_child_r)
        high_w = _dup_high(from_child_w)

        def wire_pipes() -> None:  # runs in the child before exec: the pipe must be fds 3 and 4
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=wire_pipes)
        for fd in (to_child_r, from_child_w, high_r, high_w):
            os.close(fd)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.session = ""

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_child, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                buffer += chunk
                while b"\0" in buffer:
                    raw, buffer = buffer.split(b"\0", 1)
                    message = json.loads(raw)
                    if "id" in message:
                        with self._cond:
                            self._replies[message["id"]] = message
                            self._cond.notify_all()
                    else:
                        self._events.put(message)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session if session is not None else self.session:
            message["sessionId"] = session if session is not None else self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + WAIT_S
        with self._cond:
            while self._next_id not in self._replies:
                if not self._cond.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"no reply to {method} within {WAIT_S} s")
            reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def open(self, path: Path, width: int = 1280, height: int = 900) -> PageVisit:
        """Load a file in a fresh tab and wait for its load event, recording errors and requests."""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session="")["targetId"]
        attached = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session="")
        self.session = attached["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        visit = PageVisit(path.resolve().as_uri())
        self.send("Page.navigate", {"url": visit.url})
        self._drain(visit, until="Page.loadEventFired")
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        self._drain(visit, until=None)
        return visit

    def _drain(self, visit: PageVisit, until: str | None) -> None:
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                event = self._events.get(timeout=0.2 if until is None else max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                if until is None:
                    return
                raise TimeoutError(f"{until} did not come within {WAIT_S} s") from None
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                visit.script_errors.append(details.get("exception", {}).get("description", details.get("text", "")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                visit.script_errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                visit.script_errors.append(params["entry"].get("text", ""))
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if url != visit.url and not url.startswith("data:"):
                    visit.requests.append(url)
            if until is not None and method == until:
                return

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluating failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def measure(self, *selectors: str) -> dict[str, dict[str, Any] | None]:
        """Size, visibility and text of the first element matching each selector (None: absent)."""
        return json.loads(self.evaluate(MEASURE % json.dumps(list(selectors))))

    def screenshot(self, name: str) -> Path:
        """A full-page PNG under tests/artifacts/."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        data = self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})["data"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        path.write_bytes(base64.b64decode(data))
        SCREENSHOTS_TAKEN.append(path)
        return path

    def close(self) -> None:
        try:
            self.send("Browser.close", session="")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_child)
        self.profile.cleanup()


def _dup_high(fd: int) -> int:
    """A copy of `fd` numbered 10 or above, so wiring it to 3 or 4 in the child clobbers nothing."""
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
