"""Running the Flink application zip in tests: fresh topics and properties, a bounded run, an unbounded job
(tests/flink and its fixtures use them)."""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType

from fraudstream.local.flink import jvm_environment
from fraudstream.local.processes import Supervised
from fraudstream import flink_properties as flink
from fraudstream.packaging.flink_app import RUN_OPTIONS, RUN_OPTIONS_GROUP, tick_keys
from fraudstream.paths import FLINK_MAIN, FLINK_PYTHON
from tests.support.kafka import new_topic_name


@functools.cache
def flink_main() -> ModuleType:
    """flink_sql/main.py as a module, for the tests of what it renders (it imports PyFlink only to run a job)."""
    spec = importlib.util.spec_from_file_location("fraudstream_flink_main", FLINK_MAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Topics:
    """Fresh topics on the session's broker (transactions, features, invalid), so tests never see each other's
    records; the job ticks on every partition of the transactions topic."""

    def __init__(self, broker, partitions: int | None = None) -> None:
        self.broker, self.partitions = broker, partitions or broker.partitions
        self.transactions, self.features, self.invalid = new_topic_name("tx"), new_topic_name("feat"), new_topic_name("inv")
        broker.create_topics([self.transactions, self.features, self.invalid], partitions=self.partitions)

    def properties(self, tmp_path: Path, **extra: str) -> Path:
        group = flink.runtime_properties(self.broker.bootstrap, self.transactions, self.features, self.invalid,
                                         ticks_keys=tick_keys(self.partitions),
                                         consumer_group=new_topic_name("flink"), kafka_security="plaintext",
                                         auto_offset_reset="earliest", tmp_dir=str(tmp_path / "flink-tmp"),
                                         **extra)
        return properties_file(tmp_path / f"properties-{self.transactions}.json", group)


def properties_file(path: Path, group: dict[str, str]) -> Path:
    """A runtime-properties file as the managed service writes it: the run options and our property group."""
    path.write_text(json.dumps([{"PropertyGroupId": RUN_OPTIONS_GROUP, "PropertyMap": RUN_OPTIONS},
                                {"PropertyGroupId": flink.PROPERTY_GROUP, "PropertyMap": group}]))
    return path


def job_environment(directory: Path) -> dict[str, str]:
    """The environment of a test's Flink run: its JVM's temporary files and log under ``directory``."""
    return jvm_environment(directory / "flink-tmp", directory / "flink-logs")


def command(app: Path, properties: Path) -> list[str]:
    return [str(FLINK_PYTHON), str(app / "main.py"), "--local", "--properties", str(properties)]


def run_bounded(app: Path, properties: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the job over what the topic holds now (bounded) and wait for it to finish."""
    result = subprocess.run(command(app, properties), capture_output=True, text=True, timeout=timeout, check=False,
                            env=job_environment(properties.parent), cwd=app)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def explain(app: Path, properties: Path, timeout: float = 300) -> str:
    """The execution plan the job would run with ``properties`` (main.py --explain: nothing is submitted)."""
    result = subprocess.run(command(app, properties) + ["--explain"], capture_output=True, text=True, timeout=timeout,
                            check=False, cwd=app, env=job_environment(properties.parent))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def start_unbounded(app: Path, properties: Path, log: Path) -> Supervised:
    job = Supervised("flink-test", command(app, properties), log, env=job_environment(properties.parent), cwd=app)
    job.start()
    return job
