"""`fraudstream consistency`: a small hand-checked run through the predict logic, its report, its readers.

The run: cards scored batch by batch by the real predict logic (fraudstream/online/predict.py) on the messages a
reference stand-in for Flink computes (in order, on event time: flink_sql/features_in_order.sql), with the 1-week
records the batch SQL computes from the history before. Every value is then exact; two defects are planted: one
message whose 10-minute count is corrupted, and one transaction that came late (scored on itself alone).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from fraudstream import contract as c
from fraudstream.archive import ArchivedTransaction
from fraudstream.cli.main import build_parser, main
from fraudstream.local.pipeline import ARCHIVE_DIR, RUN_FILE
from fraudstream.offline import features
from fraudstream.online import predict
from fraudstream.online.messages import parse_event, parse_transaction_features
from fraudstream.online.settings import PredictSettings, StoreSettings
from fraudstream.operate import consistency
from fraudstream.operate.deployed import find
from tests.support.doubles import MemoryStore
from tests.support.events import features_message, msk_event
from tests.support.stack import OUTPUTS, create_stack

DAY = 86_400.0
# An hour ago (moto keeps log events of 14 days), moved to 02:00 UTC so that the run stays within one UTC day.
T = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(hour=2, minute=0, second=0, microsecond=0).timestamp()
if T > datetime.now(timezone.utc).timestamp() - 3600:
    T -= DAY
A, B, D, E, F, G, L = (4111_2222_0000_0000 + n for n in range(1, 8))
# Card A's week before (its 1-week record), and another card's transaction 8 days before: the history spans
# the week every 1-week value needs.
HISTORY = [(G, T - 8 * DAY, 1.0), (A, T - 2 * DAY, 50.0), (A, T - DAY, 70.0)]
# Three batches (one Lambda invocation each), in topic order: (card, event time, amount). B sends a burst of one
# millisecond; L's second transaction comes after the watermark passed it (late).
BATCHES = [
    [(A, T, 10.0), (B, T + 5, 1.0), (B, T + 5, 2.0), (B, T + 5, 3.0), (D, T + 30, 5.0), (F, T + 35, 1.0),
     (L, T + 10, 9.0)],
    [(A, T + 60, 20.0), (D, T + 90, 5.0), (E, T + 40, 3.0), (E, T + 41, 4.0), (L, T + 20, 6.0)],
    [(A, T + 120, 40.0)],
]
LATE = (L, T + 20)
CORRUPTED = (D, T + 90)  # its message counts 7 in 10 minutes, not 2
SETTINGS = PredictSettings(store=StoreSettings(backend="memory"), threshold=0.5)


class CountScorer:
    """FRAUD (0.9) from 5 transactions in 10 minutes, else 0.1: a verdict flips with the count."""

    feature_set = "v2"

    def score(self, rows):
        index = c.feature_names("v2").index(c.NUM_TRANS_LAST_10M)
        return [0.9 if row[index] >= 5 else 0.1 for row in rows]


def flink_messages(sent: list[tuple[int, float, float, int]]) -> list[dict]:
    """What Flink writes for each (card, time, amount, offset), in order: the card's earlier transactions that
    Flink saw (all sent before, none of the history) give the 10-minute count and sum, the previous time and the
    day totals; a late one gets its own alone."""
    seen: dict[int, list[tuple[int, float]]] = defaultdict(list)
    messages = []
    for card, ts, amount, offset in sent:
        ms = c.event_ms(ts)
        if (card, ts) == LATE:
            messages.append(features_message(card, ts, amount, offset=offset, late=True))
            continue
        before = seen[card]
        window = [a for m, a in before if ms - 600_000 <= m] + [amount]
        day = ms // c.MS_PER_DAY
        today = [a for m, a in before if m // c.MS_PER_DAY == day] + [amount]
        yesterday = [a for m, a in before if m // c.MS_PER_DAY == day - 1]
        count = 7 if (card, ts) == CORRUPTED else len(window)
        messages.append(features_message(card, ts, amount, offset=offset, count_10m=count, sum_10m=round(sum(window), 2),
                                         prev_ts=before[-1][0] / 1000 if before else None,
                                         today=(len(today), round(sum(today), 2)),
                                         yesterday=(len(yesterday), round(sum(yesterday), 2))))
        before.append((ms, amount))
    return messages


def history_table() -> pa.Table:
    return pa.table({c.CC_NUM: [card for card, _, _ in HISTORY], c.AMOUNT: [a for _, _, a in HISTORY],
                     c.TRANS_TS: [ts for _, ts, _ in HISTORY], c.TID: [f"h{i}" for i in range(len(HISTORY))]})


def week_records() -> list[dict]:
    """The nightly run's records as of T's midnight, from the history (as `fraudstream features` computes them)."""
    con = features.connect()
    table = pa.table({c.TID: [f"h{i}" for i in range(len(HISTORY))],
                      c.DATETIME: pa.array([int(ts * 1e6) for _, ts, _ in HISTORY], pa.timestamp("us")),
                      c.CC_NUM: pa.array([card for card, _, _ in HISTORY], pa.int64()),
                      c.AMOUNT: [a for _, _, a in HISTORY], c.FRAUD_LABEL: pa.array([0] * len(HISTORY), pa.int8())})
    return features.compute_batch_aggregates(con, features.compute_features(con, table),
                                             cutoff_day=int(T // DAY)).to_pylist()


def offset_of(card: int, ts: float) -> int:
    flat = [(cc, t) for batch in BATCHES for cc, t, _ in batch]
    return flat.index((card, ts))


def scored_run():
    """Score the batches; returns (log records, archived transactions)."""
    store = MemoryStore()
    for record in week_records():
        store.put_record(c.BATCH_FEATURE_GROUP, record)
    sent = [(card, ts, amount, i) for i, (card, ts, amount) in enumerate(t for batch in BATCHES for t in batch)]
    archived = [ArchivedTransaction(card, amount, ts, c.TRANSACTIONS_TOPIC, 0, offset, f"t{offset}")
                for card, ts, amount, offset in sent]
    messages = iter(flink_messages(sent))
    records = []
    for batch in BATCHES:
        event = msk_event([next(messages) for _ in batch], topic=c.TRANSACTION_FEATURES_TOPIC)
        parsed, invalid = parse_event(event, parse_transaction_features)
        assert not invalid
        for verdict in predict.predict(parsed, store, CountScorer(), SETTINGS).verdicts:
            records.append({"level": "INFO", "message": verdict.message(), **verdict.log_fields()})
    return records, archived


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
                           scorer=CountScorer(), feature_set="v2", threshold=0.5, archive_complete=True,
                           archive_problems=["archive/dt=x/part-0:3: cc_num is missing or not a whole number"])


def test_every_value_is_exact_but_the_two_planted_defects(report):
    # 13 transactions, F's not archived: 12 compared; the 1-week values too, from the history's records
    assert report.verdicts == 16 and report.compared == 12
    assert dict(report.features[c.NUM_TRANS_LAST_10M]) == {"exact": 10, "unexplained": 2}  # D's corrupted, L's late
    assert dict(report.features[c.NUM_TRANS_LAST_1W]) == {"exact": 11, "unexplained": 1}  # L's late
    assert dict(report.features[c.AMOUNT]) == {"exact": 12}
    assert dict(report.features[c.AVG_AMT_LAST_10M]) == {"exact": 10, "unexplained": 2}  # the average divides by the count


def test_the_defects_are_named_with_both_values_and_the_late_one_as_late(report):
    d2, late = (f"{c.TRANSACTIONS_TOPIC}/0/{offset_of(*key)}" for key in (CORRUPTED, LATE))
    counts = {e["transaction"]: (e["online"], e["batch_definition"]) for e in report.unexplained
              if e["feature"] == c.NUM_TRANS_LAST_10M}
    assert counts == {d2: (7, 2), late: (1, 2)}  # L's late one: itself alone, the batch counts L's first too
    assert report.problem_examples["late verdicts (came behind Flink's watermark, scored on themselves alone)"] == [late]
    assert not report.consistent


def test_bad_input_is_counted_and_named_never_fatal(report):
    absent = f"{c.TRANSACTIONS_TOPIC}/0/{offset_of(F, T + 35)}"
    assert report.problems["transaction absent from the archive"] == 1
    assert report.problem_examples["transaction absent from the archive"] == [absent]
    assert report.problems["verdict logged again for a redelivered transaction (the first is compared)"] == 1
    assert report.problems["verdict without topic, partition, offset or trans_ts"] == 1
    assert report.problems["unreadable verdict line"] == 1
    assert report.problems["unreadable archive line"] == 1


def test_scores_of_the_batch_definition_flip_the_corrupted_verdict_only(report):
    # D's second transaction: 7 in 10 minutes online (FRAUD), 2 by the batch definition (NOT FRAUD).
    assert dict(report.flips) == {f"{c.FRAUD} -> {c.NOT_FRAUD}": 1}
    assert len(report.score_differences) == 12 and report.score_differences[-1] == pytest.approx(0.8)
    assert report.score_differences[-2] == 0.0


def test_a_clean_run_is_consistent(run):
    records, archived = run
    clean = [r for r in records if r["card"] not in (c.mask_card(D), c.mask_card(L))]
    report = consistency.run([("log", r) for r in clean], archived, "test", history=history_table(),
                             scorer=CountScorer(), feature_set="v2", threshold=0.5, archive_complete=True)
    assert report.compared == len(clean) == 9 and report.consistent
    assert all(set(counts) == {"exact"} for counts in report.features.values())


def test_without_the_history_the_week_differs_and_is_unverifiable_not_unexplained(run):
    records, archived = run
    clean = [r for r in records if r["card"] not in (c.mask_card(D), c.mask_card(L))]
    # The archive starts at T: the week each transaction needs reaches before it (a stack's bucket keeps 8 days)
    report = consistency.run([("log", r) for r in clean], archived, "test")
    assert report.unexplained_values == 0 and not report.scored
    assert report.features[c.NUM_TRANS_LAST_1W]["unverifiable"] == 3  # card A's: its record counted the history


def test_an_empty_window_is_named(run):
    report = consistency.run([], [], "test")
    assert report.compared == 0 and report.problems == {"no verdict in the window": 1}
    assert "no verdict in the window" in consistency.table(report)


# --- The command on a local work directory and on a stack ------------------------------------------------


def write_workdir(path: Path, records: list[dict], archived: list[ArchivedTransaction], model: Path) -> Path:
    (path / "logs").mkdir(parents=True)
    (path / "logs" / "verdicts.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records) + "\nnot json, but mentions \"verdict\"\n")
    day = path / ARCHIVE_DIR / "dt=2026-01-01"
    day.mkdir(parents=True)
    (day / "part-0-0").write_text("\n".join(json.dumps(a.__dict__) for a in archived) + "\n")
    (day / ".part-0-1.inprogress").write_text("{broken\n")  # Flink's open part file: not data
    history = path / "history.parquet"
    pq.write_table(pa.table({c.CC_NUM: [h[0] for h in HISTORY], c.AMOUNT: [h[2] for h in HISTORY],
                             c.TID: [f"h{i}" for i in range(len(HISTORY))],
                             c.DATETIME: pa.array([int(h[1] * 1e6) for h in HISTORY], pa.timestamp("us"))}), history)
    (path / RUN_FILE).write_text(json.dumps({
        "model": str(model), "feature_set": "v2", "threshold": 0.5, "batch_aggregates": [], "archive": ARCHIVE_DIR,
        "history": str(history), "verdict_log": "logs/verdicts.jsonl"}))
    return path


def test_local_exits_1_on_the_planted_defects_and_draws_the_rates(run, tmp_path, capsys):
    records, archived = run
    workdir = write_workdir(tmp_path / "local", records, archived, tmp_path / "no-model.tar.gz")
    png = tmp_path / "rates.png"
    assert main(["consistency", "--local", str(workdir), "--png", str(png)]) == 1
    out = capsys.readouterr().out
    assert "14 verdicts read, 13 compared" in out
    assert f"unexplained: {c.TRANSACTIONS_TOPIC}/0/{offset_of(*CORRUPTED)}" in out
    assert "input: 1 unreadable verdict line" in out and "model not found" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_local_json_of_a_clean_run_exits_0_with_every_value_exact(run, tmp_path, capsys):
    records, archived = run
    clean = [r for r in records if r["card"] not in (c.mask_card(D), c.mask_card(L))]
    workdir = write_workdir(tmp_path / "local", clean, archived, tmp_path / "no-model.tar.gz")
    assert main(["consistency", "--local", str(workdir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["compared"] == 9 and result["unexplained_values"] == 0
    assert result["features"][c.NUM_TRANS_LAST_10M] == {"exact": 9, "unverifiable": 0, "unexplained": 0}


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
    assert f"unexplained: {c.TRANSACTIONS_TOPIC}/0/{offset_of(*CORRUPTED)}" in out
    # A's week reaches before the archive's first day: its differing values are unverifiable, not unexplained
    assert "unverifiable" in out and "scores not compared" in out
