"""A local run's work directory: its run record written and read back, and clear errors for what is not one."""

from __future__ import annotations

import re

import pytest

from fraudstream.checks import InputError
from fraudstream.local.workdir import RUN_FILE, RunRecord, WorkDir


def test_the_run_record_reads_back_as_written(tmp_path):
    files = WorkDir(tmp_path)
    run = RunRecord(model=tmp_path / "model.tar.gz", feature_set="v2", threshold=0.4,
                    batch_aggregates=("batch_aggregates-1.parquet",), archived=True, history=None)
    files.write_run(run)
    assert WorkDir(tmp_path).read_run() == run
    assert files.loaded_batch(1).name == run.batch_aggregates[0]


def test_clearing_a_run_keeps_the_brokers_ports_and_removes_the_rest(tmp_path):
    files = WorkDir(tmp_path)
    files.logs.mkdir()
    files.verdict_log.write_text("old\n")
    (files.kafka / "data").mkdir(parents=True)
    (files.kafka / "ports.json").write_text("{}")
    files.store.write_text("")
    files.loaded_batch(2).write_text("")
    files.clear_run()
    assert (files.kafka / "ports.json").is_file() and files.logs.is_dir()
    assert not any(p.exists() for p in (files.verdict_log, files.kafka / "data", files.store, files.loaded_batch(2)))


@pytest.mark.parametrize("content, message", [
    (None, "no run.json; not the work directory of a local run"),
    ("{not json", "not a run record (JSONDecodeError"),
    ('{"feature_set": "v2"}', "not a run record (KeyError: 'model')"),
])
def test_what_is_not_a_run_record_is_one_clear_error(tmp_path, content, message):
    if content is not None:
        (tmp_path / RUN_FILE).write_text(content)
    with pytest.raises(InputError, match=re.escape(message)):
        WorkDir(tmp_path).read_run()
