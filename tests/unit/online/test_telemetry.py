"""The handlers' log records: the lines Powertools' own formatter writes, written faster."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from fraudstream import contract as c
from fraudstream.online.features import model_features
from fraudstream.contract import RecordRef
from fraudstream.online.messages import parse_transaction_features
from fraudstream.online.scorers import ModelOutputError
from fraudstream.online.telemetry import JsonFormatter, logger
from fraudstream.online.verdict import Verdict
from tests.support.events import features_message


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
    tx = parse_transaction_features(RecordRef(c.TRANSACTION_FEATURES_TOPIC, 0, 7),
                                    features_message(4 * 10**15 + 7, 1.7e9, 12.5, partition=3, offset=41, tid="t-1"))
    return Verdict.of(tx, model_features(tx, None), 0.4, 0.25, 86_400.0)


def _records() -> dict[str, tuple[logging.LogRecord, bool]]:
    """Every kind of record the handlers write, and the edges of the formatter's one-pass path: (record, whether
    the one-pass path takes it)."""
    verdict = _verdict()
    try:
        raise ModelOutputError("2 scores for 3 rows")
    except ModelOutputError:
        exception = sys.exc_info()
    with_message = _record(logging.INFO, "already formatted")
    with_message.message = "already formatted"  # as a standard Formatter leaves it on the record
    return {
        "verdict": (_record(logging.INFO, verdict.message(), extra=verdict.log_fields()), True),
        "invalid record": (_record(logging.ERROR, "invalid record skipped",
                                   extra={**RecordRef("t", 0, 5).as_log(), "reason": "value is not JSON"}), True),
        "refused transaction": (_record(logging.ERROR, "invalid transaction refused",
                                        extra={**RecordRef("t", 1, 6).as_log(), "reason": "amount is missing"}), True),
        "duplicate": (_record(logging.WARNING, "duplicate transaction skipped",
                              extra={**RecordRef("t", 1, 6).as_log(), "tid": None,
                                     "duplicate_of": RecordRef("f", 0, 9).as_log()}), True),
        # A message that starts as JSON text may start (t, f, n: true, false, null): Powertools decodes it.
        "summary": (_record(logging.INFO, "transactions processed", extra={"transactions": 3, "fraud": 1}), False),
        "empty message": (_record(logging.INFO, ""), True),
        "extra over a key": (_record(logging.INFO, "service renamed",
                                     extra={"service": "other", "sampling_rate": None, "xray_trace_id": "mine"}), True),
        "extra named like the exception": (_record(logging.INFO, "carried", extra={"exception": "text"}), True),
        "extra named like the stack trace": (_record(logging.INFO, "carried", extra={"stack_trace": "frames"}), True),
        "stack info": (_record(logging.INFO, "with a stack", stack_info="Stack (most recent call last): ..."), True),
        "message attribute": (with_message, True),
        "exception": (_record(logging.ERROR, "model output refused", exc_info=exception, extra={"reason": "2"}), False),
        "arguments": (_record(logging.WARNING, "%d records late", args=(3,)), False),
        "json message": (_record(logging.INFO, '{"cards": [1, 2]}'), False),
        "dict message": (_record(logging.INFO, {"cards": 2}), False),  # type: ignore[arg-type]
        "message that is not JSON but starts like it": (_record(logging.INFO, "true or false"), False),
    }


@pytest.mark.parametrize("kind", list(_records()))
def test_each_record_is_the_line_powertools_own_format_writes(monkeypatch, kind):
    # Given the handlers' formatter, with the Lambda context keys the handler decorator adds and an X-Ray trace
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    logger.append_keys(function_name="predict_from_features", cold_start=True)
    try:
        record, one_pass = _records()[kind]
        formatter = logger.registered_formatter
        # When Powertools' own format (the superclass's) formats a record, and then ours formats the same record
        powertools = LambdaPowertoolsFormatter.format(formatter, record)
        handed_over = []
        own_format = LambdaPowertoolsFormatter.format
        monkeypatch.setattr(LambdaPowertoolsFormatter, "format",
                            lambda self, each: handed_over.append(each) or own_format(self, each))
        ours = formatter.format(record)
    finally:
        logger.remove_keys(["function_name", "cold_start"])
    # Then the lines are the same, byte for byte (keys in the same order), and only the records the one-pass
    # path does not cover were handed to Powertools
    assert ours == powertools
    assert (handed_over == []) is one_pass
    line = json.loads(ours)
    assert line["function_name"] == "predict_from_features" and line["location"] == "predict:10"


def test_thread_local_keys_are_written_as_powertools_writes_them():
    logger.thread_safe_append_keys(request="r-1")
    try:
        record, _ = _records()["verdict"]
        formatter = logger.registered_formatter
        assert formatter.format(record) == LambdaPowertoolsFormatter.format(formatter, record)
        assert json.loads(formatter.format(record))["request"] == "r-1"
    finally:
        logger.thread_safe_clear_keys()


def test_a_key_that_would_render_a_record_attribute_from_a_non_text_template_is_refused_as_powertools_refuses_it():
    formatter = JsonFormatter()
    formatter.append_keys(level=1)
    with pytest.raises(ValueError, match="need to be type 'str'"):
        formatter.format(_records()["verdict"][0])


def test_a_verdict_record_is_built_in_one_pass_with_the_verdict_fields(monkeypatch):
    # Given Powertools' own format made unusable
    def refuse(self, record):
        raise AssertionError("Powertools' format was used")

    monkeypatch.setattr(LambdaPowertoolsFormatter, "format", refuse)
    # When a verdict record is formatted
    line = json.loads(logger.registered_formatter.format(_records()["verdict"][0]))
    # Then the one-pass path wrote it, with the verdict's fields and the seed's message
    assert line["verdict"] == c.FRAUD and line["offset"] == 41 and line["card"] == "400000******0007"
    assert (line["late"], line["batch_record_age_s"]) == (False, 86_400.0)
    assert line["message"].startswith("Prediction: FRAUD (0.400000), num last 10m: 1")


def test_an_exception_record_names_the_exception():
    line = json.loads(logger.registered_formatter.format(_records()["exception"][0]))
    assert line["exception_name"] == "ModelOutputError" and line["level"] == "ERROR"
