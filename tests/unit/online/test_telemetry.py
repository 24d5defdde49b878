"""The handlers' log records: what Powertools would write with its own JSON module, written faster."""

from __future__ import annotations

import datetime as dt

import pytest

from fraudstream.online.telemetry import logger


@pytest.mark.parametrize("message, logged", [
    ('{"card": 1}', {"card": 1}),
    (' [1, 2]', [1, 2]),
    ("42", 42),
    ("true", True),
    ("null", None),
    ("Prediction: NOT FRAUD (0.001000)", "Prediction: NOT FRAUD (0.001000)"),
    ("{not json", "{not json"),
    ("", ""),
])
def test_a_message_that_is_json_text_is_logged_as_its_value_and_any_other_as_it_is(logs, message, logged):
    logger.info(message)
    record = logs.records()[-1]
    # Powertools drops keys whose value is None, the message included, as its json module path does.
    assert record.get("message") == logged


def test_values_json_cannot_encode_are_written_as_their_text(logs):
    logger.info("with a date", extra={"when": dt.date(2022, 3, 1), "score": 0.25})
    record = logs.records()[-1]
    assert record["when"] == "2022-03-01" and record["score"] == 0.25 and record["level"] == "INFO"
