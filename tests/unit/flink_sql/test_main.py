"""flink_sql/main.py without Flink: runtime properties in, complete SQL out (no hand-edited strings)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re

import pytest

from kafka.partitioner.default import murmur2

from fraudstream import contract as c
from fraudstream import flink_properties
from fraudstream.packaging.flink_app import tick_keys
from fraudstream.paths import REPO


@pytest.fixture(scope="module")
def main():
    spec = importlib.util.spec_from_file_location("flink_main", REPO / "flink_sql" / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def properties(main):
    return main.load_properties(REPO / "flink_sql" / "application_properties.json")


BASE = {"bootstrap.servers": "b-1.example:9098,b-2.example:9098", "transactions.topic": "tx", "features.topic": "feat",
        "invalid.topic": "inv"}


def test_the_shipped_properties_name_the_contracts_topics_and_a_tick_key_per_partition(properties):
    assert properties["transactions.topic"] == c.TRANSACTIONS_TOPIC
    assert properties["features.topic"] == c.TRANSACTION_FEATURES_TOPIC
    assert properties["invalid.topic"] == c.INVALID_TRANSACTIONS_TOPIC
    assert properties["ticks.keys"].split(",") == tick_keys(c.TOPIC_PARTITIONS)


def partition_of(key: str, partitions: int) -> int:
    """Where Kafka's default partitioner (the Java client's, which Flink's sink with 'sink.partitioner' = 'default'
    leaves keyed records to) sends a record keyed ``key``: murmur2 of the key's bytes, made positive, modulo."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def test_tick_keys_reach_every_partition_as_kafkas_default_partitioner_maps_them():
    for partitions in (1, 2, 3, 6, 12, 50):
        keys = tick_keys(partitions)
        assert [partition_of(key, partitions) for key in keys] == list(range(partitions))
        assert len(set(keys)) == partitions and all(re.fullmatch(r"[A-Za-z0-9_-]+", key) for key in keys)
    with pytest.raises(ValueError, match="partitions=0"):
        tick_keys(0)


def test_runtime_properties_carry_the_three_topics_and_one_tick_key_per_partition(main):
    # Given the settings the stack passes (stacks/streaming.py), six partitions
    props = flink_properties.runtime_properties("b-1.example:9098", c.TRANSACTIONS_TOPIC, c.TRANSACTION_FEATURES_TOPIC,
                                    c.INVALID_TRANSACTIONS_TOPIC, ticks_keys=tick_keys(6))
    # Then the group names the topics, no aggregates topic, no time mode, and a key per partition
    assert props == {"bootstrap.servers": "b-1.example:9098", "transactions.topic": c.TRANSACTIONS_TOPIC,
                     "features.topic": c.TRANSACTION_FEATURES_TOPIC, "invalid.topic": c.INVALID_TRANSACTIONS_TOPIC,
                     "consumer.group": "fraudstream-features", "max.out.of.orderness.seconds": "0",
                     "tick.delay.ms": "200", "ticks.keys": ",".join(tick_keys(6))}
    keys = props["ticks.keys"].split(",")
    assert sorted(partition_of(key, 6) for key in keys) == list(range(6))  # each partition once
    # And the job's tick INSERT writes each of those keys, through Kafka's default partitioner
    [sink, slices], insert = main.ticks(props)
    assert "ARRAY[" + ", ".join(f"'{key}'" for key in keys) + "]" in insert
    assert "'sink.partitioner' = 'default'" in sink and "'key.format' = 'raw'" in sink  # the key's bytes, hashed
    assert f"'topic' = '{c.TRANSACTIONS_TOPIC}'" in sink  # ticks travel with the transactions they follow
    # Without keys there are no ticks; the other settings go by their property names
    bare = flink_properties.runtime_properties("b:9092", "tx", "feat", "inv", kafka_security="plaintext", archive_path="file:///a")
    assert "ticks.keys" not in bare and (bare["kafka.security"], bare["archive.path"]) == ("plaintext", "file:///a")


@pytest.mark.parametrize("removed", ["time_mode", "idle_timeout_seconds", "aggregates_topic"])
def test_the_removed_settings_are_refused_by_name(main, removed):
    with pytest.raises(TypeError, match=removed):
        flink_properties.runtime_properties("b:9098", "tx", "feat", "inv", **{removed: "event"})


def test_time_modes_and_the_aggregates_topic_are_gone(main):
    for name in ("TIME_MODE", "TIME_MODES", "time_attribute", "IDLE_TIMEOUT", "AGGREGATES_TOPIC", "aggregate_query"):
        assert not hasattr(main, name), name
    assert set(main.REQUIRED) == {"bootstrap.servers", "transactions.topic", "features.topic", "invalid.topic"}
    assert not {"time.mode", "idle.timeout.seconds", "aggregates.topic"} & set(flink_properties.DEFAULTS)
    # Event time always: the source has its watermark with no property asking for it
    assert "WATERMARK FOR row_time" in main.kafka_tables(BASE)[0]


def test_kafka_tables_use_iam_over_tls_by_default_with_the_injected_servers_and_topics(main):
    source, unparsed, features, invalid, view = main.kafka_tables(BASE)
    assert view.startswith("CREATE TEMPORARY VIEW parsed_transactions") and c.invalid_reason_sql() in view
    for ddl in (source, unparsed, features, invalid):
        assert "'properties.bootstrap.servers' = 'b-1.example:9098,b-2.example:9098'" in ddl
        assert "'properties.security.protocol' = 'SASL_SSL'" in ddl
        assert "'properties.sasl.mechanism' = 'AWS_MSK_IAM'" in ddl
        assert "IAMClientCallbackHandler" in ddl and "IAMLoginModule required;" in ddl
        assert "'properties.reconnect.backoff.ms' = '1000'" in ddl  # kafka.t3.small's connection quota
        assert "{" not in ddl and "}" not in ddl
    assert "'topic' = 'tx'" in source and "'json.ignore-parse-errors' = 'true'" in source
    assert "'topic' = 'tx'" in unparsed and "'format' = 'raw'" in unparsed  # what the JSON source skips
    assert "'properties.group.id' = 'fraudstream-features-unparsed'" in unparsed
    assert "'topic' = 'feat'" in features and "'key.fields' = 'cc_num'" in features
    assert "'topic' = 'inv'" in invalid
    assert "PROCTIME()" in source and "WATERMARK FOR row_time AS row_time - INTERVAL '0 00:00:00.001'" in source
    assert "'properties.auto.offset.reset' = 'latest'" in source and "scan.bounded.mode" not in source


def test_the_features_sink_carries_every_field_of_the_contracts_message(main):
    features = main.kafka_tables(BASE)[2]
    columns = [line.split()[0].strip("`") for line in features.split("(", 1)[1].split(") WITH")[0].strip().splitlines()]
    assert tuple(columns) == c.FEATURE_MESSAGE_FIELDS


def test_every_query_is_complete_sql(main):
    props = {**BASE, "ticks.keys": "tick-0,tick-1"}
    tables, insert = main.ticks(props)
    for text in main.feature_queries() + tables + [insert]:
        assert text.startswith(("INSERT INTO", "CREATE TABLE", "CREATE TEMPORARY VIEW")) and "{" not in text and "}" not in text
    assert "ARRAY['tick-0', 'tick-1']" in insert
    assert main.ticks(BASE) == ([], None)  # no keys: no ticks
    assert main.ticks({**props, "bounded": "true"}) == ([], None)  # a bounded run ends with a final watermark


def every_statement(main, properties: dict[str, str]) -> list[str]:
    """What run() submits for ``properties``, in its order: DDL, then the INSERTs."""
    tick_tables, tick_insert = main.ticks(properties)
    archive = main.archive_tables(properties)
    inserts = main.feature_queries() + ([tick_insert] if tick_insert else [])
    return (main.kafka_tables(properties) + tick_tables + archive + inserts
            + ([f"INSERT INTO transactions_archive {main.archive_query()}"] if archive else []))


@pytest.mark.parametrize("extra", [
    {},
    {"ticks.keys": ",".join(tick_keys(6)), "archive.path": "s3a://bucket/transactions"},
    {"ticks.keys": "tick-0", "kafka.security": "plaintext", "bounded": "true", "archive.path": "file:///tmp/a",
     "archive.rollover.seconds": "1", "max.out.of.orderness.seconds": "3600", "auto.offset.reset": "earliest"},
], ids=["minimal", "msk-with-ticks-and-archive", "local-bounded"])
def test_the_rendered_sql_has_no_leftover_braces(main, extra):
    # Given every statement the job would run with these properties
    texts = every_statement(main, {**BASE, **extra})
    ticks = "ticks.keys" in extra and extra.get("bounded") != "true"  # a bounded run has no ticks
    assert len(texts) == 5 + 3 + (3 if ticks else 0) + (4 if "archive.path" in extra else 0)
    rule = c.invalid_reason_sql()  # the contract's own regular expressions hold braces ('^[0-9]{1,19}$')
    for text in texts:
        # Then each is one whole statement, every placeholder filled, no comment left
        assert text.startswith(("CREATE TABLE", "CREATE TEMPORARY VIEW", "INSERT INTO")), text[:80]
        rest = text.replace(rule, "")
        assert "{" not in rest and "}" not in rest, re.findall(r"\{[^}]*\}?", rest)
        assert not text.rstrip().endswith(";") and not re.search(r"^\s*--", text, re.MULTILINE)
    # and the views carry the contract's rule whole
    views = [text for text in texts if text.startswith("CREATE TEMPORARY VIEW")
             and not text.startswith("CREATE TEMPORARY VIEW tick_slices")]  # over the parsed view, not the source
    assert views and all(rule in view for view in views)


def test_a_tick_is_written_the_configured_delay_after_the_transactions_it_passes(main):
    # The default: each 100 ms slice of transactions read is ticked by the HOP windows that start at most a slice
    # before its end (each slice its own group), 200 ms after it
    [_, slices], insert = main.ticks({**BASE, "ticks.keys": "tick-0"})
    assert "TUMBLE(TABLE parsed_transactions, DESCRIPTOR(proc), INTERVAL '0.1' SECOND)" in slices
    assert "HOP(TABLE tick_slices, DESCRIPTOR(read_at), INTERVAL '0.1' SECOND,\n                   INTERVAL '0.3' SECOND)" in insert
    assert "GROUP BY window_start, window_end, slice_end" in insert
    assert "HAVING MAX(slice_end) <= window_start + INTERVAL '0.1' SECOND" in insert
    # Another delay, and the ones that cannot be a number of slices
    [_, _], insert = main.ticks({**BASE, "ticks.keys": "tick-0", "tick.delay.ms": "1000"})
    assert "INTERVAL '1.1' SECOND)" in insert
    for bad in ("150", "-100", "abc", "60100"):
        with pytest.raises(ValueError, match=f"tick.delay.ms='{bad}': expected a multiple of 100 ms up to 60000"):
            main.ticks({**BASE, "ticks.keys": "tick-0", "tick.delay.ms": bad})


def test_with_an_out_of_orderness_a_tick_waits_that_long_and_carries_the_newest_time_past_it(main):
    # The watermark trails a row by the tolerance: a tick stamped that much later moves it past the newest
    # transaction, written no sooner than the tolerance after it, so a straggler within it lands first.
    [_, _], insert = main.ticks({**BASE, "ticks.keys": "tick-0", "max.out.of.orderness.seconds": "2.45"})
    assert "MAX(newest_ms) + 1 + 2450 AS tick_ms" in insert
    assert "INTERVAL '2.6' SECOND)" in insert  # 2.5 s (whole slices) after the slice it passes
    [_, _], insert = main.ticks({**BASE, "ticks.keys": "tick-0", "max.out.of.orderness.seconds": "0.1",
                                 "tick.delay.ms": "1000"})
    assert "MAX(newest_ms) + 1 + 100 AS tick_ms" in insert and "INTERVAL '1.1' SECOND)" in insert  # the longer
    [_, _], insert = main.ticks({**BASE, "ticks.keys": "tick-0"})
    assert "MAX(newest_ms) + 1 + 0 AS tick_ms" in insert
    for bad in ("61", "0.0005", "-1"):  # a tick and the watermark move in whole ms: half of one would split them
        with pytest.raises(ValueError, match=f"max.out.of.orderness.seconds={bad}: expected 0 to 60 seconds in whole milliseconds"):
            main.ticks({**BASE, "ticks.keys": "tick-0", "max.out.of.orderness.seconds": bad})


def test_tick_keys_must_be_plain_words(main):
    with pytest.raises(ValueError, match="ticks.keys"):
        main.ticks({**BASE, "ticks.keys": "a',b"})


def test_the_local_broker_gets_the_same_tables_with_only_the_security_block_changed(main):
    msk = main.kafka_tables(BASE)
    local = main.kafka_tables({**BASE, "kafka.security": "plaintext"})
    drop_security = lambda ddl: "\n".join(line for line in ddl.splitlines() if "security" not in line  # noqa: E731
                                          and "sasl" not in line and "reconnect" not in line)
    assert [drop_security(d) for d in msk] == [drop_security(d) for d in local]
    assert all("'properties.security.protocol' = 'PLAINTEXT'" in ddl and "sasl" not in ddl for ddl in local[:4])


@pytest.mark.parametrize("key, value", [("kafka.security", "scram"), ("auto.offset.reset", "middle")])
def test_an_unknown_security_mode_or_offset_reset_is_refused(main, key, value):
    with pytest.raises(ValueError, match=key):
        main.kafka_tables({**BASE, key: value})


def test_locally_the_job_takes_the_jar_beside_it_and_resumes_from_its_latest_checkpoint(main, tmp_path):
    assert "execution.savepoint.path" not in main.local_settings({"checkpoints.dir": str(tmp_path)})
    for job, number in (("a", 3), ("b", 7)):
        checkpoint = tmp_path / job / f"chk-{number}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "_metadata").write_bytes(b"x")
    (tmp_path / "b" / "chk-8").mkdir()  # being written: no _metadata yet
    # and an older one, subsumed, that Flink was deleting when the job died: its state files gone, _metadata left,
    # its directory the last to change
    (tmp_path / "b" / "chk-6").mkdir()
    (tmp_path / "b" / "chk-6" / "_metadata").write_bytes(b"x")
    later = (tmp_path / "b" / "chk-7").stat().st_mtime + 5
    os.utime(tmp_path / "b" / "chk-6", (later, later))
    settings = main.local_settings({"checkpoints.dir": str(tmp_path)})
    assert settings["pipeline.jars"].endswith("/lib/fraudstream-flink-deps.jar")
    assert settings["execution.savepoint.path"] == (tmp_path / "b" / "chk-7").as_uri()
    assert settings["state.checkpoints.dir"] == tmp_path.as_uri()


def test_the_watermark_trails_by_the_configured_out_of_orderness_and_a_millisecond(main):
    source = main.kafka_tables({**BASE, "max.out.of.orderness.seconds": "5"})[0]
    assert "WATERMARK FOR row_time AS row_time - INTERVAL '0 00:00:05.001' DAY TO SECOND(3)" in source


def test_lateness_of_a_hundred_seconds_and_more_is_a_valid_interval(main):
    # INTERVAL '3600' SECOND is refused by Flink ("exceeds precision of SECOND(2) field")
    assert main.interval(3600) == "INTERVAL '0 01:00:00.000' DAY TO SECOND(3)"
    assert main.interval(90_061.5) == "INTERVAL '1 01:01:01.500' DAY TO SECOND(3)"
    with pytest.raises(ValueError, match="max.out.of.orderness.seconds=-1"):
        main.interval(-1)


@pytest.mark.parametrize("missing", ["bootstrap.servers", "transactions.topic", "features.topic", "invalid.topic"])
def test_a_missing_runtime_property_is_named(main, missing):
    props = dict(BASE)
    del props[missing]
    with pytest.raises(ValueError, match=missing):
        main.kafka_tables(props)


def test_every_run_sets_the_latency_and_state_settings(main):
    assert main.job_settings() == {"pipeline.auto-watermark-interval": "50 ms",
                                   "execution.buffer-timeout.interval": "10 ms", "table.exec.state.ttl": "8 d"}


def test_the_s3_client_is_configured_only_from_the_properties_the_stack_sets(main):
    # The local pipeline archives to a directory: no S3 setting. The stack's properties (region, endpoint) become
    # the keys flink-s3-fs-hadoop reads.
    assert main.filesystem_settings(BASE) == {}
    props = flink_properties.runtime_properties("b:9098", "tx", "feat", "inv", archive_path="s3://b/t",
                                                s3_region="eu-west-1", s3_endpoint="s3.eu-west-1.amazonaws.com")
    assert main.filesystem_settings(props) == {"s3.endpoint.region": "eu-west-1",
                                               "s3.endpoint": "s3.eu-west-1.amazonaws.com"}


def test_archive_is_written_only_when_the_properties_name_a_path(main):
    assert main.archive_tables({}) == []
    source, ddl, view = main.archive_tables({"archive.path": "s3://fraudstream-data/transactions",
                                             "consumer.group": "agg"})
    assert "'path' = 's3://fraudstream-data/transactions'" in ddl and "PARTITIONED BY (dt)" in ddl
    # Its own source and consumer group, so a failing archive restarts only its own pipeline.
    assert source == ("CREATE TABLE transactions_to_archive WITH ('properties.group.id' = 'agg-archive') "
                      "LIKE transactions")
    assert "FROM transactions_to_archive" in view
    assert flink_properties.consumer_groups("agg", archive=True) == ["agg", "agg-unparsed", "agg-archive"]
    assert flink_properties.consumer_groups("agg", archive=False) == ["agg", "agg-unparsed"]
    assert main.archive_query().startswith("SELECT") and "FROM parsed_to_archive" in main.archive_query()


def test_archive_files_roll_every_15_minutes_on_aws_and_as_often_as_asked_locally(main):
    def rolling(properties):
        _, ddl, _ = main.archive_tables({"archive.path": "file:///tmp/a", **properties})
        return [line.strip() for line in ddl.splitlines() if "rolling-policy" in line]

    assert rolling({}) == ["'sink.rolling-policy.rollover-interval' = '900 s',",
                           "'sink.rolling-policy.check-interval' = '60 s',"]
    assert rolling({"archive.rollover.seconds": "1"}) == ["'sink.rolling-policy.rollover-interval' = '1 s',",
                                                          "'sink.rolling-policy.check-interval' = '1 s',"]
    with pytest.raises(ValueError, match="archive.rollover.seconds='0'"):
        main.archive_tables({"archive.path": "file:///tmp/a", "archive.rollover.seconds": "0"})


class FakeRest:
    """The mini-cluster's REST API: at /jobs/<id> unreachable at first, then the job's states in turn; at
    /jobs/<id>/exceptions the job's exception history (``failures``: one list of entries per answer, the last
    one kept; none by default)."""

    def __init__(self, *answers, failures=([],)):
        self.answers, self.failures, self.urls = list(answers), list(failures), []

    def __call__(self, url, timeout):
        if url.endswith("/exceptions"):
            entries = self.failures.pop(0) if len(self.failures) > 1 else self.failures[0]
            if isinstance(entries, Exception):
                raise entries
            return io.BytesIO(json.dumps({"exceptionHistory": {"entries": entries}}).encode())
        self.urls.append(url)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return io.BytesIO(json.dumps(answer).encode())


def job(state, *statuses, restarted_at=0):
    """/jobs/<id> as Flink answers it; ``restarted_at``: when the whole job last went RESTARTING (0: never)."""
    return {"state": state, "vertices": [{"status": status} for status in statuses],
            "timestamps": {"CREATED": 1, "RUNNING": 2, "RESTARTING": restarted_at}}


def test_ready_only_once_every_task_runs(main, monkeypatch):
    # Given a REST API that is not up yet, then a job whose tasks are still being deployed
    rest = FakeRest(ConnectionRefusedError(), job("RUNNING", "RUNNING", "DEPLOYING"), job("RUNNING", "CREATED", "CREATED"),
                    job("RUNNING", "RUNNING", "FINISHED", "RUNNING"))  # a bounded source finishes
    monkeypatch.setattr(main.urllib.request, "urlopen", rest)
    monkeypatch.setattr(main.time, "sleep", lambda _seconds: None)
    # When the job is waited for
    main.wait_until_running("8081", "abc123")
    # Then it returns only at the answer where every task runs (or has finished)
    assert rest.answers == [] and len(rest.urls) == 4
    assert rest.urls[-1] == "http://127.0.0.1:8081/jobs/abc123"


def test_a_job_that_ends_is_not_waited_for_and_never_reported_ready(main, monkeypatch):
    rest = FakeRest(job("FAILED", "FAILED", "CANCELED"), job("RUNNING", "RUNNING"))
    monkeypatch.setattr(main.urllib.request, "urlopen", rest)
    monkeypatch.setattr(main.time, "sleep", lambda _seconds: None)
    with pytest.raises(RuntimeError, match="FAILED"):
        main.wait_until_running("8081", "abc123")
    assert len(rest.urls) == 1


def test_a_bounded_run_over_before_it_is_asked_counts_as_run(main, monkeypatch):
    rest = FakeRest(job("FINISHED", "FINISHED", "FINISHED"))
    monkeypatch.setattr(main.urllib.request, "urlopen", rest)
    monkeypatch.setattr(main.time, "sleep", lambda _seconds: None)
    main.wait_until_running("8081", "abc123")  # no error: the tests' bounded jobs may end this fast
    assert len(rest.urls) == 1


MISSING_STATE = {"exceptionName": "java.lang.Exception", "stacktrace": (
    "java.lang.Exception: Exception while creating StreamOperatorStateContext.\n\tat a.b(C.java:1)\n"
    "Caused by: org.apache.flink.util.FlinkException: Could not restore keyed state backend\n\tat d.e(F.java:2)\n"
    "Caused by: java.io.FileNotFoundException: /w/checkpoints/j/chk-6/f9 (No such file or directory)\n\tat g.h(I.java:3)")}


def test_a_job_failing_as_it_starts_says_why_once_per_failure(main, monkeypatch, capsys):
    # Given a job that fails once as it starts (Flink restarts it), then runs
    rest = FakeRest(job("RESTARTING", "CANCELED", restarted_at=10), job("RUNNING", "INITIALIZING", restarted_at=10),
                    job("RUNNING", "RUNNING", restarted_at=10), failures=([MISSING_STATE],))
    monkeypatch.setattr(main.urllib.request, "urlopen", rest)
    monkeypatch.setattr(main.time, "sleep", lambda _seconds: None)
    main.wait_until_running("8081", "abc123")
    # Then the log says why, once, in one line: the innermost cause
    assert capsys.readouterr().out.splitlines() == [
        "the job failed while starting (RESTARTING now): java.io.FileNotFoundException: "
        "/w/checkpoints/j/chk-6/f9 (No such file or directory)"]


def test_a_job_that_keeps_failing_as_it_starts_is_given_up_with_its_reason(main, monkeypatch, capsys):
    # Given a job that cannot restore its checkpoint: Flink restarts it without end, each restart over before it is
    # asked again (the job is seen initializing, never restarting)
    rest = FakeRest(*[job("RUNNING", "INITIALIZING", restarted_at=at) for at in (10, 10, 20, 30)],
                    job("RUNNING", "RUNNING", restarted_at=30),
                    failures=([MISSING_STATE], [MISSING_STATE], [MISSING_STATE] * 2, [MISSING_STATE] * 3))
    monkeypatch.setattr(main.urllib.request, "urlopen", rest)
    monkeypatch.setattr(main.time, "sleep", lambda _seconds: None)
    # Then its third restart ends the wait, naming the cause (the local supervisor then restarts the process)
    with pytest.raises(RuntimeError, match=r"restarted 3 times while starting; the last failure: java.io.FileNotFound"):
        main.wait_until_running("8081", "abc123")
    assert len(rest.answers) == 1 and len(capsys.readouterr().out.splitlines()) == 3


def test_a_region_failing_while_the_job_runs_does_not_end_the_wait(main, monkeypatch, capsys):
    # Given the archive's region failing again and again (region failover: the job itself never restarts)
    rest = FakeRest(*[job("RUNNING", "RUNNING", "FAILED")] * 4, job("RUNNING", "RUNNING", "RUNNING"),
                    failures=([MISSING_STATE], [MISSING_STATE] * 2, [MISSING_STATE] * 3, [MISSING_STATE] * 4))
    monkeypatch.setattr(main.urllib.request, "urlopen", rest)
    monkeypatch.setattr(main.time, "sleep", lambda _seconds: None)
    # Then the wait goes on until every task runs, each failure said
    main.wait_until_running("8081", "abc123")
    assert rest.answers == [] and len(capsys.readouterr().out.splitlines()) == 4


def test_an_exception_history_that_cannot_be_read_does_not_hold_up_the_start(main, monkeypatch, capsys):
    rest = FakeRest(job("RUNNING", "INITIALIZING"), job("RUNNING", "RUNNING"),
                    failures=(ValueError("not JSON"), [{"exceptionName": "", "stacktrace": "  "}]))
    monkeypatch.setattr(main.urllib.request, "urlopen", rest)
    monkeypatch.setattr(main.time, "sleep", lambda _seconds: None)
    main.wait_until_running("8081", "abc123")
    assert rest.answers == [] and capsys.readouterr().out.splitlines() == [
        "the job failed while starting (RUNNING now): (no message)"]
