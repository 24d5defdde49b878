"""Shared fixtures and builders: hand-made transaction tables and small generated data sets."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from fraudstream import contract as c
from fraudstream.generate import GeneratorConfig, generate

# Tests never reach AWS: fake credentials and a region for every client created here.
for _name, _value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                      "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)

# 2022-03-01 00:00:00 UTC: inside the default generator period.
T0 = int(datetime(2022, 3, 1, tzinfo=timezone.utc).timestamp())


def transactions(rows: list[tuple[int, float, float]]) -> pa.Table:
    """A transactions table from (cc_num, seconds after T0, amount) tuples; tids t0, t1, ..."""
    return pa.table(
        {
            c.TID: [f"t{i}" for i in range(len(rows))],
            c.DATETIME: pa.array([(T0 + offset) * 1_000_000 for _, offset, _ in rows], type=pa.timestamp("us")),
            c.CC_NUM: pa.array([card for card, _, _ in rows], type=pa.int64()),
            c.AMOUNT: pa.array([amount for _, _, amount in rows], type=pa.float64()),
            c.FRAUD_LABEL: pa.array([0] * len(rows), type=pa.int8()),
        }
    )


@pytest.fixture(scope="session")
def small_config() -> GeneratorConfig:
    """200 cards, 100,000 transactions: fraud chains on a realistic per-card density."""
    return GeneratorConfig(cards=200, transactions=100_000, seed=7)


@pytest.fixture(scope="session")
def small_transactions(small_config) -> pa.Table:
    return generate(small_config)


@pytest.fixture(scope="session")
def small_transactions_file(small_transactions, tmp_path_factory):
    from fraudstream.files import write_parquet

    path = tmp_path_factory.mktemp("data") / "transactions.parquet"
    write_parquet(small_transactions, path)
    return path


class LogCapture:
    """The handlers' JSON log records (Powertools writes to the stdout it saw at import)."""

    def __init__(self, stream):
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict]:
        import json

        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def logs():
    import io

    from fraudstream.telemetry import logger

    handler = logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield LogCapture(stream)
    handler.setStream(previous)


@pytest.fixture(autouse=True)
def _fresh_metrics():
    """Metrics accumulate in the module-level Metrics object until flushed: start each test empty."""
    from fraudstream.telemetry import metrics

    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for every Spark test (UTC, as the batch SQL assumes)."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("fraudstream-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
