"""The handlers' log records: the lines Powertools' own formatter writes, written faster."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from fraudstream import contract as c
from fraudstream.online.features import card_features
from fraudstream.online.messages import RecordRef, parse_transaction
from fraudstream.online.scorers import ModelOutputError
from fraudstream.online.telemetry import logger
from fraudstream.online.verdict import Verdict


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


def _record(level: int, message: str, args: tuple = (), exc_info=None, extra: dict | None = None,
            stack_info: str | None = None) -> logging.LogRecord:
    stdlib = logging.getLogger(logger.service)
    record = stdlib.makeRecord(stdlib.name, level, __file__, 10, message, args, exc_info, "predict", extra=extra)
    record.stack_info = stack_info
    return record


def _verdict() -> Verdict:
    tx = parse_transaction(RecordRef(c.TRANSACTIONS_TOPIC, 3, 41), {c.CC_NUM: 4 * 10**15 + 7, c.AMOUNT: 12.5,
                                                                    c.TRANS_TS: 1.7e9, c.TID: "t-1"})
    return Verdict.of(tx, card_features([(1.7e9, 12.5)], None, None)[0], 0.4, 0.25, None, 86_400.0, (40, 41))


def _records() -> dict[str, logging.LogRecord]:
    """Every kind of record the handlers write, and the edges of the formatter's one-pass path."""
    verdict = _verdict()
    try:
        raise ModelOutputError("2 scores for 3 rows")
    except ModelOutputError:
        exception = sys.exc_info()
    with_message = _record(logging.INFO, "formatted before")
    with_message.message = "formatted before"  # as a standard Formatter leaves it on the record
    return {
        "verdict": _record(logging.INFO, verdict.message(), extra=verdict.log_fields()),
        "invalid record": _record(logging.ERROR, "invalid record skipped",
                                  extra={**RecordRef("t", 0, 5).as_log(), "reason": "value is not JSON"}),
        "summary": _record(logging.INFO, "transactions processed", extra={"transactions": 3, "fraud": 1}),
        "exception": _record(logging.ERROR, "model output refused", exc_info=exception, extra={"reason": "2 scores"}),
        "arguments": _record(logging.WARNING, "%d records late", args=(3,)),
        "json message": _record(logging.INFO, '{"cards": [1, 2]}'),
        "dict message": _record(logging.INFO, {"cards": 2}),  # type: ignore[arg-type]
        "empty message": _record(logging.INFO, ""),
        "not json": _record(logging.INFO, "NaN"),
        "extra over a key": _record(logging.INFO, "service renamed", extra={"service": "other", "sampling_rate": None,
                                                                           "xray_trace_id": "mine"}),
        "extra named like the exception": _record(logging.INFO, "carried", extra={"exception": "text"}),
        "stack info": _record(logging.INFO, "with a stack", stack_info="Stack (most recent call last): ..."),
        "message attribute": with_message,
    }


@pytest.mark.parametrize("kind", list(_records()))
def test_each_record_is_the_line_powertools_own_format_writes(monkeypatch, kind):
    # Given the handlers' formatter, with the Lambda context keys the handler decorator adds and an X-Ray trace
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    logger.append_keys(function_name="predict_from_features", cold_start=True)
    try:
        record = _records()[kind]
        formatter = logger.registered_formatter
        # When it formats a record, and Powertools' own format (the superclass's) formats the same record
        ours, powertools = formatter.format(record), LambdaPowertoolsFormatter.format(formatter, record)
    finally:
        logger.remove_keys(["function_name", "cold_start"])
    # Then the lines are the same, byte for byte (keys in the same order)
    assert ours == powertools
    line = json.loads(ours)
    assert line["function_name"] == "predict_from_features" and line["location"] == "predict:10"


def test_thread_local_keys_are_written_as_powertools_writes_them():
    logger.thread_safe_append_keys(request="r-1")
    try:
        record = _records()["verdict"]
        formatter = logger.registered_formatter
        assert formatter.format(record) == LambdaPowertoolsFormatter.format(formatter, record)
        assert json.loads(formatter.format(record))["request"] == "r-1"
    finally:
        logger.thread_safe_clear_keys()


def test_a_verdict_record_is_built_in_one_pass_with_the_verdict_fields(monkeypatch):
    # Given Powertools' own format made unusable
    def refuse(self, record):
        raise AssertionError("Powertools' format was used")

    monkeypatch.setattr(LambdaPowertoolsFormatter, "format", refuse)
    # When a verdict record is formatted
    line = json.loads(logger.registered_formatter.format(_records()["verdict"]))
    # Then the one-pass path wrote it, with the verdict's fields and the seed's message
    assert line["verdict"] == c.FRAUD and line["offset"] == 41 and line["card"] == "400000******0007"
    assert line["batch_offsets"] == [40, 41] and "streaming_record_age_s" not in line
    assert line["message"].startswith("Prediction: FRAUD (0.400000), num last 10m: 1")


def test_an_exception_record_names_the_exception():
    line = json.loads(logger.registered_formatter.format(_records()["exception"]))
    assert line["exception_name"] == "ModelOutputError" and line["level"] == "ERROR"
