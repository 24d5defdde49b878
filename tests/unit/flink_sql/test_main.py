"""flink_sql/main.py without Flink: runtime properties in, complete SQL out (no hand-edited strings)."""

from __future__ import annotations

import importlib.util

import pytest

from kafka.partitioner.default import murmur2

from fraudstream import contract as c
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


def test_tick_keys_reach_every_partition_as_kafkas_default_partitioner_maps_them():
    for partitions in (1, 3, 6, 12):
        keys = tick_keys(partitions)
        assert [(murmur2(key.encode()) & 0x7FFFFFFF) % partitions for key in keys] == list(range(partitions))


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
    sink, insert = main.ticks(props)
    for text in main.feature_queries() + sink + [insert]:
        assert text.startswith(("INSERT INTO", "CREATE TABLE")) and "{" not in text and "}" not in text
    assert "('tick-0'), ('tick-1')" in insert
    assert main.ticks(BASE) == ([], None)  # no keys: no ticks
    assert main.ticks({**props, "bounded": "true"}) == ([], None)  # a bounded run ends with a final watermark


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


def test_archive_is_written_only_when_the_properties_name_a_path(main):
    assert main.archive_tables({}) == []
    source, ddl, view = main.archive_tables({"archive.path": "s3://fraudstream-data/transactions",
                                             "consumer.group": "agg"})
    assert "'path' = 's3://fraudstream-data/transactions'" in ddl and "PARTITIONED BY (dt)" in ddl
    # Its own source and consumer group, so a failing archive restarts only its own pipeline.
    assert source == ("CREATE TABLE transactions_to_archive WITH ('properties.group.id' = 'agg-archive') "
                      "LIKE transactions")
    assert "FROM transactions_to_archive" in view
    assert main.consumer_groups("agg", archive=True) == ["agg", "agg-unparsed", "agg-archive"]
    assert main.consumer_groups("agg", archive=False) == ["agg", "agg-unparsed"]
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
