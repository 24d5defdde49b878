"""Training/serving parity, the core promise: the model's features online are the batch features, bit for bit.

A generated history (cent amounts), with crafted edges added (transactions of one millisecond, the 10-minute
boundary, a millisecond that rounds into the next day, a card's first transaction, a card idle for longer than a
week), goes through both definitions:

- batch: fraudstream.offline.features.compute_features (the training features) and the batch_aggregates SQL
  (the nightly 1-week records, as of a cutoff day, from the transactions before it);
- online: the message Flink writes for each transaction, from a reference simulation of flink_sql/
  features_in_order.sql written here in plain Python (per card in (event ms, tid) order: the 10-minute count and
  sum over [ms - 10 min, ms] of the transactions up to this one, the previous one's ms, the day's count and sum
  so far, the totals of each of the 7 days before), sent through the predict handler's logic with the records in
  a store.

For the transactions of one day X, every feature of every transaction must be equal (==) whether the nightly
record's cutoff C is X (on time), X - 1 or X - 3 (the nightly run is late), X - 9 (it has not run for a week) or
X + 1 (a replay of older events).
"""

from __future__ import annotations

from collections import defaultdict, deque
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from fraudstream import contract as c
from fraudstream.offline import features
from fraudstream.offline.batch_sql import render_sql
from fraudstream.offline.generate import generate
from fraudstream.offline.generate_config import GeneratorConfig
from fraudstream.online import predict
from fraudstream.online.features import feature_vector
from fraudstream.online.messages import parse_event, parse_transaction_features
from fraudstream.online.settings import predict_settings
from fraudstream.online.stores import EmbeddedOnlineStore
from tests.support.doubles import ConstantScorer
from tests.support.events import features_message, msk_event

SETTINGS = predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": "unused"})
DAY_X = datetime(2022, 3, 10, tzinfo=timezone.utc)
X = int(DAY_X.timestamp()) // c.SECONDS_PER_DAY  # days since 1970-01-01 UTC
X0 = X * c.SECONDS_PER_DAY  # 00:00 UTC of day X, epoch seconds
# Every value the model sees and the ones it is built from.
COMPARED = tuple(dict.fromkeys((*c.AGGREGATE_COLUMNS, *c.ALL_FEATURES)))
TEN_MINUTE_FEATURES = {c.NUM_TRANS_LAST_10M, c.AVG_AMT_LAST_10M, c.AMT_RATIO1, c.COUNT_RATIO}
WEEK_FEATURES = {c.NUM_TRANS_LAST_1W, c.AVG_AMT_LAST_1W, c.AMT_RATIO1, c.AMT_RATIO2, c.COUNT_RATIO}

PEERS, FIRST_ON_X, IDLE = 4_000_000_000_000_001, 4_000_000_000_000_002, 4_000_000_000_000_003
CRAFTED = [  # (card, seconds after X0, amount, tid)
    # history three days and one day before, then one millisecond rounded into day X from 23:59:59.9996 of X - 1
    (PEERS, -3 * 86_400 + 500, 7.77, "d-0"), (PEERS, -86_400 + 100, 5.55, "e-0"), (PEERS, -300, 0.1, "e-1"),
    (PEERS, -0.0004, 0.2, "e-2"),
    (PEERS, 0, 0.3, "e-3"),  # the same millisecond as e-2: counted after it (tid order)
    # three transactions of one millisecond (one 0.4 ms early), counted in tid order, not by their position here
    (PEERS, 300, 10.01, "p-3"), (PEERS, 299.9996, 20.02, "p-1"), (PEERS, 300, 30.03, "p-2"),
    (PEERS, 900, 1.11, "q-1"),  # exactly 10 minutes after the peers: they are in its window
    (PEERS, 900.001, 2.22, "q-2"),  # 10 minutes and 1 ms after: they are not
    (FIRST_ON_X, 3_600, 99.99, "f-1"), (FIRST_ON_X, 3_601, 0.01, "f-2"),  # no history before day X
    (IDLE, -10 * 86_400 + 50, 42.0, "i-1"), (IDLE, 7_200, 17.5, "i-2"),  # its previous one is 10 days old
]


def _table(crafted) -> pa.Table:
    """A transactions table of (card, seconds after X0, amount, tid)."""
    return pa.table({
        c.TID: [tid for *_, tid in crafted],
        c.DATETIME: pa.array([DAY_X.replace(tzinfo=None) + timedelta(seconds=s) for _, s, _, _ in crafted],
                             type=pa.timestamp("us")),
        c.CC_NUM: pa.array([card for card, *_ in crafted], type=pa.int64()),
        c.AMOUNT: pa.array([amount for _, _, amount, _ in crafted], type=pa.float64()),
        c.FRAUD_LABEL: pa.array([0] * len(crafted), type=pa.int8()),
    })


def cents(amount: float) -> int:
    assert abs(amount * 100 - round(amount * 100)) < 1e-6, f"{amount} is not a cent value"
    return round(amount * 100)


def history(transactions: pa.Table) -> tuple[list[dict], object]:
    """(every transaction with its batch features, a DuckDB connection)."""
    con = features.connect()
    rows = features.compute_features(con, transactions).to_pylist()
    for row in rows:
        cents(row[c.AMOUNT])
    return rows, con


@pytest.fixture(scope="module")
def batch():
    config = GeneratorConfig(cards=20, transactions=8_000, fraud_ratio=0.05, seed=2024,
                             start=DAY_X - timedelta(days=10), end=DAY_X + timedelta(days=2))
    return history(pa.concat_tables([generate(config), _table(CRAFTED)]))


def batch_records(batch, cutoff_day: int) -> list[dict]:
    """The nightly job's records as of ``cutoff_day``, from the transactions before it only.

    The batch_aggregates SQL's default cutoff (the day after the newest transaction it is given) is used on the
    transactions before ``cutoff_day``; render_sql's explicit ``cutoff_day`` multiplies every tile by the number
    of transactions (its cutoff relation has one row per transaction), so it is not used here."""
    rows, con = batch
    con.register("features", pa.Table.from_pylist([r for r in rows if _day(r) < cutoff_day]))
    records = con.sql(render_sql("batch_aggregates")).fetch_arrow_table().to_pylist()
    assert {r[c.TRANS_TIME] for r in records} == {float(cutoff_day * c.SECONDS_PER_DAY)}
    return records


def _day(row) -> int:
    return c.event_ms(row[c.TRANS_TS]) // c.MS_PER_DAY


def flink_messages(rows: list[dict], since_ms: int | None = None) -> dict[str, dict]:
    """The message Flink writes for each transaction (by tid), from a plain reference of its in-order definition.

    ``since_ms``: Flink started then, with no state (it sees only the transactions from then on)."""
    ordered = sorted((r for r in rows if since_ms is None or c.event_ms(r[c.TRANS_TS]) >= since_ms),
                     key=lambda r: (c.event_ms(r[c.TRANS_TS]), r[c.TID]))
    offsets: dict[int, int] = defaultdict(int)
    by_card: dict[int, list[dict]] = defaultdict(list)
    places = {}
    for row in ordered:  # the transactions topic, keyed by card: each partition in (event time, arrival) order
        partition = row[c.CC_NUM] % c.TOPIC_PARTITIONS
        places[row[c.TID]] = (partition, offsets[partition])
        offsets[partition] += 1
        by_card[row[c.CC_NUM]].append(row)
    messages = {}
    for card, txs in by_card.items():
        day_totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # day -> [count, cents], the whole day
        for row in txs:
            totals = day_totals[c.event_ms(row[c.TRANS_TS]) // c.MS_PER_DAY]
            totals[0] += 1
            totals[1] += cents(row[c.AMOUNT])
        window: deque[tuple[int, int]] = deque()  # (ms, cents) of the last 10 minutes, in order
        today, previous = [None, 0, 0], None  # [day, count, cents] so far; the previous transaction's row
        for row in txs:
            ms = c.event_ms(row[c.TRANS_TS])
            day = ms // c.MS_PER_DAY
            window.append((ms, cents(row[c.AMOUNT])))
            while window[0][0] < ms - c.WINDOW_10M_SECONDS * 1000:
                window.popleft()
            if today[0] != day:
                today = [day, 0, 0]
            today[1] += 1
            today[2] += cents(row[c.AMOUNT])
            before = {k: day_totals.get(day - k, [0, 0]) for k in range(1, c.DAYS_BEFORE + 1)}
            partition, offset = places[row[c.TID]]
            messages[row[c.TID]] = features_message(
                card, row[c.TRANS_TS], row[c.AMOUNT], offset=offset, partition=partition, tid=row[c.TID],
                count_10m=len(window), sum_10m=sum(s for _, s in window) / 100,
                prev_ts=None if previous is None else previous[c.TRANS_TS],
                today=(today[1], today[2] / 100), days_before={k: (n, s / 100) for k, (n, s) in before.items()})
            previous = row
    return messages


def serve(rows, messages, records, store_path, day=X):
    """Score day ``day``'s transactions through the predict logic with ``records`` in the store; returns
    (batch row, verdict, model row sent) per transaction, and the parsed messages by tid."""
    store = EmbeddedOnlineStore(store_path)
    assert not store.put_records(c.BATCH_FEATURE_GROUP, records, 4).failed
    scored = [r for r in rows if c.event_ms(r[c.TRANS_TS]) // c.MS_PER_DAY == day]
    event = msk_event([messages[r[c.TID]] for r in scored], topic=c.TRANSACTION_FEATURES_TOPIC)
    parsed, invalid = parse_event(event, parse_transaction_features)
    assert invalid == []
    scorer = ConstantScorer()
    result = predict.predict(parsed, store, scorer, SETTINGS)
    assert scorer.calls == 1 and len(result.verdicts) == len(scored)
    by_tid = {r[c.TID]: r for r in scored}
    sent = dict(zip((m.tid for m in parsed), scorer.rows, strict=True))  # the model gets them in delivery order
    return [(by_tid[v.tid], v, sent[v.tid]) for v in result.verdicts], {m.tid: m for m in parsed}


def _same(online, batch) -> bool:
    """The same value, bit for bit (counts as integers)."""
    if isinstance(batch, int):
        return type(online) is int and online == batch
    return float(online).hex() == float(batch).hex()


def differences(served, names=COMPARED):
    """(tid, feature, online, batch) of every value of ``names`` that is not the batch's, bit for bit; with every
    name, the model rows too."""
    out = []
    for row, verdict, sent in served:
        out += [(row[c.TID], n, verdict.features[n], row[n]) for n in names if not _same(verdict.features[n], row[n])]
        if names != COMPARED:
            continue
        for feature_set in c.FEATURE_SETS:  # the rows the model gets, of either feature set
            if feature_vector(verdict.features, feature_set) != feature_vector(row, feature_set):
                out.append((row[c.TID], feature_set, feature_vector(verdict.features, feature_set), None))
        if sent != feature_vector(row, SETTINGS.feature_set):
            out.append((row[c.TID], "model row", sent, feature_vector(row, SETTINGS.feature_set)))
    return out


@pytest.mark.parametrize("cutoff", [X, X - 1, X - 3, X - 9, X + 1],
                         ids=["C==X", "C==X-1 (nightly run late)", "C==X-3 (a backlog)", "C==X-9 (no run for a week)",
                              "C==X+1 (replay)"])
def test_every_feature_of_every_transaction_equals_the_batch_features_bit_for_bit(batch, tmp_path, cutoff):
    rows, _ = batch
    served, _ = serve(rows, flink_messages(rows), batch_records(batch, cutoff), tmp_path / "store.sqlite")
    assert len(served) > 500
    assert differences(served) == []


def test_the_comparison_covers_the_cases_that_could_break_exactness(batch):
    rows, _ = batch
    day_x = [r for r in rows if c.event_ms(r[c.TRANS_TS]) // c.MS_PER_DAY == X]
    by_tid = {r[c.TID]: r for r in day_x}
    # windows of several transactions, whose averages are not whole numbers
    assert sum(r[c.NUM_TRANS_LAST_10M] > 1 for r in day_x) > 30
    assert sum(r[c.AVG_AMT_LAST_10M] != round(r[c.AVG_AMT_LAST_10M], 2) for r in day_x) > 10
    # one millisecond, rounded from the day before, counted in tid order; the 10-minute boundary inclusive
    # (e-1 is exactly 10 minutes before the p-s: in their window too)
    assert [by_tid[t][c.NUM_TRANS_LAST_10M] for t in ("e-2", "e-3", "p-1", "p-2", "p-3", "q-1", "q-2")] == [
        2, 3, 4, 5, 6, 4, 2]
    assert by_tid["e-3"][c.SECS_SINCE_PREV_TX] == 0.0
    # cards without a record at the cutoff, and records whose tiles hold history for the others
    records = {r[c.CC_NUM]: r for r in batch_records(batch, X)}
    assert FIRST_ON_X not in records and {r[c.CC_NUM] for r in day_x} - set(records) == {FIRST_ON_X}
    assert by_tid["i-2"][c.SECS_SINCE_PREV_TX] == c.SECS_SINCE_PREV_TX_CAP and records[IDLE][c.DAY_COUNTS[0]] == 0
    assert sum(r[c.DAY_COUNTS[6]] > 0 for r in records.values()) >= 20  # the 7th day back is in the week
    assert sum(r[c.DAY_COUNTS[7]] > 0 for r in records.values()) >= 20  # the 8th is not (unless the replay)


def test_with_the_nightly_run_late_the_days_since_its_cutoff_come_from_flink(batch, tmp_path):
    rows, _ = batch
    _, parsed = serve(rows, flink_messages(rows), batch_records(batch, X - 3), tmp_path / "store.sqlite")
    # Flink's totals of days X - 1 .. X - 3 are what the week takes for them: they must be there
    for k in (1, 2, 3):
        assert sum(m.num_trans_days_before[k - 1] > 0 for m in parsed.values()) > 500


def test_with_flink_started_at_the_cutoff_the_previous_transaction_comes_from_the_record(batch, tmp_path):
    # Given Flink started (with no state) at 00:00 of day X, and the nightly record of day X
    rows, _ = batch
    messages = flink_messages(rows, since_ms=X0 * 1000)
    served, parsed = serve(rows, messages, batch_records(batch, X), tmp_path / "store.sqlite")
    # Then each card's first transaction of the day, which Flink saw no transaction before, takes its previous
    # one from the record, and is exact
    firsts = [row for row, *_ in served if parsed[row[c.TID]].prev_event_ms is None]
    assert len(firsts) == len({row[c.CC_NUM] for row, *_ in served}) > 20
    assert sum(row[c.SECS_SINCE_PREV_TX] < c.SECS_SINCE_PREV_TX_CAP for row in firsts) > 15
    # and every value is exact but the 10-minute ones of the transactions whose window reaches before Flink started
    reaching_back = [s for s in served if c.event_ms(s[0][c.TRANS_TS]) - c.WINDOW_10M_SECONDS * 1000 < X0 * 1000]
    assert differences([s for s in served if s not in reaching_back]) == []
    assert differences(reaching_back, [n for n in COMPARED if n not in TEN_MINUTE_FEATURES]) == []


def test_with_flink_restarted_without_state_and_the_nightly_run_late_only_the_week_can_differ(batch, tmp_path):
    # The comparison can fail, and this is where the design's one gap is (docs/online-path.md): a job started with no
    # state at 00:00 of day X while the newest nightly record is two days old has nobody's totals of X - 1 and X - 2,
    # nor the card's transaction before the day
    rows, _ = batch
    served, _ = serve(rows, flink_messages(rows, since_ms=X0 * 1000), batch_records(batch, X - 2),
                      tmp_path / "store.sqlite")
    differing = differences(served, [n for n in COMPARED if n not in TEN_MINUTE_FEATURES])
    assert {name for _, name, *_ in differing} <= WEEK_FEATURES | {c.SECS_SINCE_PREV_TX}, differing[:5]
    assert len({tid for tid, *_ in differing}) > 400


def test_a_card_new_the_day_before_the_nightly_run_covered_is_exact(tmp_path):
    # Given a card whose first transactions are on day X - 1, and the newest nightly record of cutoff X - 1 (the run
    # for day X has not finished: every new card of yesterday has no record yet)
    new, old = 4_000_000_000_000_011, 4_000_000_000_000_012
    data = history(_table([(old, -2 * 86_400, 1.0, "o-1"), (new, -3_600, 10.0, "n-1"), (new, -60, 20.0, "n-2"),
                           (new, 3_600, 30.0, "n-3"), (old, 3_600, 2.0, "o-2")]))
    records = batch_records(data, X - 1)
    assert [r[c.CC_NUM] for r in records] == [old]
    # When its transaction of day X is scored, Flink's message carrying the day before's 2 transactions
    served, parsed = serve(data[0], flink_messages(data[0]), records, tmp_path / "store.sqlite")
    assert parsed["n-3"].num_trans_days_before[:2] == (2, 0)
    # Then its week holds them, as the batch's does (3 transactions, average 20.0)
    assert differences(served) == []
