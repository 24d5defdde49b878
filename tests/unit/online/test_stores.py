"""The two online store backends keep the same semantics; the SageMaker one sends exact requests."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import boto3
import pytest
from botocore.stub import Stubber

from fraudstream import contract as c
from fraudstream.feature_puts import put_concurrently
from fraudstream.online.stores import EmbeddedOnlineStore, FeatureStoreOnlineStore, StoreError
from fraudstream.paths import REPO

STREAM, BATCH = c.STREAMING_FEATURE_GROUP, c.BATCH_FEATURE_GROUP


def streaming_record(card, ts, count=1, average=10.0, prev=None):
    return {c.CC_NUM: card, c.NUM_TRANS_LAST_10M: count, c.AVG_AMT_LAST_10M: average, c.TRANS_TIME: ts, c.PREV_TRANS_TIME: prev}


# --- embedded -------------------------------------------------------------------------------------


def test_embedded_store_returns_none_for_unknown_cards_and_the_record_for_known_ones(tmp_path):
    store = EmbeddedOnlineStore(tmp_path / "store.sqlite")
    store.put_record(STREAM, streaming_record(1, 100.0))
    assert store.get_records({STREAM: [1, 2], BATCH: [1]}) == {STREAM: {1: streaming_record(1, 100.0), 2: None}, BATCH: {1: None}}


def test_embedded_store_keeps_the_latest_event_time_whatever_the_write_order(tmp_path):
    store = EmbeddedOnlineStore(tmp_path / "store.sqlite")
    store.put_record(STREAM, streaming_record(1, 200.0, count=2))
    store.put_record(STREAM, streaming_record(1, 100.0, count=1))  # late, replayed message
    assert store.get_records({STREAM: [1]})[STREAM][1][c.NUM_TRANS_LAST_10M] == 2
    store.put_record(STREAM, streaming_record(1, 300.0, count=3))
    assert store.get_records({STREAM: [1]})[STREAM][1][c.NUM_TRANS_LAST_10M] == 3


def test_embedded_store_expires_records_after_the_ttl_when_one_is_set(tmp_path):
    now = [1000.0]
    store = EmbeddedOnlineStore(tmp_path / "store.sqlite", ttl_seconds=60, clock=lambda: now[0])
    store.put_record(STREAM, streaming_record(1, 950.0))
    assert store.get_records({STREAM: [1]})[STREAM][1] is not None
    now[0] = 1011.0
    assert store.get_records({STREAM: [1]})[STREAM][1] is None


def test_embedded_store_is_shared_by_separate_processes(tmp_path):
    path = tmp_path / "store.sqlite"
    code = (
        "import sys; from fraudstream.online.stores import EmbeddedOnlineStore; "
        f"EmbeddedOnlineStore(sys.argv[1]).put_record({STREAM!r}, {streaming_record(7, 500.0, count=4)!r})"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert EmbeddedOnlineStore(path).get_records({STREAM: [7]})[STREAM][7][c.NUM_TRANS_LAST_10M] == 4


# --- SageMaker Feature Store (Stubber checks every request against the real API model) -------------


@pytest.fixture
def runtime():
    client = boto3.client("sagemaker-featurestore-runtime", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _item(group, card, values):
    return {"FeatureGroupName": group, "RecordIdentifierValueAsString": str(card),
            "Record": [{"FeatureName": k, "ValueAsString": v} for k, v in values.items()]}


@pytest.mark.aws_component("predict")
def test_one_batch_get_record_call_reads_the_1_week_records_of_all_cards(runtime):
    client, stubber = runtime
    stubber.add_response(
        "batch_get_record",
        {"Records": [_item(BATCH, 2, {"cc_num": "2", "trans_time": "86400.0", "last_trans_time": "99.0",
                                      "num_trans_day_1": "9", "amt_sum_day_1": "3.25"})],
         "Errors": [], "UnprocessedIdentifiers": []},
        {"Identifiers": [{"FeatureGroupName": BATCH, "RecordIdentifiersValueAsString": ["1", "2"]}]},
    )
    found = FeatureStoreOnlineStore(client).get_records({BATCH: [1, 2]})
    assert found[BATCH] == {1: None, 2: {c.CC_NUM: 2, c.TRANS_TIME: 86400.0, c.LAST_TRANS_TIME: 99.0,
                                         c.DAY_COUNTS[0]: 9, c.DAY_SUMS[0]: 3.25}}
    assert isinstance(found[BATCH][2][c.DAY_COUNTS[0]], int)


def test_one_batch_get_record_call_reads_both_groups_for_all_cards(runtime):
    # Not a call of either function (no aws_component): the predict function reads only the 1-week group
    client, stubber = runtime
    stubber.add_response(
        "batch_get_record",
        {"Records": [_item(STREAM, 1, {"cc_num": "1", "num_trans_last_10m": "2", "avg_amt_last_10m": "10.5",
                                       "trans_time": "100.0", "prev_trans_time": "40.0"})],
         "Errors": [], "UnprocessedIdentifiers": []},
        {"Identifiers": [{"FeatureGroupName": STREAM, "RecordIdentifiersValueAsString": ["1", "2"]},
                         {"FeatureGroupName": BATCH, "RecordIdentifiersValueAsString": ["1", "2"]}]},
    )
    found = FeatureStoreOnlineStore(client).get_records({STREAM: [1, 2], BATCH: [1, 2]})
    assert found[STREAM] == {1: streaming_record(1, 100.0, count=2, average=10.5, prev=40.0), 2: None}
    assert found[BATCH] == {1: None, 2: None}
    assert isinstance(found[STREAM][1][c.NUM_TRANS_LAST_10M], int)


@pytest.mark.aws_component("predict")
def test_requests_split_only_at_100_records_per_identifier_and_100_identifiers_per_call(runtime):
    client, stubber = runtime
    cards = list(range(1, 10_102))  # 102 chunks of at most 100 -> two calls
    chunks = [[str(x) for x in cards[i : i + 100]] for i in range(0, len(cards), 100)]
    identifiers = [{"FeatureGroupName": BATCH, "RecordIdentifiersValueAsString": ch} for ch in chunks]
    for request in (identifiers[:100], identifiers[100:]):
        stubber.add_response("batch_get_record", {"Records": [], "Errors": [], "UnprocessedIdentifiers": []},
                             {"Identifiers": request})
    found = FeatureStoreOnlineStore(client).get_records({BATCH: cards})
    assert len(found[BATCH]) == 10_101


@pytest.mark.aws_component("predict")
def test_unprocessed_identifiers_are_asked_again(runtime):
    client, stubber = runtime
    leftover = [{"FeatureGroupName": BATCH, "RecordIdentifiersValueAsString": ["2"]}]
    stubber.add_response("batch_get_record", {"Records": [], "Errors": [], "UnprocessedIdentifiers": leftover},
                         {"Identifiers": [{"FeatureGroupName": BATCH, "RecordIdentifiersValueAsString": ["1", "2"]}]})
    stubber.add_response("batch_get_record",
                         {"Records": [_item(BATCH, 2, {"cc_num": "2", "num_trans_day_1": "1", "amt_sum_day_1": "5.0",
                                                       "trans_time": "86400.0"})], "Errors": [], "UnprocessedIdentifiers": []},
                         {"Identifiers": leftover})
    found = FeatureStoreOnlineStore(client, sleep=lambda _s: None).get_records({BATCH: [1, 2]})
    assert found[BATCH][2][c.DAY_COUNTS[0]] == 1


@pytest.mark.aws_component("predict")
def test_record_errors_fail_the_read_rather_than_score_on_partial_data(runtime):
    client, stubber = runtime
    stubber.add_response("batch_get_record", {"Records": [], "UnprocessedIdentifiers": [], "Errors": [
        {"FeatureGroupName": BATCH, "RecordIdentifierValueAsString": "1", "ErrorCode": "InternalFailure", "ErrorMessage": "boom"}]})
    with pytest.raises(StoreError, match="InternalFailure"):
        FeatureStoreOnlineStore(client).get_records({BATCH: [1]})


@pytest.mark.aws_component("aggregate")
def test_put_record_sends_every_value_as_a_string_and_leaves_out_missing_ones(runtime):
    client, stubber = runtime
    stubber.add_response("put_record", {}, {"FeatureGroupName": STREAM, "Record": [
        {"FeatureName": "cc_num", "ValueAsString": "4111111111111111"},
        {"FeatureName": "num_trans_last_10m", "ValueAsString": "1"},
        {"FeatureName": "avg_amt_last_10m", "ValueAsString": "12.34"},
        {"FeatureName": "trans_time", "ValueAsString": "1700000000.25"},
    ]})
    FeatureStoreOnlineStore(client).put_record(STREAM, streaming_record(4111111111111111, 1700000000.25, average=12.34))


# --- many records -----------------------------------------------------------------------------------


def aggregates(cards: int) -> list[dict]:
    return [{c.CC_NUM: 4000_0000_0000_0000 + i, c.DAY_COUNTS[0]: i % 7 + 1, c.DAY_SUMS[0]: 10.5 + i,
             c.TRANS_TIME: 1_652_572_800.0 + i} for i in range(cards)]


class CallbackStore:
    """A store whose put_record is a given function of the record."""

    def __init__(self, put):
        self.put = put

    def put_record(self, group, record):
        self.put(record)


def test_concurrent_puts_write_every_record_with_bounded_concurrency():
    # Given a put that records how many calls overlap
    in_flight, peak, lock = 0, 0, threading.Lock()

    def put(row):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.002)
        with lock:
            in_flight -= 1

    # When 200 rows are loaded 4 at a time
    result = put_concurrently(CallbackStore(put), BATCH, aggregates(200), concurrency=4)
    # Then all are written and never more than 4 were in flight
    assert (result.written, result.failed) == (200, [])
    assert 1 < peak <= 4


def test_concurrent_puts_report_a_failing_card_and_writes_the_others():
    bad = aggregates(10)[3][c.CC_NUM]

    def put(row):
        if row[c.CC_NUM] == bad:
            raise RuntimeError("ValidationException: bad record")

    result = put_concurrently(CallbackStore(put), BATCH, aggregates(10), concurrency=3)
    assert result.written == 9 and [(card, str(error)) for card, error in result.failed] == [
        (bad, "ValidationException: bad record")]


def test_putting_the_same_records_twice_leaves_the_group_as_it_was(tmp_path):
    store = EmbeddedOnlineStore(tmp_path / "store.sqlite")
    rows = aggregates(50)
    for _ in range(2):
        store.put_records(BATCH, rows, concurrency=8)
    found = store.get_records({BATCH: [r[c.CC_NUM] for r in rows]})[BATCH]
    assert [found[r[c.CC_NUM]] for r in rows] == rows


def test_the_embedded_store_writes_many_records_in_one_go_with_the_newest_winning(tmp_path):
    store = EmbeddedOnlineStore(tmp_path / "store.sqlite")
    store.put_record(STREAM, streaming_record(1, 500.0, count=5))
    done = []
    result = store.put_records(STREAM, [streaming_record(1, 400.0, count=4),  # older than the stored one
                                        streaming_record(2, 100.0, count=1), streaming_record(2, 200.0, count=2),
                                        streaming_record(2, 150.0, count=9)], concurrency=4, on_done=lambda: done.append(1))
    assert (result.written, result.failed, len(done)) == (4, [], 4)
    found = store.get_records({STREAM: [1, 2]})[STREAM]
    assert (found[1][c.NUM_TRANS_LAST_10M], found[2][c.NUM_TRANS_LAST_10M]) == (5, 2)


def test_a_record_the_embedded_store_cannot_take_fails_the_whole_write_reported_per_card(tmp_path):
    store = EmbeddedOnlineStore(tmp_path / "store.sqlite")
    bad = {c.CC_NUM: 3, c.NUM_TRANS_LAST_10M: 1}  # no event time
    result = store.put_records(STREAM, [streaming_record(2, 100.0), bad], concurrency=1)
    assert result.written == 0 and [card for card, _ in result.failed] == [2, 3]
    assert store.get_records({STREAM: [2]})[STREAM][2] is None  # nothing half-written


OPEN_AND_WRITE = """
import sys, time
sys.path.insert(0, sys.argv[1])
from fraudstream import contract as c
from fraudstream.online.stores import EmbeddedOnlineStore
card = int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()  # the barrier: every process waits here until the test releases them all at once
started = time.monotonic()
EmbeddedOnlineStore(sys.argv[2]).put_record(c.STREAMING_FEATURE_GROUP, {c.CC_NUM: card, c.NUM_TRANS_LAST_10M: 1,
    c.AVG_AMT_LAST_10M: 1.0, c.TRANS_TIME: 100.0, c.PREV_TRANS_TIME: None})
print(started, time.monotonic(), flush=True)
"""


def test_processes_creating_a_fresh_store_at_once_never_fail(tmp_path):
    # Given many fresh stores, each created by three processes released together from a barrier
    failures, overlapped = [], 0
    for trial in range(20):
        path = tmp_path / f"store-{trial}.sqlite"
        runs = [subprocess.Popen([sys.executable, "-c", OPEN_AND_WRITE, str(REPO), str(path), str(card)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for card in (1, 2, 3)]
        assert [run.stdout.readline().strip() for run in runs] == ["ready"] * 3  # all imported, all waiting
        for run in runs:
            run.stdin.write("go\n")
        for run in runs:
            run.stdin.flush()
        spans = []
        for run in runs:
            out, err = run.communicate(timeout=60)
            if run.returncode:
                failures.append(err.strip().splitlines()[-1])
            else:
                spans.append(tuple(map(float, out.split())))
        # (the monotonic clock is the system's: the processes' spans compare)
        overlapped += len(spans) == 3 and max(start for start, _ in spans) < min(end for _, end in spans)
        # Then every process wrote its record
        found = EmbeddedOnlineStore(path).get_records({STREAM: [1, 2, 3]})[STREAM]
        assert failures or all(found[card] is not None for card in (1, 2, 3))
    assert failures == []
    assert overlapped > 0  # the three opened the fresh store at the same time, or the test proved nothing
