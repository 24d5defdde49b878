"""Shared fixtures: fake AWS credentials, small generated data sets, log capture, a Spark session.

Builders and fakes that tests and benchmarks share live in tests/support/."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest
from hypothesis import settings

from fraudstream.offline.generate import generate
from fraudstream.offline.generate_config import GeneratorConfig
from tests.support import aws_calls
from tests.support.kafka import kafka_broker  # noqa: F401 - the session's real Kafka broker, for every test

# Tests never reach AWS: fake credentials and a region for every client created here.
for _name, _value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                      "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)

# `make test-fast` runs every property test on a tenth of its examples (--hypothesis-profile=fast); `make test`
# on the full count. A test that sets its own count scales it by settings.default.max_examples (100 by default).
settings.register_profile("fast", max_examples=10)


# Fixtures that start servers, and the marker each test that uses them must carry (pyproject.toml: markers).
SERVER_MARKERS = {"kafka_broker": "kafka", "flink_app": "flink"}


def pytest_collection_modifyitems(items):
    """A test that starts a server says so: one that uses a server's fixture without its marker is an error, so
    `-m "not kafka"` and `-m "not flink"` select what they say."""
    unmarked = [f"{item.nodeid} (uses {fixture}, not marked {marker})" for item in items
                for fixture, marker in SERVER_MARKERS.items()
                if fixture in getattr(item, "fixturenames", ()) and item.get_closest_marker(marker) is None]
    if unmarked:
        raise pytest.UsageError("tests that start a server must carry its marker:\n  " + "\n  ".join(unmarked))


@pytest.fixture(autouse=True)
def _record_aws_calls(request):
    """Tests marked aws_component(NAME) record their AWS calls when tests/infrastructure/test_calls_granted.py
    asks for them (tests/support/aws_calls.py)."""
    marker, sink = request.node.get_closest_marker("aws_component"), aws_calls.sink_from_environment()
    if marker is None or sink is None:
        yield
        return
    with aws_calls.recording(marker.args[0], sink):
        yield


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

    from fraudstream.online.telemetry import logger

    handler = logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield LogCapture(stream)
    handler.setStream(previous)


@pytest.fixture(autouse=True)
def _fresh_metrics():
    """Metrics accumulate in the module-level Metrics object until flushed: start each test empty."""
    from fraudstream.online.telemetry import metrics

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
