"""MSK records -> validated messages: every record is parsed or reported with where it came from."""

from __future__ import annotations

import base64

import pytest

from fraudstream import contract as c
from fraudstream.online.messages import (
    RecordRef,
    parse_aggregate,
    parse_event,
    parse_transaction,
)
from tests.support.events import aggregate, documented_example, msk_event, transaction

CARD = 4111111111111111
TS = 1_700_000_000.25


def test_a_transaction_message_of_the_design_contract_parses():
    event = msk_event([transaction(CARD, TS, 12.34, tid="abc")])
    [tx], invalid = parse_event(event, parse_transaction)
    assert invalid == []
    assert (tx.cc_num, tx.amount, tx.trans_ts, tx.tid) == (CARD, 12.34, TS, "abc")
    assert tx.ref == RecordRef(c.TRANSACTIONS_TOPIC, 0, 0)


def test_the_documented_aws_example_is_read_and_its_non_json_value_reported():
    valid, [bad] = parse_event(documented_example(), parse_transaction)
    assert valid == []
    assert bad.ref == RecordRef("mytopic", 0, 15)
    assert "not JSON" in bad.reason


def test_records_of_several_partitions_keep_their_own_references():
    event = msk_event([transaction(CARD, TS, 1.0)], partition=0, first_offset=7)
    event["records"].update(msk_event([transaction(CARD, TS, 2.0)], partition=3, first_offset=42)["records"])
    valid, _ = parse_event(event, parse_transaction)
    assert sorted((tx.ref.partition, tx.ref.offset) for tx in valid) == [(0, 7), (3, 42)]


def test_a_transaction_id_that_cannot_be_printed_is_made_printable():
    event = msk_event([b'{"cc_num": 4111111111111111, "amount": 1.0, "trans_ts": 1700000000, "tid": "a\\ud800b"}'])
    [tx], _ = parse_event(event, parse_transaction)
    assert tx.tid == "a?b"


@pytest.mark.parametrize("tid, logged", [
    ("9f1c2d3e4a5b6c7d", "9f1c2d3e4a5b6c7d"),
    ("line\nbreak", "line?break"),
    ("caf\u00e9 \t", "caf? ?"),
    (12345, "12345"),
    ("x" * 100, "x" * 64),
])
def test_a_transaction_id_is_kept_as_printable_ascii_of_at_most_64_characters(tid, logged):
    [tx], _ = parse_event(msk_event([transaction(CARD, TS, 1.0, tid=tid)]), parse_transaction)
    assert tx.tid == logged


def test_a_card_number_given_as_a_digit_string_is_accepted():
    [tx], _ = parse_event(msk_event([transaction(str(CARD), TS, 1.0)]), parse_transaction)
    assert tx.cc_num == CARD


def test_an_amount_and_an_event_time_given_as_number_strings_are_accepted():
    [tx], _ = parse_event(msk_event([transaction(CARD, str(TS), "12.50")]), parse_transaction)
    assert (tx.amount, tx.trans_ts) == (12.5, TS)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not valid UTF-8"),
        (b"[1, 2]", "JSON list"),
        ({"amount": 1.0, "trans_ts": TS}, "cc_num is missing"),
        (transaction("4111-1111", TS, 1.0), "cc_num is missing or not a whole number"),
        (transaction(True, TS, 1.0), "cc_num"),
        (transaction(-5, TS, 1.0), "not a card number"),
        (transaction(10**25, TS, 1.0), "not a card number"),
        (transaction(CARD, TS, "12.00 EUR"), "amount is missing or not a number"),
        (transaction(CARD, TS, "NaN"), "amount is missing or not a number"),
        (transaction(CARD, TS, " 12"), "amount is missing or not a number"),
        (transaction(4111.5, TS, 1.0), "cc_num is missing or not a whole number"),
        (transaction(CARD, TS, -1.0), "amount is out of range"),
        (transaction(CARD, TS, 1e308), "amount is out of range"),
        (b'{"cc_num": 4111111111111111, "amount": NaN, "trans_ts": 1700000000}', "NaN"),
        (transaction(CARD, "yesterday", 1.0), "trans_ts is missing or not a number"),
        (transaction(CARD, 12.0, 1.0), "trans_ts is out of range"),
        (b"x" * (1024 * 1024), "larger than"),
        (b'{"cc_num": 4111111111111111, "trans_ts": 1700000000, "amount": 1' + b"0" * 400 + b"}", "amount is out of range"),
        (b'{"cc_num": 4111111111111111, "trans_ts": 1700000000, "amount": ' + b"9" * 4400 + b"}", "not usable JSON"),
        (transaction("9" * 5000, TS, 1.0), "not a card number"),
        (transaction(9999999999999999999, TS, 1.0), "not a card number"),  # 19 digits, above 2^63 - 1
        (b'{"x": ' + b"[" * 20000 + b"]" * 20000 + b"}", "not usable JSON"),
    ],
)
def test_bad_transactions_are_reported_with_a_reason_and_never_their_content(value, reason):
    [_good_before, _good_after], [bad] = _parse_between_good_ones(value)
    assert reason in bad.reason
    assert bad.ref.offset == 1
    assert str(CARD) not in bad.reason


def test_a_value_that_is_not_base64_is_reported():
    event = msk_event([transaction(CARD, TS, 1.0), transaction(CARD, TS, 2.0)])
    event["records"][f"{c.TRANSACTIONS_TOPIC}-0"][1]["value"] = "not*base64!"
    valid, [bad] = parse_event(event, parse_transaction)
    assert len(valid) == 1 and "base64" in bad.reason


def test_a_record_without_a_value_is_reported():
    event = msk_event([transaction(CARD, TS, 1.0)])
    del event["records"][f"{c.TRANSACTIONS_TOPIC}-0"][0]["value"]
    assert "no value" in parse_event(event, parse_transaction)[1][0].reason


def test_an_empty_batch_has_nothing_to_parse():
    assert parse_event(msk_event([]), parse_transaction) == ([], [])
    assert parse_event({"eventSource": "aws:kafka", "records": {}}, parse_transaction) == ([], [])


def test_an_aggregate_message_parses_into_a_streaming_record_stamped_with_its_event_time():
    [agg], _ = parse_event(msk_event([aggregate(CARD, TS, 3, 21.5, TS - 60)], topic=c.AGGREGATES_TOPIC), parse_aggregate)
    assert agg.as_record() == {c.CC_NUM: CARD, c.NUM_TRANS_LAST_10M: 3, c.AVG_AMT_LAST_10M: 21.5,
                               c.TRANS_TIME: TS, c.PREV_TRANS_TIME: TS - 60}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (aggregate(CARD, TS, 0, 1.0, None), "num_trans_last_10m is out of range"),
        (aggregate(CARD, TS, 2.5, 1.0, None), "not a whole number"),
        (aggregate(CARD, TS, 2, float("inf"), None), "NaN"),
        (aggregate(CARD, TS, 2, 1.0, TS + 1), "prev_trans_ts is after trans_ts"),
    ],
)
def test_bad_aggregates_are_reported(message, reason):
    raw = message if not isinstance(message, dict) else __import__("json").dumps(message).replace("Infinity", "NaN").encode()
    _, [bad] = parse_event(msk_event([raw], topic=c.AGGREGATES_TOPIC), parse_aggregate)
    assert reason in bad.reason


def _parse_between_good_ones(value):
    return parse_event(msk_event([transaction(CARD, TS, 1.0), value, transaction(CARD, TS, 2.0)]), parse_transaction)


def test_base64_of_the_builder_round_trips():
    assert base64.b64decode(msk_event([b"abc"])["records"][f"{c.TRANSACTIONS_TOPIC}-0"][0]["value"]) == b"abc"


@pytest.mark.parametrize("key", [None, "NDExMTExMTExMTExMTExMQ==", "absent"])
def test_records_with_a_null_absent_or_present_key_and_byte_array_headers_parse(key):
    event = msk_event([transaction(CARD, TS, 5.0)], key=key)
    assert event["records"][f"{c.TRANSACTIONS_TOPIC}-0"][0]["headers"][0]["headerKey"][:2] == [104, 101]
    [tx], invalid = parse_event(event, parse_transaction)
    assert invalid == [] and tx.cc_num == CARD


@pytest.mark.parametrize("records", [None, {}, []], ids=["null", "empty-object", "empty-list"])
def test_an_event_without_records_parses_to_nothing(records):
    # Given an MSK event whose "records" is null or empty (a key it may also lack)
    for event in ({"eventSource": "aws:kafka", "records": records}, {"eventSource": "aws:kafka"}):
        # Then there is nothing to parse and nothing to report
        assert parse_event(event, parse_transaction) == ([], [])
