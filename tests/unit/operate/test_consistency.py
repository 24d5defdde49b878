"""`fraudstream consistency`: a small hand-checked run through the predict logic, its report, its readers.

The run: five cards scored batch by batch by the real predict logic (fraudstream/online/predict.py) over a
store that a stand-in for Flink and the aggregate handler fills between batches, as the pipeline does. Each
card plays one case of the "Consistency" section of docs/online-path.md; one stored record is corrupted on purpose.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from fraudstream import contract as c
from fraudstream.archive import ArchivedTransaction
from fraudstream.cli.main import build_parser, main
from fraudstream.local.pipeline import ARCHIVE_DIR, LOADED_BATCH_AGGREGATES, RUN_FILE
from fraudstream.online import predict
from fraudstream.online.messages import parse_event, parse_transaction
from fraudstream.online.settings import PredictSettings, StoreSettings
from fraudstream.operate import consistency
from fraudstream.operate.deployed import find
from tests.support.doubles import MemoryStore
from tests.support.events import msk_event, transaction
from tests.support.stack import OUTPUTS, create_stack

T = datetime.now(timezone.utc).replace(microsecond=0).timestamp() - 3600  # moto keeps log events of 14 days
DAY = 86_400.0
A, B, C, D, E, F, G = (4111_2222_0000_0000 + n for n in range(1, 8))
# Card A's week before (its 1-week record), and another card's transaction 8 days before: the history spans
# the week every 1-week value needs.
HISTORY = [(G, T - 8 * DAY, 1.0), (A, T - 2 * DAY, 50.0), (A, T - DAY, 70.0)]
WEEK_RECORD = {c.CC_NUM: A, c.NUM_TRANS_LAST_1W: 2, c.AVG_AMT_LAST_1W: 60.0, c.TRANS_TIME: T - DAY}
BATCH_RECORDS = {A: [WEEK_RECORD]}  # as consistency reads a run's loads: each card's records
# Three batches (one Lambda invocation each), in topic order: (card, event time, amount).
BATCHES = [
    [(A, T, 10.0), (B, T, 100.0), (C, T + 10, 7.0), (D, T + 30, 5.0), (F, T + 35, 1.0)],
    [(A, T + 60, 20.0), (B, T + 300, 100.0), (C, T + 20, 8.0), (D, T + 90, 5.0)],
    [(A, T + 120, 40.0), (B, T + 700, 100.0), (E, T + 40, 3.0), (E, T + 41, 4.0)],
]
SETTINGS = PredictSettings(store=StoreSettings(backend="memory"), threshold=0.5)


class CountScorer:
    """FRAUD (0.9) from five transactions in 10 minutes, else 0.1: a verdict that follows the count."""

    feature_set = "v2"

    def score(self, rows):
        index = c.feature_names("v2").index(c.NUM_TRANS_LAST_10M)
        return [0.9 if row[index] >= 5 else 0.1 for row in rows]


def flink_record(archived: list[ArchivedTransaction], tx: ArchivedTransaction) -> dict:
    """What Flink publishes for ``tx`` (and the aggregate handler stores): the 10-minute count and the
    average of the cent amounts, 6 decimals, with the card's previous event time."""
    same = [o for o in archived if o.cc_num == tx.cc_num and o.trans_ts <= tx.trans_ts]
    window = [o for o in same if o.trans_ts >= tx.trans_ts - 600]
    average = (sum(Decimal(str(o.amount)) for o in window) / len(window)).quantize(Decimal("0.000001"), ROUND_HALF_UP)
    earlier = [o.trans_ts for o in same if o is not tx]
    return {c.CC_NUM: tx.cc_num, c.NUM_TRANS_LAST_10M: len(window), c.AVG_AMT_LAST_10M: float(average),
            c.TRANS_TIME: tx.trans_ts, c.PREV_TRANS_TIME: max(earlier) if earlier else None}


def scored_run():
    """Run the batches; returns (log records, archived transactions)."""
    store = MemoryStore()
    store.put_record(c.BATCH_FEATURE_GROUP, WEEK_RECORD)
    archived, records, offset = [], [], 0
    for number, batch in enumerate(BATCHES, start=1):
        event = msk_event([transaction(card, ts, amount, tid=f"t{offset + i}") for i, (card, ts, amount) in enumerate(batch)],
                          first_offset=offset)
        txs, _ = parse_event(event, parse_transaction)
        mine = [ArchivedTransaction(tx.cc_num, tx.amount, tx.trans_ts, tx.ref.topic, tx.ref.partition, tx.ref.offset, tx.tid)
                for tx in txs]
        archived.extend(mine)
        offset += len(batch)
        for verdict in predict.predict(txs, store, CountScorer(), SETTINGS).verdicts:
            records.append({"level": "INFO", "message": verdict.message(), **verdict.log_fields()})
        for tx in mine:
            if (tx.cc_num, number) == (C, 1):
                continue  # Flink lags: card C's first aggregate reaches the store after the second batch
            stored = flink_record(archived, tx)
            if tx.cc_num == D:
                stored[c.NUM_TRANS_LAST_10M] = 7  # the planted corruption: a record that counts 7, not 1
            store.put_record(c.STREAMING_FEATURE_GROUP, stored)
    return records, archived


def history_table() -> pa.Table:
    return pa.table({c.CC_NUM: [card for card, _, _ in HISTORY], c.AMOUNT: [a for _, _, a in HISTORY],
                     c.TRANS_TS: [ts for _, ts, _ in HISTORY]})


def offset_of(card: int, ts: float) -> int:
    flat = [(cc, t) for batch in BATCHES for cc, t, _ in batch]
    return flat.index((card, ts))


@pytest.fixture(scope="module")
def run():
    return scored_run()


@pytest.fixture(scope="module")
def report(run):
    records, archived = run
    absent = offset_of(F, T + 35)  # card F's transaction is missing from the archive
    lines = [(f"log:{i}", r) for i, r in enumerate(records)]
    lines += [("log:again", records[0]),  # a redelivered batch logs its verdict again
              ("log:no-offset", {k: v for k, v in records[1].items() if k != "offset"}),
              ("log:bad", {**records[2], "verdict": "MAYBE"}),
              ("log:summary", {"message": "transactions processed", "transactions": 5})]
    return consistency.run(lines, [a for a in archived if a.offset != absent], "test", history=history_table(),
                           batch_records=BATCH_RECORDS, scorer=CountScorer(), feature_set="v2", threshold=0.5,
                           archive_complete=True,
                           archive_problems=["archive/dt=x/part-0:3: cc_num is missing or not a whole number"])


def test_the_report_counts_each_case_as_checked_by_hand(report):
    # A: exact, then 1-week values from its batch record (as of the last run), 10-minute values exact;
    # B: the third counts a transaction that left the window since its record; C: the second finds no record
    # (Flink lagging); D: the corrupted record; E: two in one batch, folded in: exact.
    assert report.verdicts == 16 and report.compared == 12
    assert dict(report.features[c.NUM_TRANS_LAST_10M]) == {"exact": 9, "explained": 2, "unexplained": 1}
    assert dict(report.features[c.NUM_TRANS_LAST_1W]) == {"exact": 6, "explained": 6}
    # C's second: no record, so its own amount only; D's corrupted count kept a right average.
    assert dict(report.features[c.AVG_AMT_LAST_10M]) == {"exact": 11, "explained": 1}
    assert dict(report.features[c.COUNT_RATIO]) == {"exact": 7, "explained": 4, "unexplained": 1}
    # C's second: no record and no 1-week history, so the gap is the cap (the definition's first transaction).
    assert dict(report.features[c.SECS_SINCE_PREV_TX]) == {"exact": 11, "explained": 1}
    assert dict(report.features[c.AMOUNT]) == {"exact": 12}


def test_the_corrupted_record_is_named_as_unexplained_with_its_three_values(report):
    d2 = f"{c.TRANSACTIONS_TOPIC}/0/{offset_of(D, T + 90)}"
    assert {(e["transaction"], e["feature"]) for e in report.unexplained} == {(d2, c.NUM_TRANS_LAST_10M), (d2, c.COUNT_RATIO)}
    count = next(e for e in report.unexplained if e["feature"] == c.NUM_TRANS_LAST_10M)
    assert (count["online"], count["batch_definition"], count["online_definition"]) == (8, 2, 2)
    assert report.unexplained_values == 2


def test_bad_input_is_counted_and_named_never_fatal(report):
    absent = f"{c.TRANSACTIONS_TOPIC}/0/{offset_of(F, T + 35)}"
    assert report.problems["transaction absent from the archive"] == 1
    assert report.problem_examples["transaction absent from the archive"] == [absent]
    assert report.problems["verdict logged again for a redelivered transaction (the first is compared)"] == 1
    assert report.problems["verdict without topic, partition, offset or trans_ts"] == 1
    assert report.problems["unreadable verdict line"] == 1
    assert report.problems["unreadable archive line"] == 1


def test_scores_of_the_batch_definition_flip_the_corrupted_verdict_only(report):
    # D's second transaction: 8 in 10 minutes online (FRAUD), 2 by the batch definition (NOT FRAUD).
    assert dict(report.flips) == {f"{c.FRAUD} -> {c.NOT_FRAUD}": 1}
    assert len(report.score_differences) == 12 and report.score_differences[-1] == pytest.approx(0.8)
    assert report.score_differences[-2] == 0.0


def test_without_the_history_the_week_cannot_be_checked_exactly_but_nothing_new_is_unexplained(run):
    records, archived = run
    report = consistency.run([("log", r) for r in records], archived, "test", batch_records=BATCH_RECORDS,
                             archive_complete=True)
    assert report.compared == 13 and report.unexplained_values == 2 and not report.scored
    # Card A's first two: the batch definition without A's week counts 1 and 2, its record gives 3: explained
    # (A's third: 3 either way).
    assert dict(report.features[c.NUM_TRANS_LAST_1W]) == {"exact": 7, "explained": 6}


def test_an_empty_window_is_named(run):
    report = consistency.run([], [], "test")
    assert report.compared == 0 and report.problems == {"no verdict in the window": 1}
    assert "no verdict in the window" in consistency.table(report)


def test_the_flink_average_is_the_cent_sum_over_the_count_to_six_decimals():
    assert consistency.flink_average(70 / 3, 3) == 23.333333
    assert consistency.flink_average(0.01 / 32, 32) == 0.000313  # a tie at the 7th decimal rounds half up
    assert consistency.flink_average(0.01 / 3 * 2, 3) == 0.006667


# --- The command on a local work directory and on a stack ------------------------------------------------


def write_workdir(path: Path, records: list[dict], archived: list[ArchivedTransaction], model: Path) -> Path:
    (path / "logs").mkdir(parents=True)
    (path / "logs" / "verdicts.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records) + "\nnot json, but mentions \"verdict\"\n")
    day = path / ARCHIVE_DIR / "dt=2026-01-01"
    day.mkdir(parents=True)
    (day / "part-0-0").write_text("\n".join(json.dumps(a.__dict__) for a in archived) + "\n")
    (day / ".part-0-1.inprogress").write_text("{broken\n")  # Flink's open part file: not data
    # Two loads, as a nightly refresh makes: an older record of A first, then the one the verdicts used.
    pq.write_table(pa.Table.from_pylist([{**WEEK_RECORD, c.TRANS_TIME: T - 3 * DAY}]), path / LOADED_BATCH_AGGREGATES.format(n=1))
    pq.write_table(pa.Table.from_pylist([WEEK_RECORD]), path / LOADED_BATCH_AGGREGATES.format(n=2))
    history = path / "history.parquet"
    pq.write_table(pa.table({c.CC_NUM: [h[0] for h in HISTORY], c.AMOUNT: [h[2] for h in HISTORY],
                             c.DATETIME: pa.array([int(h[1] * 1e6) for h in HISTORY], pa.timestamp("us"))}), history)
    (path / RUN_FILE).write_text(json.dumps({
        "model": str(model), "feature_set": "v2", "threshold": 0.5, "time_mode": "event", "streaming_wait_ms": 0,
        "batch_aggregates": [LOADED_BATCH_AGGREGATES.format(n=n) for n in (1, 2)], "archive": ARCHIVE_DIR, "history": str(history),
        "verdict_log": "logs/verdicts.jsonl"}))
    return path


def test_local_exits_1_on_the_corrupted_record_and_draws_the_rates(run, tmp_path, capsys):
    records, archived = run
    workdir = write_workdir(tmp_path / "local", records, archived, tmp_path / "no-model.tar.gz")
    png = tmp_path / "rates.png"
    assert main(["consistency", "--local", str(workdir), "--png", str(png)]) == 1
    out = capsys.readouterr().out
    assert "14 verdicts read, 13 compared" in out
    assert f"unexplained: {c.TRANSACTIONS_TOPIC}/0/{offset_of(D, T + 90)}" in out
    assert "input: 1 unreadable verdict line" in out and "model not found" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_local_json_carries_the_same_counts(run, tmp_path, capsys):
    records, archived = run
    clean = [r for r in records if r["card"] != c.mask_card(D)]
    workdir = write_workdir(tmp_path / "local", clean, archived, tmp_path / "no-model.tar.gz")
    assert main(["consistency", "--local", str(workdir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["compared"] == 11 and result["unexplained_values"] == 0
    assert result["features"][c.NUM_TRANS_LAST_10M] == {"exact": 9, "explained": 2, "unverifiable": 0, "unexplained": 0}


def test_a_directory_that_is_not_a_run_is_one_error_line(tmp_path, capsys):
    assert main(["consistency", "--local", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == (f"fraudstream consistency: error: {tmp_path}: no run.json; not the work "
                                               "directory of a local run (run `fraudstream replay` or `make demo`)")


def test_stack_mode_needs_a_start(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["consistency"])
    assert exit_.value.code == 2 and "give --local [DIR], or --start" in capsys.readouterr().err


@mock_aws
def test_stack_reads_the_log_group_and_the_archive_in_s3(run, capsys):
    records, archived = run
    bucket = "fraudtest-data"
    create_stack(outputs={**OUTPUTS, "DataBucketName": bucket})
    logs = boto3.client("logs", region_name="us-east-1")
    group = OUTPUTS["PredictLogGroupName"]
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logged = int(T * 1000) + 5000
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[
        {"timestamp": logged + i, "message": json.dumps(r)} for i, r in enumerate(records)]
        + [{"timestamp": logged + 99, "message": "START RequestId: x"}])
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    day = datetime.fromtimestamp(T, timezone.utc).date()
    lines = "\n".join(json.dumps(a.__dict__) for a in archived)
    s3.put_object(Bucket=bucket, Key=f"transactions/dt={day}/part-a-0", Body=lines.encode())
    earlier = ArchivedTransaction(G, 1.0, T - 6 * DAY, c.TRANSACTIONS_TOPIC, 1, 0)  # the archive spans 6 days
    s3.put_object(Bucket=bucket, Key=f"transactions/dt={day - timedelta(days=6)}/part-a-0",
                  Body=json.dumps(earlier.__dict__).encode())
    s3.put_object(Bucket=bucket, Key=f"transactions/dt={day}/_SUCCESS", Body=b"")
    s3.put_object(Bucket=bucket, Key=f"transactions/dt={day - timedelta(days=30)}/part-old", Body=b"{bad")
    deployment = find("FraudTest", "us-east-1")
    start = datetime.fromtimestamp(T, timezone.utc)
    args = build_parser().parse_args(["consistency", "--stack", "FraudTest", "--region", "us-east-1",
                                          "--start", start.isoformat(), "--end", (start + timedelta(hours=1)).isoformat()])
    from fraudstream.cli.operate import cmd_consistency

    assert cmd_consistency(args, deployment=deployment) == 1
    out = capsys.readouterr().out
    assert "13 verdicts read, 13 compared" in out
    assert f"unexplained: {c.TRANSACTIONS_TOPIC}/0/{offset_of(D, T + 90)}" in out
    # A's 1-week record is rebuilt from the archive at its logged age: its transaction of the day before is not there.
    assert "input: 3 verdicts whose records could not be rebuilt (the 1-week record's transaction is not in the history)" in out
    assert "scores not compared" in out
