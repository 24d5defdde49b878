"""flink_sql/main.py without Flink: runtime properties in, complete SQL out (no hand-edited strings)."""

from __future__ import annotations

import importlib.util

import pytest

from fraudstream import contract as c
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


def test_the_shipped_properties_name_the_contracts_topics(properties):
    assert properties["transactions.topic"] == c.TRANSACTIONS_TOPIC
    assert properties["aggregates.topic"] == c.AGGREGATES_TOPIC


def test_kafka_tables_use_iam_over_tls_by_default_with_the_injected_servers_and_topics(main):
    source, sink, view = main.kafka_tables({"bootstrap.servers": "b-1.example:9098,b-2.example:9098",
                                            "transactions.topic": "tx", "aggregates.topic": "agg"})
    assert view.startswith("CREATE TEMPORARY VIEW valid_transactions") and c.valid_transaction_sql() in view
    for ddl in (source, sink):
        assert "'properties.bootstrap.servers' = 'b-1.example:9098,b-2.example:9098'" in ddl
        assert "'properties.security.protocol' = 'SASL_SSL'" in ddl
        assert "'properties.sasl.mechanism' = 'AWS_MSK_IAM'" in ddl
        assert "IAMClientCallbackHandler" in ddl and "IAMLoginModule required;" in ddl
        assert "'properties.reconnect.backoff.ms' = '1000'" in ddl  # kafka.t3.small's connection quota
        assert "{" not in ddl and "}" not in ddl
    assert "'topic' = 'tx'" in source and "'json.ignore-parse-errors' = 'true'" in source
    assert "'topic' = 'agg'" in sink
    assert "PROCTIME()" in source  # processing time unless told otherwise
    assert "'properties.auto.offset.reset' = 'latest'" in source and "scan.bounded.mode" not in source


def test_the_local_broker_gets_the_same_tables_with_only_the_security_block_changed(main):
    common = {"bootstrap.servers": "127.0.0.1:9092", "transactions.topic": "tx", "aggregates.topic": "agg"}
    msk = main.kafka_tables(common)
    local = main.kafka_tables({**common, "kafka.security": "plaintext"})
    drop_security = lambda ddl: "\n".join(line for line in ddl.splitlines() if "security" not in line  # noqa: E731
                                          and "sasl" not in line and "reconnect" not in line)
    assert [drop_security(d) for d in msk] == [drop_security(d) for d in local]
    source, sink, _view = local
    assert all("'properties.security.protocol' = 'PLAINTEXT'" in ddl and "sasl" not in ddl for ddl in (source, sink))


@pytest.mark.parametrize("key, value", [("kafka.security", "scram"), ("auto.offset.reset", "middle")])
def test_an_unknown_security_mode_or_offset_reset_is_refused(main, key, value):
    with pytest.raises(ValueError, match=key):
        main.kafka_tables({"bootstrap.servers": "b:9098", "transactions.topic": "tx", "aggregates.topic": "agg", key: value})


def test_locally_the_job_takes_the_jar_beside_it_and_resumes_from_its_latest_checkpoint(main, tmp_path):
    assert "execution.savepoint.path" not in main.local_settings({"checkpoints.dir": str(tmp_path)})
    for job, number in (("a", 3), ("b", 7)):
        checkpoint = tmp_path / job / f"chk-{number}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "_metadata").write_bytes(b"x")
    (tmp_path / "b" / "chk-8").mkdir()  # being written: no _metadata yet
    settings = main.local_settings({"checkpoints.dir": str(tmp_path)})
    assert settings["pipeline.jars"].endswith("/lib/fraudstream-flink-deps.jar")
    assert settings["execution.savepoint.path"] == (tmp_path / "b" / "chk-7").as_uri()
    assert settings["state.checkpoints.dir"] == tmp_path.as_uri()


def test_event_time_mode_adds_a_watermark_with_the_configured_lateness(main):
    source, _, _ = main.kafka_tables({"bootstrap.servers": "b:9098", "transactions.topic": "tx", "aggregates.topic": "agg",
                                   "time.mode": "event", "max.out.of.orderness.seconds": "5"})
    assert "WATERMARK FOR row_time AS row_time - INTERVAL '0 00:00:05.000' DAY TO SECOND(3)" in source


def test_lateness_of_a_hundred_seconds_and_more_is_a_valid_interval(main):
    # INTERVAL '3600' SECOND is refused by Flink ("exceeds precision of SECOND(2) field")
    assert main.interval(3600) == "INTERVAL '0 01:00:00.000' DAY TO SECOND(3)"
    assert main.interval(90_061.5) == "INTERVAL '1 01:01:01.500' DAY TO SECOND(3)"
    with pytest.raises(ValueError, match="max.out.of.orderness.seconds=-1"):
        main.interval(-1)


@pytest.mark.parametrize("missing", ["bootstrap.servers", "transactions.topic", "aggregates.topic"])
def test_a_missing_runtime_property_is_named(main, missing):
    props = {"bootstrap.servers": "b:9098", "transactions.topic": "tx", "aggregates.topic": "agg"}
    del props[missing]
    with pytest.raises(ValueError, match=missing):
        main.kafka_tables(props)


def test_an_unknown_time_mode_is_refused(main):
    with pytest.raises(ValueError, match="time mode 'wall'"):
        main.time_attribute("wall")


def test_the_query_selects_the_aggregate_message_fields(main):
    query = main.aggregate_query()
    for name in (c.CC_NUM, c.NUM_TRANS_LAST_10M, c.AVG_AMT_LAST_10M, c.TRANS_TS, c.PREV_TRANS_TS):
        assert f" {name}" in query


def test_archive_is_written_only_when_the_properties_name_a_path(main):
    assert main.archive_tables({}) == []
    source, ddl, view = main.archive_tables({"archive.path": "s3://fraudstream-data/transactions",
                                             "consumer.group": "agg"})
    assert "'path' = 's3://fraudstream-data/transactions'" in ddl and "PARTITIONED BY (dt)" in ddl
    # Its own source and consumer group, so a failing archive restarts only its own pipeline.
    assert source == ("CREATE TABLE transactions_to_archive WITH ('properties.group.id' = 'agg-archive') "
                      "LIKE transactions")
    assert "FROM transactions_to_archive" in view and main.archive_consumer_group("agg") == "agg-archive"
    assert main.archive_query().startswith("SELECT") and "FROM valid_transactions_to_archive" in main.archive_query()


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
