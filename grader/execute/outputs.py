"""Turn a cell's output messages into notebook outputs, keeping at most a fixed number of bytes."""

from __future__ import annotations

import json
from typing import Any

TRUNCATION_MARK = "\n[grader: output capped here; {dropped:,} more bytes were not kept]\n"


class OutputCollector:
    """Collects outputs of one execute request; beyond `max_bytes` it only counts what it drops."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.kept_bytes = 0
        self.dropped_bytes = 0
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

    def finished_outputs(self) -> list[dict[str, Any]]:
        """The outputs, with a visible mark where output was capped."""
        if not self.dropped_bytes:
            return self.outputs
        mark = {"output_type": "stream", "name": "stderr",
                "text": TRUNCATION_MARK.format(dropped=self.dropped_bytes)}
        return [*self.outputs, mark]
