"""The Flink job on one machine, from the application zip the managed service runs.

build/flink-app.zip (`make flink-package`) is unpacked into the work directory and its main.py runs with
`--local` in .venv-flink (Apache Flink 1.20 pins old numpy and pyarrow), its jar on `pipeline.jars`, reading
runtime properties this module writes: the same Kafka tables as on MSK, with the plaintext security block
and the local broker's address, and the same transactions archive into a local directory (files rolled
each second instead of every 15 minutes). It runs under a watchdog (local/processes.py), so it never outlives us.

A supervisor thread keeps it alive: a job that exits, or that stops committing offsets while the topic has
records it has not read (hung), is stopped and started again, resuming from its latest checkpoint (window
state and Kafka offsets), up to `max_restarts` times, a start that fails counting as one; after that `check()`
raises, with the job's last words.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from fraudstream import contract as c
from fraudstream.local.processes import Supervised
from fraudstream import flink_properties
from fraudstream.packaging.flink_app import RUN_OPTIONS, RUN_OPTIONS_GROUP, tick_keys
from fraudstream.paths import BUILD, FLINK_PYTHON

APPLICATION_ZIP = BUILD / "flink-app.zip"
CHECK_SECONDS = 1.0  # how often the supervisor looks at the job
HUNG_SECONDS = 30.0  # no offset committed this long while records wait: the job is hung
MAX_RESTARTS = 3
JVM_LOG_PATTERN = "flink-*-python-*.log"  # what PyFlink names Flink's own log (pyflink_gateway_server.py)
ARCHIVE_ROLLOVER_SECONDS = "1"  # a transaction is in a committed archive file about 2 s after Flink read it


def jvm_environment(tmp: Path, log_dir: Path) -> dict[str, str]:
    """This process's environment, with the JVM PyFlink starts writing its temporary files under ``tmp`` and its own
    log (Flink's, Kafka's clients', the checkpoints') into ``log_dir``: the table planner unpacks a 41 MB jar into
    java.io.tmpdir and leaves it there, and PyFlink's default log directory is inside .venv-flink, one file that every
    job on the machine overwrites."""
    tmp.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    jvm_args = f"{os.environ.get('JVM_ARGS', '')} -Djava.io.tmpdir={tmp.resolve()}".strip()
    return {**os.environ, "JVM_ARGS": jvm_args, "FLINK_LOG_DIR": str(log_dir.resolve())}


class FlinkJob:
    def __init__(self, directory: Path, log_path: Path, bootstrap_servers: str,
                 log: Callable[[str], None] = lambda _m: None, application_zip: Path = APPLICATION_ZIP,
                 max_restarts: int = MAX_RESTARTS, hung_seconds: float = HUNG_SECONDS,
                 archive_dir: Path | None = None, event_time: flink_properties.EventTime = flink_properties.EventTime()
                 ) -> None:
        self.event_time = event_time
        self.archive_dir = archive_dir  # where the job archives every transaction, as on S3 (None: no archive)
        self.directory, self.log_path, self.bootstrap_servers = directory, log_path, bootstrap_servers
        self.log, self.application_zip, self.max_restarts, self.hung_seconds = log, application_zip, max_restarts, hung_seconds
        self.consumer_group = flink_properties.DEFAULTS[flink_properties.CONSUMER_GROUP]
        self.process: Supervised | None = None
        self.restarts = 0
        self.launches = 0  # JVMs started so far (the first, then one per restart)
        self.failure: str | None = None
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float) -> None:
        """Unpack the application, start the job, wait until it is submitted, then keep it alive."""
        if not FLINK_PYTHON.exists():
            raise RuntimeError(f"{FLINK_PYTHON} is missing: run `make install` to build the Flink environment")
        self._unpack()
        properties = self._write_properties()
        self.process = Supervised("flink", [str(FLINK_PYTHON), str(self.app_dir / "main.py"), "--local",
                                            "--properties", str(properties)], self.log_path,
                                  env=jvm_environment(self.directory / "tmp", self.log_path.parent),
                                  cwd=self.app_dir)
        self._launch(timeout)
        self._supervisor = threading.Thread(target=self._supervise, args=(timeout,), name="flink-supervisor", daemon=True)
        self._supervisor.start()

    def check(self) -> None:
        """Raise if the job is down for good (it exited or hung more often than it may be restarted)."""
        if self.failure:
            raise RuntimeError(self.failure)

    def stop(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=30)
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        """Kill the job's processes now, as a crash would (the supervisor restarts it)."""
        if self.process is not None and self.process.process is not None:
            os.killpg(self.process.process.pid, signal.SIGKILL)

    def pause(self) -> None:
        """Stop the job's JVM without ending it (SIGSTOP), as a hang would: for tests of the hang detection."""
        pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _is_java_of(int(p.name), self.process)]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)

    # --- internals ------------------------------------------------------------------------------

    @property
    def app_dir(self) -> Path:
        return self.directory / "app"

    def _unpack(self) -> None:
        if not self.application_zip.is_file():
            raise RuntimeError(f"{self.application_zip} is missing: run `make flink-package` (it builds the Flink "
                               "application with Maven)")
        if self.app_dir.exists():
            shutil.rmtree(self.app_dir)
        with zipfile.ZipFile(self.application_zip) as archive:
            archive.extractall(self.app_dir)

    def _write_properties(self) -> Path:
        """The runtime properties of this machine, in the managed service's format."""
        f = flink_properties
        group = f.runtime_properties(self.bootstrap_servers, c.TRANSACTIONS_TOPIC, c.TRANSACTION_FEATURES_TOPIC,
                                     c.INVALID_TRANSACTIONS_TOPIC, ticks_keys=tick_keys(c.TOPIC_PARTITIONS),
                                     kafka_security="plaintext", auto_offset_reset="earliest",
                                     event_time=self.event_time,
                                     checkpoints_dir=str(self.directory / "checkpoints"), tmp_dir=str(self.directory / "tmp"),
                                     **({"archive_path": self.archive_dir.resolve().as_uri(),
                                         "archive_rollover_seconds": ARCHIVE_ROLLOVER_SECONDS} if self.archive_dir else {}))
        path = self.directory / "application_properties.json"
        path.write_text(json.dumps([{"PropertyGroupId": RUN_OPTIONS_GROUP, "PropertyMap": RUN_OPTIONS},
                                    {"PropertyGroupId": f.PROPERTY_GROUP, "PropertyMap": group}], indent=2),
                        encoding="utf-8")
        return path

    def _launch(self, timeout: float) -> None:
        start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._keep_jvm_log()
        self.launches += 1
        self.process.start()
        self.log(f"starting Flink (local mini-cluster, from {self.application_zip.name}); "
                 f"log: {self.log_path}")
        deadline = time.monotonic() + timeout
        while True:
            if flink_properties.READY_MARKER in self._output_since(start):
                return
            if not self.process.running:
                raise RuntimeError(f"Flink exited with code {self.process.returncode}{self._last_words(start)}; "
                                   f"see {self.log_path} and {self.jvm_log}")
            if time.monotonic() > deadline:
                self.process.stop()
                raise RuntimeError(f"Flink did not start within {timeout:.0f} s{self._last_words(start)}; "
                                   f"see {self.log_path} and {self.jvm_log}")
            time.sleep(0.2)

    @property
    def jvm_log(self) -> Path:
        """Flink's own log of the latest launch (jvm_environment puts it beside ours; PyFlink names it
        flink-<user>-python-<host>.log)."""
        found = list(self.log_path.parent.glob(JVM_LOG_PATTERN))
        return max(found, key=lambda path: path.stat().st_mtime) if found else self.log_path.parent / JVM_LOG_PATTERN

    def _keep_jvm_log(self) -> None:
        """Keep the previous launch's JVM log as <name>.<launch> (PyFlink's log4j configuration overwrites it): the
        stack trace of a crash or of a failed start is in the launch's own."""
        for path in self.log_path.parent.glob(JVM_LOG_PATTERN):
            path.rename(path.with_name(f"{path.name}.{self.launches}"))

    def _output_since(self, start: int) -> str:
        """What the job wrote to our log since byte ``start`` (this launch's output)."""
        with open(self.log_path, "rb") as log:
            log.seek(start)
            return log.read().decode(errors="replace")

    def _last_words(self, start: int) -> str:
        """The last line the job wrote since ``start`` (its error, when it failed), to put in an error message."""
        lines = [line.strip() for line in self._output_since(start).splitlines() if line.strip()]
        return f" ({lines[-1][:500]})" if lines else ""

    def _supervise(self, timeout: float) -> None:
        progress = _Progress(self.bootstrap_servers, self.consumer_group)
        try:
            launch_error = None  # why the last restart failed, if it did: the next round tries again
            while not self._stop.wait(CHECK_SECONDS):
                if not self.process.running:
                    reason = launch_error or f"the Flink job exited with code {self.process.returncode}"
                elif progress.stalled_for() > self.hung_seconds:
                    reason = f"the Flink job committed no offset for {self.hung_seconds:.0f} s with records waiting (hung)"
                else:
                    continue
                if self.restarts >= self.max_restarts:
                    self.failure = (f"{launch_error} ({self.restarts} restarts already)" if launch_error else
                                    f"{reason}, {self.restarts} restarts already; see {self.log_path}")
                    return
                self.restarts += 1
                self.log(f"{reason}: restarting it from its latest checkpoint ({self.restarts} of {self.max_restarts})")
                self.process.kill()
                try:
                    self._launch(timeout)
                except RuntimeError as error:  # it exited or did not start: stopped; the next round sees it down
                    launch_error = str(error)
                    continue
                launch_error = None
                progress.reset()
        finally:
            progress.close()


def _is_java_of(pid: int, process: Supervised | None) -> bool:
    """Is ``pid`` a JVM in the job's process group?"""
    if process is None or process.process is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(stat[2]) == process.process.pid and b"java" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False


class _Progress:
    """How long the job's consumer group has not advanced while its topic holds records it has not read."""

    def __init__(self, bootstrap_servers: str, group: str) -> None:
        self.bootstrap_servers, self.group = bootstrap_servers, group
        self.admin: KafkaAdminClient | None = None
        self.consumer: KafkaConsumer | None = None
        self.last: dict | None = None
        self.since = time.monotonic()

    def reset(self) -> None:
        self.last, self.since = None, time.monotonic()

    def stalled_for(self) -> float:
        try:
            if self.admin is None:
                self.admin = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers, client_id="flink-supervisor")
                self.consumer = KafkaConsumer(bootstrap_servers=self.bootstrap_servers, client_id="flink-supervisor")
            committed = {tp.partition: meta.offset for tp, meta in self.admin.list_consumer_group_offsets(self.group).items()
                         if tp.topic == c.TRANSACTIONS_TOPIC}
            partitions = [TopicPartition(c.TRANSACTIONS_TOPIC, p) for p in
                          self.consumer.partitions_for_topic(c.TRANSACTIONS_TOPIC) or ()]
            ends = {tp.partition: offset for tp, offset in self.consumer.end_offsets(partitions).items()}
        except Exception:  # noqa: BLE001 - a probe that fails must not end the supervision
            # The broker is away (KafkaError), or kafka-python tripped over its own half-answered request while it
            # was (an AttributeError in end_offsets seen when the broker restarted): not the job's fault. New
            # clients next time.
            self.close()
            self.admin = self.consumer = None
            return 0.0
        waiting = any(ends[p] > committed.get(p, 0) for p in ends)
        if not waiting or committed != self.last:
            self.last, self.since = committed, time.monotonic()
            return 0.0
        return time.monotonic() - self.since

    def close(self) -> None:
        for client in (self.admin, self.consumer):
            if client is not None:
                with contextlib.suppress(Exception):  # closing must not fail the supervision either
                    client.close()
