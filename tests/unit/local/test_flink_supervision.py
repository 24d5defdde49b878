"""The local Flink job's supervisor keeps supervising whatever its progress probe runs into, and a restart that
fails is one more restart, not the end."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

from fraudstream import flink_properties
from fraudstream.local import flink
from tests.support.wait import wait_for


class _Client:
    """kafka-python's clients as they behaved while the broker restarted: a request that trips over itself."""

    closed = 0

    def __init__(self, **kwargs):
        pass

    def list_consumer_group_offsets(self, group):
        raise AttributeError("'NoneType' object has no attribute 'invalid_metadata'")

    def close(self):
        _Client.closed += 1
        raise OSError("socket already gone")


def test_a_probe_that_fails_in_any_way_counts_as_no_stall_and_starts_over_with_new_clients(monkeypatch):
    monkeypatch.setattr(flink, "KafkaAdminClient", _Client)
    monkeypatch.setattr(flink, "KafkaConsumer", _Client)
    progress = flink._Progress("127.0.0.1:1", "group")
    # When the probe fails (twice) / Then it reports no stall, closes what it had, and does not raise
    assert progress.stalled_for() == 0.0
    assert progress.admin is None and progress.consumer is None and _Client.closed == 2
    assert progress.stalled_for() == 0.0


# A stand-in for the application zip: a job that reports ready and runs, except on the launches listed in
# FAIL_ON, where it fails as a job that cannot restore its checkpoint does (flink_sql/main.py wait_until_running).
STAND_IN = '''
import os, pathlib, sys, time
count = pathlib.Path.cwd().parent / "launches"
launch = int(count.read_text()) + 1 if count.exists() else 1
count.write_text(str(launch))
pathlib.Path(os.environ["FLINK_LOG_DIR"], "flink-me-python-host.log").write_text(f"JVM of launch {{launch}}")
if launch in {fail_on}:
    print("RuntimeError: the job restarted 3 times while starting; the last failure: java.io.FileNotFoundException: "
          "chk-6/f9", flush=True)
    sys.exit(1)
print({ready!r}, flush=True)
time.sleep(600)
'''


class _NoStall:
    def __init__(self, *args):
        pass

    def stalled_for(self) -> float:
        return 0.0

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def _job(tmp_path, monkeypatch, fail_on: set[int]) -> flink.FlinkJob:
    application = tmp_path / "app.zip"
    with zipfile.ZipFile(application, "w") as archive:
        archive.writestr("main.py", STAND_IN.format(fail_on=fail_on, ready=flink_properties.READY_MARKER))
    monkeypatch.setattr(flink, "FLINK_PYTHON", Path(sys.executable))
    monkeypatch.setattr(flink, "_Progress", _NoStall)
    return flink.FlinkJob(tmp_path / "flink", tmp_path / "logs" / "flink.log", "127.0.0.1:1", application_zip=application,
                          max_restarts=2)


def _launches(job: flink.FlinkJob) -> int:
    count = job.directory / "launches"
    return int(count.read_text()) if count.exists() else 0


def test_a_restart_that_fails_is_tried_again_while_restarts_remain(tmp_path, monkeypatch):
    # Given a running job whose first restart fails (its second succeeds)
    job = _job(tmp_path, monkeypatch, fail_on={2})
    job.start(timeout=60)
    try:
        # When it crashes
        job.kill()
        # Then the failed start counts as one restart and the next one runs it
        wait_for(lambda: _launches(job) == 3 and job.process.running and job.restarts == 2, timeout=60)
        job.check()
    finally:
        job.stop()
    # and each launch's JVM log is kept: the failed start's stack trace is not overwritten by the next launch's
    logs = tmp_path / "logs"
    assert [(logs / name).read_text() for name in ("flink-me-python-host.log.1", "flink-me-python-host.log.2",
                                                   "flink-me-python-host.log")] == \
        ["JVM of launch 1", "JVM of launch 2", "JVM of launch 3"]
    assert job.jvm_log == logs / "flink-me-python-host.log"


def test_when_restarts_run_out_the_error_carries_the_jobs_last_words(tmp_path, monkeypatch):
    job = _job(tmp_path, monkeypatch, fail_on={2, 3})
    job.start(timeout=60)
    try:
        job.kill()
        error = wait_for(lambda: job.failure, timeout=60)
    finally:
        job.stop()
    assert _launches(job) == 3 and job.restarts == 2
    assert "Flink exited with code 1 (RuntimeError: the job restarted 3 times while starting; the last failure: " \
           "java.io.FileNotFoundException: chk-6/f9)" in error and "2 restarts already" in error
    assert error.endswith(f"see {tmp_path / 'logs' / 'flink.log'} and {tmp_path / 'logs' / 'flink-me-python-host.log'} "
                          "(2 restarts already)")
    with pytest.raises(RuntimeError, match="FileNotFoundException"):
        job.check()
