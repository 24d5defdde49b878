"""The transactions archive Flink writes (flink_sql/archive_s3.sql), read back: one JSON object per line.

On AWS it sits under s3://<data bucket>/transactions/dt=YYYY-MM-DD/, locally under <workdir>/archive/
(the local pipeline runs the same sink). Each line holds what Flink read from the topic: card, amount,
event time, the optional tid, and the record's place in the topic (topic, partition, offset), the key
every verdict carries too. Files whose names start with "." or "_" are Flink's in-progress parts and
commit markers, not data. Pure Python, so the local pipeline and the operating commands share it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fraudstream import contract as c
from fraudstream.contract import RecordRef
from fraudstream.checks import CheckError, card_number, finite_number

S3_PREFIX = "transactions/"  # in the stack's data bucket (stacks/batch_jobs.py)
PARTITION_PREFIX = "dt="  # one directory per UTC day


@dataclass(frozen=True)
class ArchivedTransaction:
    cc_num: int
    amount: float
    trans_ts: float
    topic: str
    partition: int
    offset: int
    tid: str | None = None

    @property
    def key(self) -> RecordRef:
        return RecordRef(self.topic, self.partition, self.offset)


def parse_line(line: str) -> ArchivedTransaction:
    """One archived line; ValueError naming the field otherwise."""
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    try:
        cc_num = card_number(record.get(c.CC_NUM))
    except CheckError as error:
        raise ValueError(f"{c.CC_NUM} {error}") from None
    numbers = {}
    for name in (c.AMOUNT, c.TRANS_TS):
        try:
            numbers[name] = finite_number(record.get(name))
        except CheckError as error:
            raise ValueError(f"{name} {error}") from None
    topic, partition, offset = record.get(c.TOPIC), record.get(c.PARTITION), record.get(c.OFFSET)
    if not isinstance(topic, str) or not all(isinstance(v, int) and not isinstance(v, bool) for v in (partition, offset)):
        raise ValueError("no topic, partition and offset (archived before they were kept?)")
    tid = record.get(c.TID)
    return ArchivedTransaction(cc_num, numbers[c.AMOUNT], numbers[c.TRANS_TS], topic, partition, offset,
                               tid if isinstance(tid, str) else None)


def parse_lines(lines: Iterable[str], source: str) -> tuple[list[ArchivedTransaction], list[str]]:
    """The transactions of one file's lines, and a problem line ("source:N: reason") for each unreadable one."""
    rows, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(parse_line(line))
        except ValueError as error:
            problems.append(f"{source}:{number}: {error}")
    return rows, problems


def is_data_file(name: str) -> bool:
    return not name.startswith((".", "_"))


def data_files(directory: Path) -> Iterator[Path]:
    """The committed part files under ``directory``'s day partitions, in name order."""
    if not directory.is_dir():
        return
    for day in sorted(p for p in directory.iterdir() if p.is_dir() and p.name.startswith(PARTITION_PREFIX)):
        yield from sorted(f for f in day.iterdir() if f.is_file() and is_data_file(f.name))


def read_directory(directory: Path) -> tuple[list[ArchivedTransaction], list[str]]:
    """Every committed transaction of a local archive, with the problem lines."""
    rows, problems = [], []
    for path in data_files(directory):
        found, bad = parse_lines(path.read_text(encoding="utf-8").splitlines(), str(path))
        rows.extend(found)
        problems.extend(bad)
    return rows, problems
