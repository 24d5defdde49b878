"""The predict handler's logic: each Flink message scored as it is, one store read and one model call per batch,
verdicts in place order, Flink's refused records reported, logs and metrics."""

from __future__ import annotations

import json

import pytest

from fraudstream import contract as c
from fraudstream.online import backends, predict
from fraudstream.online import telemetry as t
from fraudstream.online.aggregate import handle_aggregate_event
from fraudstream.online.messages import parse_event, parse_transaction_features
from fraudstream.online.scorers import ModelOutputError
from fraudstream.online.settings import ConfigurationError, aggregate_settings, predict_settings
from fraudstream.online.verdict import Verdict
from tests.support.doubles import ConstantScorer, MemoryStore, RecordingStore
from tests.support.events import features_message, invalid_report, msk_event

CARD, OTHER, THIRD = 4111111111111111, 4000123456789010, 4000123456789028
DAY = 19_675  # 2023-11-14
T = DAY * c.SECONDS_PER_DAY + 12 * 3600.0  # noon
STREAM, BATCH = c.STREAMING_FEATURE_GROUP, c.BATCH_FEATURE_GROUP
FEATURES, INVALID = c.TRANSACTION_FEATURES_TOPIC, c.INVALID_TRANSACTIONS_TOPIC
PREDICT = predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": "unused"})


@pytest.fixture
def store(tmp_path):
    return RecordingStore(tmp_path / "store.sqlite")


class ReadLog(MemoryStore):
    """A store that remembers what each read asked for."""

    def __init__(self):
        super().__init__()
        self.requests = []

    def get_records(self, requests):
        self.requests.append({group: list(cards) for group, cards in requests.items()})
        return super().get_records(requests)


def week_record(card, tiles=None):
    """The card's nightly record of DAY: {k: (count, sum)} for the k-th day before."""
    tiles = tiles or {}
    return {c.CC_NUM: card, c.TRANS_TIME: float(DAY * c.SECONDS_PER_DAY), c.LAST_TRANS_TIME: T - 86_400,
            **{c.DAY_COUNTS[k - 1]: tiles.get(k, (0, 0.0))[0] for k in range(1, c.WEEK_TILES + 1)},
            **{c.DAY_SUMS[k - 1]: tiles.get(k, (0, 0.0))[1] for k in range(1, c.WEEK_TILES + 1)}}


def features_event(messages, partition=0, first_offset=0):
    return msk_event(messages, topic=FEATURES, partition=partition, first_offset=first_offset)


def parsed(messages, **place):
    valid, invalid = parse_event(features_event(messages, **place), parse_transaction_features)
    assert invalid == []
    return valid


def verdict_lines(logs):
    return [r for r in logs.records() if str(r.get("message", "")).startswith("Prediction:")]


def emf(capsys) -> dict:
    """The batch's metrics as CloudWatch reads them, each summed (EMF may carry value lists)."""
    t.metrics.flush_metrics()
    record = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line][-1]
    return {k: sum(v) if isinstance(v, list) else v for k, v in record.items()}


# --- One read, one call, each message as it is ----------------------------------------------------------


def test_a_batch_costs_one_read_of_only_the_1_week_group_and_one_model_call():
    store, scorer = ReadLog(), ConstantScorer()
    messages = [features_message(CARD + i % 7, T + i, 10.0, offset=i) for i in range(100)]
    assert predict.handle_predict_event(features_event(messages), store, scorer, PREDICT)["transactions"] == 100
    assert store.requests == [{BATCH: [CARD + i for i in range(7)]}]  # each card once; never the 10-minute group
    assert (scorer.calls, len(scorer.rows)) == (1, 100)


def test_several_cards_and_a_late_message_give_one_verdict_per_transaction_and_the_late_one_is_counted(
        store, logs, capsys):
    # Given a batch of three cards, one transaction of which came behind Flink's watermark
    messages = [features_message(CARD, T, 10.0, offset=0),
                features_message(OTHER, T + 1, 20.0, offset=1),
                features_message(CARD, T + 2, 30.0, offset=2, count_10m=2, sum_10m=40.0, prev_ts=T, today=(2, 40.0)),
                features_message(THIRD, T - 3600, 5.0, offset=3, late=True),
                features_message(OTHER, T + 4, 1.0, offset=4, count_10m=2, sum_10m=21.0, prev_ts=T + 1,
                                 today=(2, 21.0))]
    scorer = ConstantScorer()
    # When it is handled
    summary = predict.handle_predict_event(features_event(messages), store, scorer, PREDICT)
    # Then each transaction has one verdict, the late one flagged, and the batch took one read and one call
    assert summary == {"transactions": 5, "fraud": 0, "late": 1, "invalid": 0, "duplicates": 0, "published": 0}
    lines = verdict_lines(logs)
    assert [(line["offset"], line["late"]) for line in lines] == [(0, False), (1, False), (2, False), (3, True),
                                                                  (4, False)]
    assert (store.reads, scorer.calls) == (1, 1)
    assert emf(capsys)[t.LATE_TRANSACTIONS] == 1.0


def test_each_message_is_scored_with_its_own_features_whatever_the_order_of_delivery(store):
    # Flink's messages of one card, delivered in reverse: each keeps the features Flink computed for it
    messages = [features_message(CARD, T + 20, 30.0, offset=2, count_10m=3, sum_10m=60.0, prev_ts=T + 10,
                                 today=(3, 60.0)),
                features_message(CARD, T + 10, 20.0, offset=1, count_10m=2, sum_10m=30.0, prev_ts=T, today=(2, 30.0)),
                features_message(CARD, T, 10.0, offset=0)]
    batch = predict.predict(parsed(messages), store, ConstantScorer(), PREDICT)
    assert [v.offset for v in batch.verdicts] == [0, 1, 2]
    assert [v.features[c.NUM_TRANS_LAST_10M] for v in batch.verdicts] == [1, 2, 3]
    assert [v.features[c.AVG_AMT_LAST_10M] for v in batch.verdicts] == [10.0, 15.0, 20.0]
    assert [v.features[c.SECS_SINCE_PREV_TX] for v in batch.verdicts] == [c.SECS_SINCE_PREV_TX_CAP, 10.0, 10.0]
    assert [v.features[c.NUM_TRANS_LAST_1W] for v in batch.verdicts] == [1, 2, 3]


def test_verdicts_come_in_the_order_of_their_transactions_places_not_of_delivery(store):
    event = features_event([features_message(CARD, T, 1.0, partition=2, offset=5)], partition=1, first_offset=90)
    event["records"].update(features_event([features_message(OTHER, T, 1.0, partition=0, offset=7),
                                            features_message(CARD, T + 1, 1.0, partition=2, offset=3)],
                                           partition=0, first_offset=10)["records"])
    batch = predict.predict(parse_event(event, parse_transaction_features)[0], store, ConstantScorer(), PREDICT)
    assert [v.place() for v in batch.verdicts] == [(c.TRANSACTIONS_TOPIC, 0, 7), (c.TRANSACTIONS_TOPIC, 2, 3),
                                                   (c.TRANSACTIONS_TOPIC, 2, 5)]


def test_the_week_comes_from_the_cards_record_and_a_card_without_one_is_scored_and_counted(store, capsys, logs):
    # Given OTHER's nightly record (4 transactions the day before, 2 a week before) and none for CARD
    store.inner.put_record(BATCH, week_record(OTHER, {1: (4, 200.0), 7: (2, 30.0), 8: (9, 900.0)}))
    event = features_event([features_message(CARD, T, 10.0, offset=0), features_message(OTHER, T, 100.0, offset=1)])
    # When the batch is handled at T + 3
    predict.handle_predict_event(event, store, ConstantScorer(), PREDICT, now=lambda: T + 3)
    lines = {line["offset"]: line for line in verdict_lines(logs)}
    # Then CARD is scored on Flink's values alone and OTHER's week holds its 6 transactions and this one
    assert (lines[0]["features"][c.NUM_TRANS_LAST_1W], lines[0]["features"][c.AMT_RATIO2]) == (1, 1.0)
    assert lines[0].get("batch_record_age_s") is None  # no record: Powertools leaves the key out
    assert (lines[1]["features"][c.NUM_TRANS_LAST_1W], lines[1]["features"][c.AVG_AMT_LAST_1W]) == (7, 330.0 / 7)
    assert lines[1]["batch_record_age_s"] == 12 * 3600.0  # the transaction's time minus the record's cutoff
    metrics = emf(capsys)
    assert (metrics[t.CARDS_MISSING_BATCH], metrics[t.END_TO_END_LAG]) == (1.0, 3.0)


def test_the_10_minute_records_the_aggregate_function_writes_never_change_a_verdict(store):
    # Given a batch scored once
    messages = [features_message(CARD, T + i, 10.0 * (i + 1), offset=i, count_10m=i + 1,
                                 sum_10m=sum(10.0 * (j + 1) for j in range(i + 1)), today=(i + 1, 10.0 * (i + 1)),
                                 prev_ts=None if i == 0 else T + i - 1) for i in range(3)]
    first = predict.predict(parsed(messages), store, ConstantScorer(), PREDICT).verdicts
    # When the aggregate function writes the card's newest 10-minute record, and the batch is delivered again
    handle_aggregate_event(features_event(messages), store, aggregate_settings({}))
    again = predict.predict(parsed(messages), store, ConstantScorer(), PREDICT).verdicts
    # Then every verdict is the same: the predict function reads nothing Flink or the aggregate function race
    assert store.inner.get_records({STREAM: [CARD]})[STREAM][CARD] is not None
    assert again == first


def test_ten_thousand_messages_of_one_card_in_one_batch_take_one_read_and_one_call(store):
    scorer = ConstantScorer()
    messages = [features_message(CARD, T + i, 1.0, offset=i, count_10m=min(i + 1, 601), sum_10m=float(min(i + 1, 601)),
                                 today=(i + 1, float(i + 1)), prev_ts=None if i == 0 else T + i - 1)
                for i in range(10_000)]
    batch = predict.predict(parsed(messages), store, scorer, PREDICT)
    counts = [v.features[c.NUM_TRANS_LAST_10M] for v in batch.verdicts]
    assert counts[:3] == [1, 2, 3] and counts[599:602] == [600, 601, 601] and counts[-1] == 601
    assert batch.verdicts[-1].features[c.NUM_TRANS_LAST_1W] == 10_000
    assert (store.reads, scorer.calls, len(scorer.rows)) == (1, 1, 10_000)


# --- Logs and metrics ------------------------------------------------------------------------------------


def test_each_verdict_is_one_seed_format_line_in_a_structured_record_with_a_masked_card(store, logs):
    messages = [features_message(CARD, T, 12.0, partition=2, offset=40, tid="t-40"),
                features_message(CARD, T + 5, 13.0, partition=2, offset=41, tid="t-41", count_10m=2, sum_10m=25.0,
                                 prev_ts=T, today=(2, 25.0))]
    predict.handle_predict_event(features_event(messages, first_offset=700), store, ConstantScorer(score=0.981234),
                                 PREDICT)
    verdicts = verdict_lines(logs)
    assert verdicts[1]["message"] == ("Prediction: FRAUD (0.981234), num last 10m: 2, avg amt last 10m: 12.50, "
                                      "card num: 411111******1111, amount: 13.00")
    # named by the transaction's place on the transactions topic, not the message's on the features topic
    assert (verdicts[1]["topic"], verdicts[1]["partition"], verdicts[1]["offset"]) == (c.TRANSACTIONS_TOPIC, 2, 41)
    assert verdicts[1]["tid"] == "t-41" and verdicts[1]["late"] is False
    assert verdicts[1]["verdict"] == "FRAUD" and verdicts[1]["score"] == 0.981234
    assert set(c.ALL_FEATURES) <= set(verdicts[1]["features"])
    assert Verdict.from_log(verdicts[1]).place() == (c.TRANSACTIONS_TOPIC, 2, 41)
    assert str(CARD) not in logs.text


def test_emf_metrics_count_transactions_verdicts_late_invalid_records_and_missing_cards(store, capsys, logs):
    event = features_event([features_message(CARD, T, 12.0, offset=0), b"garbage",
                            features_message(OTHER, T, 5.0, offset=2, late=True)])
    predict.handle_predict_event(event, store, ConstantScorer(score=0.9), PREDICT)
    metrics = emf(capsys)
    assert (metrics[t.TRANSACTIONS], metrics[t.FRAUD_VERDICTS], metrics[t.INVALID_RECORDS]) == (2.0, 2.0, 1.0)
    assert (metrics[t.LATE_TRANSACTIONS], metrics[t.CARDS_MISSING_BATCH], metrics[t.DUPLICATE_TRANSACTIONS]) == (
        1.0, 2.0, 0.0)
    assert t.ENDPOINT_LATENCY in metrics
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == t.NAMESPACE


def test_the_predict_path_refuses_a_model_trained_on_another_feature_set():
    scorer = ConstantScorer()
    scorer.feature_set = "v1"
    with pytest.raises(ConfigurationError, match="FEATURE_SET=v2 but the model expects feature set v1"):
        backends.check_model(PREDICT, scorer)
    backends.check_model(predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": "x", "FEATURE_SET": "v1"}), scorer)


# --- Flink's refused records: its invalid-transactions topic -------------------------------------------------


def test_each_refused_record_is_logged_with_its_place_and_reason_never_its_content(store, logs, capsys):
    # Given Flink's reports of two records it refused on the transactions topic
    event = msk_event([invalid_report(12, partition=1), invalid_report(13, "amount is missing or not a number", 1)],
                      topic=INVALID, partition=2, first_offset=500)
    scorer = ConstantScorer()
    # When the predict function's invalid-transactions trigger delivers them
    summary = predict.handle_predict_event(event, store, scorer, PREDICT)
    # Then each is one ERROR naming where the transaction sat and why, and nothing is read or scored
    refused = [r for r in logs.records() if r["message"] == "invalid transaction refused"]
    assert [(r["level"], r["topic"], r["partition"], r["offset"], r["reason"]) for r in refused] == [
        ("ERROR", c.TRANSACTIONS_TOPIC, 1, 12, "cc_num is missing or not a card number"),
        ("ERROR", c.TRANSACTIONS_TOPIC, 1, 13, "amount is missing or not a number")]
    assert summary == {"transactions": 0, "fraud": 0, "late": 0, "invalid": 2, "duplicates": 0, "published": 0}
    assert (store.reads, scorer.calls) == (0, 0) and not verdict_lines(logs)
    assert emf(capsys)[t.INVALID_RECORDS] == 2.0


def test_a_record_on_the_invalid_topic_that_is_not_a_report_is_skipped_and_counted(store, logs, capsys):
    event = msk_event([invalid_report(12), b"not json", {"offset": 3}], topic=INVALID, first_offset=60)
    predict.handle_predict_event(event, store, ConstantScorer(), PREDICT)
    skipped = [r for r in logs.records() if r["message"] == "invalid record skipped"]
    assert [(r["topic"], r["offset"]) for r in skipped] == [(INVALID, 61), (INVALID, 62)]
    assert len([r for r in logs.records() if r["message"] == "invalid transaction refused"]) == 1
    assert emf(capsys)[t.INVALID_RECORDS] == 3.0


def test_an_event_of_both_topics_scores_the_transactions_and_reports_the_refused_records(store, logs):
    event = features_event([features_message(CARD, T, 12.0, offset=4)])
    event["records"].update(msk_event([invalid_report(5)], topic=INVALID)["records"])
    summary = predict.handle_predict_event(event, store, ConstantScorer(), PREDICT)
    assert (summary["transactions"], summary["invalid"]) == (1, 1)
    assert [r["offset"] for r in verdict_lines(logs)] == [4]
    assert [r["offset"] for r in logs.records() if r["message"] == "invalid transaction refused"] == [5]


def test_a_refused_records_content_never_reaches_the_log_even_when_a_report_carries_it(store, logs):
    # A report is Flink's place and reason; anything else a message carries is not logged
    report = {**invalid_report(9), c.CC_NUM: CARD, c.AMOUNT: 12.0}
    predict.handle_predict_event(msk_event([report], topic=INVALID), store, ConstantScorer(), PREDICT)
    assert str(CARD) not in logs.text
    assert [r["offset"] for r in logs.records() if r["message"] == "invalid transaction refused"] == [9]


# --- Fail closed: a model answer that is not one probability per row fails the batch ----------------------


class AnswersWith:
    feature_set = "v2"

    def __init__(self, answer):
        self.answer = answer

    def score(self, rows):
        return self.answer(len(rows))


@pytest.mark.parametrize("answer, reason", [
    (lambda n: [float("nan")] * n, "not probabilities"),
    (lambda n: [7.5] * n, "not probabilities"),
    (lambda n: [-3.0] * n, "not probabilities"),
    (lambda n: [0.5] * (n - 1), "returned 1 scores for 2 rows"),
    (lambda n: [None] * n, "not probabilities"),
])
def test_a_score_that_is_not_a_probability_fails_the_batch_and_is_never_a_verdict(store, logs, capsys, answer, reason):
    event = features_event([features_message(CARD, T, 12.0, offset=0), features_message(OTHER, T, 5.0, offset=1)])
    with pytest.raises(ModelOutputError, match=reason):
        predict.handle_predict_event(event, store, AnswersWith(answer), PREDICT)
    assert not [r for r in logs.records() if "verdict" in r]
    assert [r["reason"] for r in logs.records() if r["level"] == "ERROR"] and reason in logs.text
    assert emf(capsys)[t.INVALID_MODEL_OUTPUT] == 1.0


class FailingWriter:
    """The verdicts topic's writer, recording what it was handed; fails while ``down``."""

    def __init__(self, down: bool = False) -> None:
        self.down, self.handed = down, []

    def publish(self, scored):
        if self.down:
            raise ConnectionError("brokers unreachable")
        self.handed.append([(m.features_ref.offset, v.place().offset) for m, v in scored])
        return len(scored)


def test_each_verdict_goes_to_the_verdicts_topic_with_its_features_place_before_it_is_logged(store, logs):
    event = features_event([features_message(CARD, T, 12.0, offset=7), features_message(OTHER, T, 5.0, offset=8)],
                           first_offset=30)
    # When the brokers are down, the batch fails before any verdict is logged (its retry will log them once)
    with pytest.raises(ConnectionError):
        predict.handle_predict_event(event, store, ConstantScorer(), PREDICT, writer=FailingWriter(down=True))
    assert not verdict_lines(logs)
    # and once they are up, every verdict is handed over with the features offset it was scored from, then logged
    writer = FailingWriter()
    summary = predict.handle_predict_event(event, store, ConstantScorer(), PREDICT, writer=writer)
    assert writer.handed == [[(30, 7), (31, 8)]] and summary["published"] == 2
    assert [v["offset"] for v in verdict_lines(logs)] == [7, 8]


# --- Each transaction counted once ---------------------------------------------------------------------------


def test_the_same_record_twice_in_a_batch_is_scored_once(store, logs):
    event = features_event([features_message(CARD, T, 12.0, offset=7)], first_offset=30)
    event["records"][f"{FEATURES}-0"] *= 2  # delivered twice in one batch
    summary = predict.handle_predict_event(event, store, ConstantScorer(), PREDICT)
    assert summary["transactions"] == 1 and summary["duplicates"] == 1
    assert [v["offset"] for v in verdict_lines(logs)] == [7]


def test_a_transaction_flink_emitted_twice_is_scored_once_and_the_repeat_named(store, logs):
    # Flink writes at least once: after a restart the same transaction (same place) comes again, later on the topic
    message = features_message(CARD, T, 12.0, partition=1, offset=7, tid="t-7")
    event = features_event([message, features_message(OTHER, T, 3.0, offset=8), message], first_offset=100)
    summary = predict.handle_predict_event(event, store, ConstantScorer(), PREDICT)
    assert (summary["transactions"], summary["duplicates"]) == (2, 1)
    (skipped,) = [r for r in logs.records() if r["message"] == "duplicate transaction skipped"]
    assert (skipped["partition"], skipped["offset"], skipped["tid"]) == (1, 7, "t-7")
    assert skipped["duplicate_of"] == {"topic": FEATURES, "partition": 0, "offset": 100}


def test_transactions_of_one_id_at_different_places_are_each_scored(store):
    # The place is the transaction's identity (the tid is the producer's, and may repeat): none is dropped
    messages = [features_message(CARD, T + i, 12.0, offset=i, tid="tx-1") for i in range(3)]
    batch = predict.predict(parsed(messages), store, ConstantScorer(), PREDICT)
    assert [v.offset for v in batch.verdicts] == [0, 1, 2] and batch.duplicates == []


def test_an_empty_batch_reads_nothing_and_calls_no_model():
    store, scorer = ReadLog(), ConstantScorer()
    assert predict.predict([], store, scorer, PREDICT).verdicts == []
    assert (store.requests, scorer.calls) == ([], 0)
