"""A local run's work directory: what it holds and where. The pipeline (fraudstream/local/pipeline.py) writes it;
`fraudstream logs --local` and `fraudstream consistency --local` read it, all through this module."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from fraudstream.checks import InputError

RUN_FILE = "run.json"  # the model, feature set, threshold and inputs of the run
LOCK_FILE = ".pipeline.lock"  # held by the one pipeline running on the directory; holds its pid


class PipelineBusy(RuntimeError):
    """Another pipeline runs on this work directory."""


@dataclass(frozen=True)
class RunRecord:
    """What a run recorded for the readers of its work directory (RUN_FILE)."""

    model: Path
    feature_set: str
    threshold: float
    batch_aggregates: tuple[str, ...]  # the copies of the 1-week records loaded, in order (names in the directory)
    archived: bool  # the run kept an archive of every transaction Flink read
    history: Path | None  # the transactions before the run, if it was given them


class WorkDir:
    """The layout of a local run's directory, and its RUN_FILE read and written in one place."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.store = self.root / "online_store.sqlite"  # the embedded feature store both handlers share
        self.logs = self.root / "logs"
        self.verdict_log = self.logs / "verdicts.jsonl"  # the predict function's verdict records
        self.handler_log = self.logs / "handlers.jsonl"  # the rest of both functions' records: summaries, refusals
        self.trigger_log = self.logs / "triggers.log"
        self.failed = self.root / "failed"  # batches a trigger gave up on
        self.archive = self.root / "archive"  # every transaction Flink read, as on S3
        self.kafka = self.root / "kafka"
        self.flink = self.root / "flink"
        self.run_file = self.root / RUN_FILE
        self.lock_file = self.root / LOCK_FILE

    @contextlib.contextmanager
    def held(self):
        """Hold the directory for one pipeline; a second one fails at once (PipelineBusy), naming the directory
        and the holder's pid. The lock is the kernel's (flock): it goes with the process, however it ends."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.lock_file, "a+", encoding="utf-8")  # noqa: SIM115 - held until the block ends
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or "unknown"
                raise PipelineBusy(f"another local pipeline (pid {owner}) is running on {self.root}: wait for it, "
                                   "stop it, or pass another --workdir") from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            handle.close()

    def loaded_batch(self, n: int) -> Path:
        """Where the run keeps a copy of the ``n``-th set of 1-week records it loaded."""
        return self.root / f"batch_aggregates-{n}.parquet"

    def clear_run(self) -> None:
        """What a previous run left goes (its topics, store, checkpoints, failed batches, logs, archive); the
        broker's ports stay, so its clients find it again."""
        for path in (self.kafka / "data", self.flink, self.failed, self.logs, self.archive):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.store, self.run_file, *self.root.glob("batch_aggregates-*.parquet")):
            path.unlink(missing_ok=True)
        self.logs.mkdir(parents=True)

    def write_run(self, run: RunRecord) -> None:
        record = {"model": str(run.model), "feature_set": run.feature_set, "threshold": run.threshold,
                  "batch_aggregates": list(run.batch_aggregates), "archived": run.archived,
                  "history": str(run.history) if run.history else None}
        self.run_file.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    def read_run(self) -> RunRecord:
        """What the run recorded; InputError when this is not a local run's directory."""
        if not self.run_file.is_file():
            raise InputError(f"{self.root}: no {RUN_FILE}; not the work directory of a local run (run "
                             "`fraudstream replay` or `make demo`)")
        try:
            record = json.loads(self.run_file.read_text(encoding="utf-8"))
            return RunRecord(model=Path(record["model"]), feature_set=record["feature_set"],
                             threshold=float(record["threshold"]),
                             batch_aggregates=tuple(record.get("batch_aggregates") or ()),
                             archived=bool(record.get("archived")),
                             history=Path(record["history"]) if record.get("history") else None)
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(f"{self.run_file}: not a run record ({type(error).__name__}: {error}); run the "
                             "replay again") from None
