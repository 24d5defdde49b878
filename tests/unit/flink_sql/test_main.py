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


def test_msk_tables_use_iam_over_tls_with_the_injected_servers_and_topics(main):
    source, sink = main.msk_tables({"bootstrap.servers": "b-1.example:9098,b-2.example:9098",
                                    "transactions.topic": "tx", "aggregates.topic": "agg"})
    for ddl in (source, sink):
        assert "'properties.bootstrap.servers' = 'b-1.example:9098,b-2.example:9098'" in ddl
        assert "'properties.security.protocol' = 'SASL_SSL'" in ddl
        assert "'properties.sasl.mechanism' = 'AWS_MSK_IAM'" in ddl
        assert "IAMClientCallbackHandler" in ddl and "IAMLoginModule required;" in ddl
        assert "{" not in ddl and "}" not in ddl
    assert "'topic' = 'tx'" in source and "'json.ignore-parse-errors' = 'true'" in source
    assert "'topic' = 'agg'" in sink
    assert "PROCTIME()" in source  # processing time unless told otherwise


def test_event_time_mode_adds_a_watermark_with_the_configured_lateness(main):
    source, _ = main.msk_tables({"bootstrap.servers": "b:9098", "transactions.topic": "tx", "aggregates.topic": "agg",
                                 "time.mode": "event", "max.out.of.orderness.seconds": "5"})
    assert "WATERMARK FOR row_time AS row_time - INTERVAL '5.0' SECOND" in source


@pytest.mark.parametrize("missing", ["bootstrap.servers", "transactions.topic", "aggregates.topic"])
def test_a_missing_runtime_property_is_named(main, missing):
    props = {"bootstrap.servers": "b:9098", "transactions.topic": "tx", "aggregates.topic": "agg"}
    del props[missing]
    with pytest.raises(ValueError, match=missing):
        main.msk_tables(props)


def test_an_unknown_time_mode_is_refused(main):
    with pytest.raises(ValueError, match="time mode 'wall'"):
        main.time_attribute("wall")


def test_the_query_selects_the_aggregate_message_fields(main):
    query = main.aggregate_query()
    for name in (c.CC_NUM, c.NUM_TRANS_LAST_10M, c.AVG_AMT_LAST_10M, c.TRANS_TS, c.PREV_TRANS_TS):
        assert f" {name}" in query


def test_archive_is_written_only_when_the_properties_name_a_path(main):
    assert main.archive_tables({}) == []
    (ddl,) = main.archive_tables({"archive.path": "s3://fraudstream-data/transactions"})
    assert "'path' = 's3://fraudstream-data/transactions'" in ddl and "PARTITIONED BY (dt)" in ddl
    assert main.archive_query().startswith("SELECT") and "FROM transactions" in main.archive_query()
