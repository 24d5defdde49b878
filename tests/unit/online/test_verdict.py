"""One verdict shape: what the predict handler logs is what `fraudstream logs` and the local pipeline read back."""

from __future__ import annotations

import json

import pytest

from fraudstream import contract as c
from fraudstream.contract import RecordRef
from fraudstream.online.messages import parse_transaction_features
from fraudstream.online.verdict import UnreadableVerdict, Verdict
from tests.support.events import features_message

CARD = 4111111111111111
FEATURES = {c.AMOUNT: 12.0, c.NUM_TRANS_LAST_10M: 4, c.AVG_AMT_LAST_10M: 23.1, c.NUM_TRANS_LAST_1W: 9,
            c.AVG_AMT_LAST_1W: 40.0, c.SECS_SINCE_PREV_TX: 60.0}


def verdict(score: float, late: bool = False, batch_record_age_s: float | None = 3600.5) -> Verdict:
    # Flink's message of the transaction at offset 17 of partition 2 of the transactions topic (itself at offset
    # 900 of the features topic)
    tx = parse_transaction_features(RecordRef(c.TRANSACTION_FEATURES_TOPIC, 0, 900),
                                    features_message(CARD, 1_700_000_000.5, 12.0, partition=2, offset=17, tid="t1",
                                                     late=late))
    return Verdict.of(tx, FEATURES, score, threshold=0.25, batch_record_age_s=batch_record_age_s)


def test_a_verdict_names_its_transaction_by_its_place_on_the_transactions_topic():
    v = verdict(0.1)
    assert v.place() == (c.TRANSACTIONS_TOPIC, 2, 17)
    assert (v.card, v.amount, v.trans_ts, v.tid, v.late) == ("411111******1111", 12.0, 1_700_000_000.5, "t1", False)


def test_the_message_is_the_aws_sample_line_with_the_card_masked():
    assert verdict(0.981234).message() == ("Prediction: FRAUD (0.981234), num last 10m: 4, avg amt last 10m: 23.10, "
                                           "card num: 411111******1111, amount: 12.00")
    assert verdict(0.25).verdict == c.NOT_FRAUD  # FRAUD only above the threshold


@pytest.mark.parametrize("late, age", [(False, 3600.5), (True, None)])
def test_the_logged_fields_read_back_as_the_same_verdict_through_json(late, age):
    original = verdict(0.9, late=late, batch_record_age_s=age)
    record = json.loads(json.dumps({"level": "INFO", "message": original.message(), **original.log_fields()}))
    assert Verdict.from_log(record) == original
    assert (Verdict.from_log(record).late, Verdict.from_log(record).batch_record_age_s) == (late, age)
    assert "4111111111111111" not in json.dumps(record)


@pytest.mark.parametrize("logged", [None, "true", 1])
def test_only_a_logged_true_reads_back_as_late(logged):
    assert Verdict.from_log({**verdict(0.1).log_fields(), "late": logged}).late is False


@pytest.mark.parametrize("change, reason", [
    ({"verdict": "MAYBE"}, "unknown verdict"),
    ({"card": None}, "no card or features"),
    ({"score": "0.9"}, "score is not a number"),
    ({"features": {c.AVG_AMT_LAST_10M: 1.0}}, "num_trans_last_10m is not a number"),
])
def test_a_record_that_cannot_be_read_says_which_field(change, reason):
    with pytest.raises(UnreadableVerdict, match=reason):
        Verdict.from_log({**verdict(0.9).log_fields(), **change})


def test_a_record_without_event_time_or_coordinates_is_still_a_verdict():
    record = {k: v for k, v in verdict(0.1).log_fields().items() if k not in ("trans_ts", "topic", "partition", "offset")}
    read = Verdict.from_log(record)
    assert (read.trans_ts, read.offset, read.verdict) == (None, None, c.NOT_FRAUD)
    assert read.place() == ("", -1, -1)  # sorts before every verdict that has a place
