"""The local stand-in for a Kafka topic: a directory of JSON-lines segment files.

Producers add whole segments (written under a hidden name, then renamed, so readers never see a
partial one; Flink's file source and sink follow the same convention). Consumers read segments in name order
and number the lines: that number is the record's offset. Standard library only: the Flink
environment imports it too.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

_sequence = itertools.count()


class LocalTopic:
    def __init__(self, directory: str | os.PathLike, name: str) -> None:
        self.directory = Path(directory)
        self.name = name
        self.directory.mkdir(parents=True, exist_ok=True)

    def send(self, messages: Iterable[dict]) -> int:
        """Append ``messages`` as one segment; returns how many were written."""
        lines = [json.dumps(m, separators=(",", ":")) for m in messages]
        if lines:
            self.send_lines(lines)
        return len(lines)

    def send_lines(self, lines: list[str]) -> None:
        stem = f"{time.time_ns():020d}-{os.getpid()}-{next(_sequence):06d}.jsonl"
        hidden = self.directory / f".{stem}"
        hidden.write_text("\n".join(lines) + "\n", encoding="utf-8")
        hidden.rename(self.directory / stem)


class LocalConsumer:
    """Reads a LocalTopic from the beginning; each poll returns the records added since the last."""

    def __init__(self, topic: LocalTopic) -> None:
        self.topic = topic
        self.seen: set[str] = set()
        self.next_offset = 0

    def poll(self) -> list[tuple[int, str]]:
        records = []
        for path in sorted(visible_files(self.topic.directory)):
            if path.name in self.seen:
                continue
            self.seen.add(path.name)
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    records.append((self.next_offset, line))
                    self.next_offset += 1
        return records


def visible_files(directory: Path) -> list[Path]:
    """Complete segments: names starting with '.' or '_' are being written (ours and Flink's)."""
    return [p for p in directory.iterdir() if not p.name.startswith((".", "_")) and p.is_file()]
