"""The predict handler's bounded wait for the 10-minute records of its own transactions (STREAMING_WAIT_MS).

A store whose aggregates arrive while the batch waits (as Flink's do) and a fake clock: exact features when
they arrive in time, today's fold-in when they do not, and only the lagging cards read again."""

from __future__ import annotations

from fraudstream import contract as c
from fraudstream.online import predict
from fraudstream.online.messages import parse_event, parse_transaction
from fraudstream.online.settings import predict_settings
from tests.support.doubles import ConstantScorer, MemoryStore
from tests.support.events import msk_event, transaction

CARD, OTHER = 4111111111111111, 4000123456789010
T = 1_700_000_000.0
STREAM = c.STREAMING_FEATURE_GROUP


def record(card, ts, count, average, prev=None):
    return {c.CC_NUM: card, c.NUM_TRANS_LAST_10M: count, c.AVG_AMT_LAST_10M: average, c.TRANS_TIME: ts,
            c.PREV_TRANS_TIME: prev}


class ArrivingStore(MemoryStore):
    """Records that reach the store after a number of reads, and a log of what each read asked for."""

    def __init__(self, arrivals: dict[int, list[dict]]):
        super().__init__()
        self.arrivals, self.requests = arrivals, []

    def get_records(self, requests):
        self.requests.append({g: sorted(cards) for g, cards in requests.items()})
        for aggregate in self.arrivals.pop(len(self.requests), []):
            self.put_record(STREAM, aggregate)
        return super().get_records(requests)


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def settings(wait_ms: int):
    return predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": "unused", "STREAMING_WAIT_MS": str(wait_ms)})


def rows(store, wait_ms, fake, txs):
    transactions = parse_event(msk_event(txs), parse_transaction)[0]
    found, _ = predict.online_feature_rows(transactions, store, STREAM, c.BATCH_FEATURE_GROUP,
                                           settings(wait_ms).streaming_wait_s, fake.sleep, fake.clock)
    return {(tx.cc_num, tx.trans_ts): features for tx, features, *_ in found}


def test_waiting_for_the_transactions_own_aggregate_gives_the_batch_definition():
    # Given CARD's record of T - 60 (two transactions of 10) in the store; a transaction of 8 at T - 10 that Flink
    # has counted but not yet emitted (another batch's); and Flink's aggregate of the transaction at T (count 4,
    # average (20 + 8 + 16) / 4 = 11) arriving at the third read
    store = ArrivingStore({3: [record(CARD, T, 4, 11.0, T - 10)]})
    store.put_record(STREAM, record(CARD, T - 60, 2, 10.0))
    fake = FakeTime()
    # When the batch may wait 500 ms
    features = rows(store, 500, fake, [transaction(CARD, T, 16.0)])
    # Then it read again until the aggregate was there, and the features are the record of the transaction itself
    # (the fold-in alone would give 3 and 12: it cannot see the transaction at T - 10)
    assert (features[(CARD, T)][c.NUM_TRANS_LAST_10M], features[(CARD, T)][c.AVG_AMT_LAST_10M]) == (4, 11.0)
    assert len(store.requests) == 3 and 0 < fake.now < 0.5


def test_without_a_wait_the_batch_reads_once_and_folds_in_as_before():
    store = ArrivingStore({2: [record(CARD, T, 4, 11.0, T - 10)]})
    store.put_record(STREAM, record(CARD, T - 60, 2, 10.0))
    features = rows(store, 0, FakeTime(), [transaction(CARD, T, 16.0)])
    assert len(store.requests) == 1
    assert (features[(CARD, T)][c.NUM_TRANS_LAST_10M], features[(CARD, T)][c.AVG_AMT_LAST_10M]) == (3, 12.0)


def test_an_aggregate_later_than_the_bound_leaves_the_fold_in_and_the_wait_stops_at_the_bound():
    store = ArrivingStore({})  # Flink never delivers
    store.put_record(STREAM, record(CARD, T - 60, 2, 10.0))
    fake = FakeTime()
    features = rows(store, 250, fake, [transaction(CARD, T, 16.0)])
    assert (features[(CARD, T)][c.NUM_TRANS_LAST_10M], features[(CARD, T)][c.AVG_AMT_LAST_10M]) == (3, 12.0)
    assert abs(fake.now - 0.25) < 1e-9 and len(store.requests) == 1 + 5  # 50 ms rounds


def test_only_the_lagging_cards_are_read_again_and_each_round_is_one_read():
    # Given OTHER's record already holds its transaction; CARD has no record yet, its aggregate arrives at read 2
    store = ArrivingStore({2: [record(CARD, T, 1, 16.0)]})
    store.put_record(STREAM, record(OTHER, T + 1, 1, 5.0))
    rows(store, 1000, FakeTime(), [transaction(CARD, T, 16.0), transaction(OTHER, T + 1, 5.0)])
    assert store.requests[1:] == [{STREAM: [CARD]}]


def test_a_cards_wait_ends_only_with_the_record_of_its_latest_transaction_of_the_batch():
    store = ArrivingStore({2: [record(CARD, T, 1, 16.0)], 3: [record(CARD, T + 5, 2, 10.0, T)]})
    features = rows(store, 1000, FakeTime(), [transaction(CARD, T, 16.0), transaction(CARD, T + 5, 4.0)])
    assert len(store.requests) == 3
    assert [features[(CARD, ts)][c.NUM_TRANS_LAST_10M] for ts in (T, T + 5)] == [1, 2]


def test_the_wait_reaches_the_handler_from_its_environment():
    assert settings(750).streaming_wait_s == 0.75 and settings(0).streaming_wait_s == 0.0


def test_the_handler_with_a_wait_scores_every_transaction_once():
    store = ArrivingStore({2: [record(CARD, T, 1, 16.0)]})
    scorer = ConstantScorer()
    summary = predict.handle_predict_event(msk_event([transaction(CARD, T, 16.0)]), store, scorer, settings(200))
    assert summary["transactions"] == 1 and len(scorer.rows) == 1
