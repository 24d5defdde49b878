"""Real Apache Flink 1.20 (PyFlink mini-cluster, .venv-flink), run from the built application zip against the
session's real Kafka broker: what these tests run is what the managed service runs, but for the security block."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from fraudstream.local.flink import APPLICATION_ZIP
from fraudstream.paths import FLINK_PYTHON
from tests.support.flink_job import Topics


@pytest.fixture(scope="session")
def flink_app(tmp_path_factory) -> Path:
    """The application zip (`make flink-package`), unpacked as the managed service unpacks it."""
    if not FLINK_PYTHON.exists():
        pytest.fail(f"{FLINK_PYTHON} is missing: `make test` builds it (make .venv-flink/.installed)")
    if not APPLICATION_ZIP.is_file():
        pytest.fail(f"{APPLICATION_ZIP} is missing: `make test` builds it (make flink-package)")
    directory = tmp_path_factory.mktemp("flink-app")
    with zipfile.ZipFile(APPLICATION_ZIP) as archive:
        archive.extractall(directory)
    return directory


@pytest.fixture
def topics(kafka_broker) -> Topics:
    return Topics(kafka_broker)
