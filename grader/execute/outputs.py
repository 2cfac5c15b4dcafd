"""Turn a cell's output messages into notebook outputs, keeping at most a fixed number of bytes.

Output is capped twice: in the kernel (`source_cap_code`, so a cell that prints 100 MB sends only
a little more than what is kept) and here (which holds whatever the kernel sends, even when a
notebook removes the cap in its own process).
"""

from __future__ import annotations

import json
from typing import Any

TRUNCATION_MARK = "\n[grader: output capped here; {dropped:,} more bytes were not kept]\n"
LOST_MARK = ("\n[grader: output capped here; a message over {limit:,} bytes was refused, and output "
             "that followed it may be missing]\n")

# Sent silently into a new kernel before the notebook's cells: each cell's stdout and stderr pass
# on at most `limit` characters; the rest is dropped in the kernel instead of being sent.
_SOURCE_CAP = """
def _grader_cap_output(limit):
    import sys
    from IPython import get_ipython

    class CappedStream:
        def __init__(self, stream):
            self._stream = stream
            self._written = 0

        def write(self, text):
            size = len(text)
            room = limit - self._written
            self._written += size
            if room > 0:
                self._stream.write(text if size <= room else text[:room])
            return size

        def writelines(self, lines):
            for line in lines:
                self.write(line)

        def reset(self, *args):
            self._written = 0

        def __getattr__(self, name):
            return getattr(self._stream, name)

    sys.stdout, sys.stderr = CappedStream(sys.stdout), CappedStream(sys.stderr)
    get_ipython().events.register("pre_execute", sys.stdout.reset)
    get_ipython().events.register("pre_execute", sys.stderr.reset)

_grader_cap_output({limit})
del _grader_cap_output
"""


def source_cap_code(limit_chars: int) -> str:
    """Code that caps each cell's printed output in the kernel at `limit_chars` per stream."""
    return _SOURCE_CAP.format(limit=int(limit_chars))


class OutputCollector:
    """Collects outputs of one execute request; beyond `max_bytes` it only counts what it drops."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.kept_bytes = 0
        self.dropped_bytes = 0
        self.lost_over = 0  # > 0: a message over this many bytes was refused by the socket
        self.outputs: list[dict[str, Any]] = []

    def add(self, msg: dict[str, Any]) -> None:
        msg_type = msg["msg_type"]
        content = msg["content"]
        if msg_type == "stream":
            self._add_stream(content["name"], content["text"])
        elif msg_type in ("display_data", "execute_result"):
            output = {"output_type": msg_type, "data": content.get("data", {}),
                      "metadata": content.get("metadata", {})}
            if msg_type == "execute_result":
                output["execution_count"] = content.get("execution_count")
            self._add_whole(output)
        elif msg_type == "error":
            self._add_whole({"output_type": "error", "ename": content.get("ename", ""),
                             "evalue": content.get("evalue", ""),
                             "traceback": content.get("traceback", [])}, always=True)
        elif msg_type == "clear_output":
            self.outputs = [o for o in self.outputs if o["output_type"] == "error"]
            self.kept_bytes = sum(len(json.dumps(o)) for o in self.outputs)

    def _room(self) -> int:
        return max(0, self.max_bytes - self.kept_bytes)

    def _add_stream(self, name: str, text: str) -> None:
        size = len(text.encode("utf-8", "replace"))
        room = self._room()
        if size > room:
            self.dropped_bytes += size - room
            text = text.encode("utf-8", "replace")[:room].decode("utf-8", "ignore")
            size = room
        self.kept_bytes += size
        if not text:
            return
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.outputs.append({"output_type": "stream", "name": name, "text": text})

    def _add_whole(self, output: dict[str, Any], always: bool = False) -> None:
        size = len(json.dumps(output))
        if not always and size > self._room():
            self.dropped_bytes += size
            return
        self.kept_bytes += size
        self.outputs.append(output)

    def mark_lost(self, limit: int) -> None:
        """Record that a message larger than `limit` bytes was refused before it reached us."""
        self.lost_over = limit
        self.dropped_bytes += limit

    def finished_outputs(self) -> list[dict[str, Any]]:
        """The outputs, with a visible mark where output was capped."""
        if not self.dropped_bytes:
            return self.outputs
        text = (LOST_MARK.format(limit=self.lost_over) if self.lost_over
                else TRUNCATION_MARK.format(dropped=self.dropped_bytes))
        return [*self.outputs, {"output_type": "stream", "name": "stderr", "text": text}]
