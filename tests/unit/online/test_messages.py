"""MSK records -> validated messages: every record is parsed or reported with where it came from.

The records are Flink's: one message per transaction on the features topic, one report per refused record on
the invalid-transactions topic (fraudstream/contract.py: "Transaction features")."""

from __future__ import annotations

import base64
import json

import pytest

from fraudstream import contract as c
from fraudstream.online.messages import (
    InvalidReport,
    RecordRef,
    decode_value,
    parse_event,
    parse_invalid_report,
    parse_transaction_features,
)
from tests.support.events import documented_example, features_message, invalid_report, msk_event

CARD = 4111111111111111
TS = 1_700_000_000.25
FEATURES = c.TRANSACTION_FEATURES_TOPIC


def _features_event(values, partition=0, first_offset=0, key="absent"):
    return msk_event(values, topic=FEATURES, partition=partition, first_offset=first_offset, key=key)


def _message(**changes):
    """Flink's message for CARD's transaction at TS, with fields changed (a value of DROP leaves the field out)."""
    message = features_message(CARD, TS, 12.5, offset=41, partition=2, tid="t-1")
    message.update(changes)
    return {k: v for k, v in message.items() if v is not DROP}


DROP = object()


def _raw(name, text):
    """The message as JSON text with ``name``'s value written as ``text`` (values json.dumps cannot write)."""
    return json.dumps(_message(**{name: "@@"})).replace('"@@"', text).encode()


def test_a_features_message_parses_with_both_its_places_and_every_value():
    message = features_message(CARD, TS, 12.5, offset=41, partition=2, tid="t-1", count_10m=3, sum_10m=40.25,
                               prev_ts=TS - 60, today=(4, 50.75), days_before={1: (2, 7.5), 7: (1, 0.25)})
    [tx], invalid = parse_event(_features_event([message], partition=1, first_offset=9), parse_transaction_features)
    assert invalid == []
    # ref: where the transaction sat on the transactions topic; features_ref: where this message sits
    assert tx.ref == RecordRef(c.TRANSACTIONS_TOPIC, 2, 41)
    assert tx.features_ref == RecordRef(FEATURES, 1, 9)
    assert (tx.cc_num, tx.amount, tx.trans_ts, tx.tid, tx.event_ms) == (CARD, 12.5, TS, "t-1", 1_700_000_000_250)
    assert (tx.num_trans_last_10m, tx.amt_sum_last_10m, tx.prev_event_ms) == (3, 40.25, 1_699_999_940_250)
    assert (tx.num_trans_today, tx.amt_sum_today) == (4, 50.75)
    assert tx.num_trans_days_before == (2, 0, 0, 0, 0, 0, 1)
    assert tx.amt_sum_days_before == (7.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25)
    assert tx.late is False


def test_a_cards_first_transaction_has_no_previous_one_and_no_transaction_id_is_needed():
    [tx], invalid = parse_event(_features_event([_message(prev_event_ms=None, tid=DROP)]), parse_transaction_features)
    assert invalid == [] and tx.prev_event_ms is None and tx.tid is None


def test_a_late_message_parses_as_late():
    [tx], _ = parse_event(_features_event([_message(late=True)]), parse_transaction_features)
    assert tx.late is True


def test_the_streaming_record_of_a_message_is_its_10_minute_average_stamped_with_its_event_time():
    message = features_message(CARD, TS, 10.0, count_10m=3, sum_10m=0.3, prev_ts=TS - 60)
    [tx], _ = parse_event(_features_event([message]), parse_transaction_features)
    assert tx.as_record() == {c.CC_NUM: CARD, c.NUM_TRANS_LAST_10M: 3, c.AVG_AMT_LAST_10M: 0.3 / 3,
                              c.TRANS_TIME: TS, c.PREV_TRANS_TIME: c.event_ms(TS - 60) / 1000}
    assert tx.avg_amt_last_10m == 0.3 / 3  # the exact sum divided, as the batch SQL divides
    first = parse_event(_features_event([features_message(CARD, TS, 10.0)]), parse_transaction_features)[0][0]
    assert first.as_record()[c.PREV_TRANS_TIME] is None


def test_an_invalid_transaction_report_parses_to_the_refused_records_place_and_reason():
    event = msk_event([invalid_report(17, partition=2)], topic=c.INVALID_TRANSACTIONS_TOPIC, first_offset=5)
    [report], invalid = parse_event(event, parse_invalid_report)
    assert invalid == []
    assert report == InvalidReport(RecordRef(c.TRANSACTIONS_TOPIC, 2, 17), "cc_num is missing or not a card number")


@pytest.mark.parametrize("reason, kept", [
    ("line\nbreak", "line?break"),
    ("x" * 500, "x" * 200),
])
def test_a_report_reason_is_kept_printable_and_short(reason, kept):
    event = msk_event([invalid_report(3, reason=reason)], topic=c.INVALID_TRANSACTIONS_TOPIC)
    [report], _ = parse_event(event, parse_invalid_report)
    assert report.reason == kept


@pytest.mark.parametrize("change, reason", [
    ({c.REASON: None}, "reason is missing or not text"),
    ({c.TOPIC: ""}, "topic is missing or not text"),
    ({c.OFFSET: -1}, "offset is out of range"),
    ({c.PARTITION: 1.5}, "partition is not a whole number"),
])
def test_a_report_that_is_not_flinks_is_reported_itself(change, reason):
    event = msk_event([{**invalid_report(3), **change}], topic=c.INVALID_TRANSACTIONS_TOPIC, first_offset=8)
    reports, [bad] = parse_event(event, parse_invalid_report)
    assert reports == [] and reason in bad.reason and bad.ref == RecordRef(c.INVALID_TRANSACTIONS_TOPIC, 0, 8)


def test_the_documented_aws_example_is_read_and_its_non_json_value_reported():
    valid, [bad] = parse_event(documented_example(), parse_transaction_features)
    assert valid == []
    assert bad.ref == RecordRef("mytopic", 0, 15)
    assert "not JSON" in bad.reason


def test_records_of_several_partitions_keep_their_own_references():
    event = _features_event([_message(amount=1.0)], partition=0, first_offset=7)
    event["records"].update(_features_event([_message(amount=2.0)], partition=3, first_offset=42)["records"])
    valid, _ = parse_event(event, parse_transaction_features)
    assert sorted((tx.features_ref.partition, tx.features_ref.offset, tx.amount) for tx in valid) == [
        (0, 7, 1.0), (3, 42, 2.0)]


def test_a_transaction_id_that_cannot_be_printed_is_made_printable():
    [tx], _ = parse_event(_features_event([_raw(c.TID, '"a\\ud800b"')]), parse_transaction_features)
    assert tx.tid == "a?b"


@pytest.mark.parametrize("tid, logged", [
    ("9f1c2d3e4a5b6c7d", "9f1c2d3e4a5b6c7d"),
    ("line\nbreak", "line?break"),
    ("caf\u00e9 \t", "caf? ?"),
    (12345, "12345"),
    ("x" * 100, "x" * 64),
])
def test_a_transaction_id_is_kept_as_printable_ascii_of_at_most_64_characters(tid, logged):
    [tx], _ = parse_event(_features_event([_message(tid=tid)]), parse_transaction_features)
    assert tx.tid == logged


def test_a_card_number_given_as_a_digit_string_is_accepted():
    [tx], _ = parse_event(_features_event([_message(cc_num=str(CARD))]), parse_transaction_features)
    assert tx.cc_num == CARD


def test_an_amount_and_an_event_time_given_as_number_strings_are_accepted():
    [tx], _ = parse_event(_features_event([_message(amount="12.50", trans_ts=str(TS))]), parse_transaction_features)
    assert (tx.amount, tx.trans_ts) == (12.5, TS)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not valid UTF-8"),
        (b"[1, 2]", "JSON list"),
        (_message(cc_num=DROP), "cc_num is missing"),
        (_message(cc_num="4111-1111"), "cc_num is missing or not a whole number"),
        (_message(cc_num=True), "cc_num"),
        (_message(cc_num=-5), "not a card number"),
        (_message(cc_num=10**25), "not a card number"),
        (_message(cc_num=4111.5), "cc_num is missing or not a whole number"),
        (_message(cc_num="9" * 5000), "not a card number"),
        (_message(cc_num=9999999999999999999), "not a card number"),  # 19 digits, above 2^63 - 1
        (_message(amount="12.00 EUR"), "amount is missing or not a number"),
        (_message(amount="NaN"), "amount is missing or not a number"),
        (_message(amount=" 12"), "amount is missing or not a number"),
        (_message(amount=-1.0), "amount is out of range"),
        (_message(amount=1e308), "amount is out of range"),
        (_raw(c.AMOUNT, "NaN"), "NaN"),
        (_raw(c.AMOUNT, "1" + "0" * 400), "amount is out of range"),
        (_raw(c.AMOUNT, "9" * 4400), "not usable JSON"),
        (_message(trans_ts="yesterday"), "trans_ts is missing or not a number"),
        (_message(trans_ts=12.0), "trans_ts is out of range"),
        (b"x" * (1024 * 1024), "larger than"),
        (b'{"x": ' + b"[" * 20000 + b"]" * 20000 + b"}", "not usable JSON"),
        # Flink's own fields
        (_message(event_ms=DROP), "event_ms is missing"),
        (_message(event_ms=12), "event_ms is out of range"),
        (_message(num_trans_last_10m=0), "num_trans_last_10m is out of range"),
        (_message(num_trans_last_10m=2.5), "num_trans_last_10m is not a whole number"),
        (_message(amt_sum_last_10m=-0.01), "amt_sum_last_10m is out of range"),
        (_raw(c.AMT_SUM_LAST_10M, "Infinity"), "Infinity"),
        (_message(prev_event_ms=c.event_ms(TS) + 1), "prev_event_ms is out of range"),
        (_message(num_trans_today=0), "num_trans_today is out of range"),
        (_message(amt_sum_today="lots"), "amt_sum_today is missing or not a number"),
        (_message(num_trans_days_before=DROP), "num_trans_days_before is missing or not a list of 7 numbers"),
        (_message(num_trans_days_before=[0] * 6), "num_trans_days_before is missing or not a list of 7 numbers"),
        (_message(num_trans_days_before=[0, 0, 0, -1, 0, 0, 0]), "num_trans_days_before holds a value that is not a whole"),
        (_message(num_trans_days_before=[0, 0, 0, 1.5, 0, 0, 0]), "num_trans_days_before holds a value that is not a whole"),
        (_message(amt_sum_days_before={"1": 2}), "amt_sum_days_before is missing or not a list of 7 numbers"),
        (_message(amt_sum_days_before=[0, 0, None, 0, 0, 0, 0]), "amt_sum_days_before holds a value that is missing or not a number"),
        (_message(amt_sum_days_before=[0, 0, 0, 0, 0, 0, -0.01]), "amt_sum_days_before holds a value that is out of range"),
        (_message(late=DROP), "late is not true or false"),
        (_message(late="yes"), "late is not true or false"),
        (_message(topic=DROP), "topic is missing or not text"),
        (_message(partition=-1), "partition is out of range"),
        (_message(offset="x"), "offset is missing or not a number"),
    ],
)
def test_bad_messages_are_reported_with_a_reason_and_never_their_content(value, reason):
    [good_before, good_after], [bad] = _parse_between_good_ones(value)
    assert reason in bad.reason
    assert bad.ref == RecordRef(FEATURES, 0, 1)
    assert str(CARD) not in bad.reason
    assert (good_before.amount, good_after.amount) == (1.0, 2.0)


def _parse_between_good_ones(value):
    return parse_event(_features_event([_message(amount=1.0), value, _message(amount=2.0, offset=42)]),
                       parse_transaction_features)


def test_a_value_that_is_not_base64_is_reported():
    event = _features_event([_message(), _message(offset=42)])
    event["records"][f"{FEATURES}-0"][1]["value"] = "not*base64!"
    valid, [bad] = parse_event(event, parse_transaction_features)
    assert len(valid) == 1 and "base64" in bad.reason


def test_a_record_without_a_value_is_reported():
    event = _features_event([_message()])
    del event["records"][f"{FEATURES}-0"][0]["value"]
    assert "no value" in parse_event(event, parse_transaction_features)[1][0].reason


@pytest.mark.parametrize("value, reason", [
    (None, "no value"),
    ("", "no value"),
    (base64.b64encode(b'"text"').decode(), "JSON str, expected an object"),
    (base64.b64encode(b'{"a": NaN}').decode(), "NaN"),
])
def test_decode_value_names_why_a_value_is_not_a_json_object(value, reason):
    with pytest.raises(ValueError, match=reason):
        decode_value(value)
    assert decode_value(base64.b64encode(b'{"a": 1}').decode()) == {"a": 1}


def test_an_empty_batch_has_nothing_to_parse():
    assert parse_event(_features_event([]), parse_transaction_features) == ([], [])
    assert parse_event({"eventSource": "aws:kafka", "records": {}}, parse_transaction_features) == ([], [])


def test_base64_of_the_builder_round_trips():
    assert base64.b64decode(msk_event([b"abc"])["records"][f"{c.TRANSACTIONS_TOPIC}-0"][0]["value"]) == b"abc"


@pytest.mark.parametrize("key", [None, "NDExMTExMTExMTExMTExMQ==", "absent"])
def test_records_with_a_null_absent_or_present_key_and_byte_array_headers_parse(key):
    event = _features_event([_message()], key=key)
    assert event["records"][f"{FEATURES}-0"][0]["headers"][0]["headerKey"][:2] == [104, 101]
    [tx], invalid = parse_event(event, parse_transaction_features)
    assert invalid == [] and tx.cc_num == CARD


@pytest.mark.parametrize("records", [None, {}, []], ids=["null", "empty-object", "empty-list"])
def test_an_event_without_records_parses_to_nothing(records):
    # Given an MSK event whose "records" is null or empty (a key it may also lack)
    for event in ({"eventSource": "aws:kafka", "records": records}, {"eventSource": "aws:kafka"}):
        # Then there is nothing to parse and nothing to report
        assert parse_event(event, parse_transaction_features) == ([], [])
