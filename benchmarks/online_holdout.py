"""The hold-out period through the streaming path: the model's quality online, beside the offline figures.

Takes the hold-out transactions of a `make demo` data directory (from --holdout-start, 2022-05-15: about
61,000 at demo scale), loads the 1-week aggregates as of that day into the local pipeline, replays them in
event-time mode through the real pipeline (Kafka broker, Flink, both handlers), then
- computes from the online verdicts what `fraudstream train` reports (ROC AUC, PR AUC, precision, recall,
  false positives, chains caught, caught by their third transaction) beside the offline figures on the
  same rows (the model on features.parquet, the batch definition);
- runs `fraudstream consistency` on the run (every feature served, recomputed by the batch SQL).

Two ways to replay. --flood sends everything at once, as fast as it goes: two weeks of event time pass in
seconds, a backlog for every part of the pipeline (the 1-week records are those of the hold-out start, so the
week of a transaction more than a day later is not served exactly: the flood shows the 10-minute values
hold). By default the replay goes in lock step instead, as real time would: a step of event time
(--step-minutes) is scored, then the next; the 1-week records are refreshed each midnight (--no-nightly:
only those of the hold-out start).

One figure a line on stdout (name=offline/online), then the consistency table; progress on stderr.

Usage: python benchmarks/online_holdout.py [--data data] [--flood] [--step-minutes M] [--no-nightly]
       [--limit N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from fraudstream import contract as c
from fraudstream.local.pipeline import AGGREGATE_TRIGGER, PREDICT_TRIGGER, LocalPipeline, PipelineOptions
from fraudstream.offline import evaluate
from fraudstream.offline.features import compute_batch_aggregates, connect
from fraudstream.offline.train_config import METRICS_FILE, utc_epoch
from fraudstream.online import settings
from fraudstream.online.features import feature_vector
from fraudstream.online.scorers import InProcessScorer
from fraudstream.operate import consistency


def holdout_rows(features: Path, start: float, limit: int | None) -> dict[str, np.ndarray]:
    """The hold-out rows of features.parquet in event-time order, with their features."""
    con = connect()
    query = (f"SELECT * FROM read_parquet('{features}') WHERE trans_ts >= {start!r} ORDER BY trans_ts, tid"
             + (f" LIMIT {int(limit)}" if limit else ""))
    table = con.sql(query).fetch_arrow_table()
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


def batch_aggregates_before(features: Path, start: float, out: Path) -> int:
    """Each card's 1-week record as of ``start`` (what the nightly run of that night would have loaded)."""
    con = connect()
    before = con.sql(f"SELECT * FROM read_parquet('{features}') WHERE trans_ts < {start!r}").fetch_arrow_table()
    table = compute_batch_aggregates(con, before)
    pq.write_table(table, out)
    return table.num_rows


def lockstep(pipeline, messages: list[dict], times: np.ndarray, start: float, args, features: Path, tmp: Path,
             log) -> list:
    """Send the transactions a step of event time at a time, as Flink keeping up in real time would have them
    scored: wait for the step's verdicts (the trigger's batching window and batch size put the step in one
    batch, whose transactions the handler folds into each other), then an event-time marker (Flink emits the step's
    aggregates at once) and the step's aggregates in the store, then the next step. No verdict sees a record
    from its own step or a later one. With --nightly, each UTC midnight first loads the 1-week records as of
    that midnight, as the nightly refresh does on AWS."""
    step = args.step_minutes * 60
    keys, sent, first = [], 0, 0
    boundary = start + step
    next_midnight = start + 86_400
    while first < len(messages):
        last = int(np.searchsorted(times, boundary, side="left"))
        if args.nightly and boundary > next_midnight:
            out = tmp / f"batch_aggregates_{int(next_midnight)}.parquet"
            batch_aggregates_before(features, next_midnight, out)
            pipeline.load_batch(out)
            next_midnight += 86_400
        if last > first:
            keys.extend(pipeline.send_many(messages[first:last]))
            sent += last - first
            if not pipeline.wait_for_verdicts(sent, args.timeout):
                raise SystemExit(f"only {len(pipeline.verdicts):,} of {sent:,} verdicts within {args.timeout:g} s")
            deadline = time.monotonic() + args.timeout
            while pipeline.aggregates_consumed < sent and time.monotonic() < deadline:
                pipeline.check()
                time.sleep(0.02)
            if sent // 5_000 != (sent - (last - first)) // 5_000:
                log(f"{sent:,} of {len(messages):,} transactions scored")
        first = last
        boundary += step
    return keys


def figures(rows: dict[str, np.ndarray], scores: np.ndarray, threshold: float) -> dict[str, float]:
    report = evaluate.evaluate(rows[c.CC_NUM], rows[c.TRANS_TS], rows[c.FRAUD_LABEL], scores, threshold)
    chains = report["chains"]
    return {"roc_auc": report["roc_auc"], "pr_auc": report["pr_auc"], "precision": report["precision"],
            "recall": report["recall"], "false_positives": report["confusion_matrix"]["false_positive"],
            "chains": chains["chains"], "chains_caught": chains["caught"],
            "chains_caught_by_third_pct": 100 * (chains["caught_by_third_share"] or 0.0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"),
                        help="a `make demo` data directory: transactions.parquet, features.parquet, model.tar.gz")
    parser.add_argument("--holdout-start", type=date.fromisoformat,
                        help="first day of the hold-out period (default: the one training used, from DATA/metrics.json)")
    parser.add_argument("--limit", type=int, help="only the first N hold-out transactions (a quick run)")
    parser.add_argument("--flood", action="store_true",
                        help="send every transaction at once instead of a step of event time at a time")
    parser.add_argument("--step-minutes", type=float, default=60.0,
                        help="event time per step without --flood (default 60)")
    parser.add_argument("--nightly", action=argparse.BooleanOptionalAction, default=True,
                        help="without --flood: refresh the 1-week records at each UTC midnight (default: yes)")
    parser.add_argument("--batching-window-s", type=float, default=0.5,
                        help="without --flood: the predict trigger's batching window, so that a step's transactions "
                        "of a partition make one batch (default 0.5; the stack's is 0)")
    parser.add_argument("--batch-size", type=int, default=1_000,
                        help="without --flood: the predict trigger's batch size, so that a step makes one batch "
                        "(default 1000; the stack's is 100)")
    parser.add_argument("--workdir", type=Path, help="keep the run here (default: a temporary directory)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the verdicts (default 1800)")
    args = parser.parse_args()
    needed = [args.data / name for name in ("transactions.parquet", "features.parquet", "model.tar.gz")]
    for path in needed:
        if not path.is_file():
            raise SystemExit(f"{path}: no such file; run `make demo` first")
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    transactions, features, model = needed
    if args.holdout_start is None:
        metrics = args.data / METRICS_FILE
        if not metrics.is_file():
            raise SystemExit(f"{metrics}: no such file; run `make demo` first, or pass --holdout-start")
        args.holdout_start = date.fromisoformat(json.loads(metrics.read_text())["split"]["holdout_start"])
    start = utc_epoch(args.holdout_start)
    rows = holdout_rows(features, start, args.limit)
    count = len(rows[c.TID])
    threshold = c.DEFAULT_THRESHOLD
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        aggregates = Path(tmp) / "batch_aggregates_at_holdout_start.parquet"
        log(f"1-week records as of {args.holdout_start}: {batch_aggregates_before(features, start, aggregates):,} cards")
        messages = [{c.CC_NUM: int(card), c.AMOUNT: float(amount), c.TRANS_TS: float(ts), c.TID: str(tid)}
                    for card, amount, ts, tid in zip(rows[c.CC_NUM], rows[c.AMOUNT], rows[c.TRANS_TS], rows[c.TID])]
        triggers = None if args.flood else {
            AGGREGATE_TRIGGER: settings.AGGREGATE_TRIGGER,
            PREDICT_TRIGGER: dataclasses.replace(settings.PREDICT_TRIGGER, batching_window_s=args.batching_window_s,
                                                 batch_size=args.batch_size)}
        with LocalPipeline(workdir, model, PipelineOptions(triggers=triggers, history=transactions), log=log) as pipeline:
            pipeline.start(aggregates)
            began = time.monotonic()
            if args.flood:
                log(f"replaying {count:,} hold-out transactions in event time, as fast as they go")
                keys = [key for first in range(0, count, 10_000) for key in pipeline.send_many(messages[first:first + 10_000])]
            else:
                log(f"replaying {count:,} hold-out transactions in event time, {args.step_minutes:g} minutes of event "
                    "time a step" + (", the 1-week records refreshed each midnight" if args.nightly else ""))
                keys = lockstep(pipeline, messages, rows[c.TRANS_TS], start, args, features, Path(tmp), log)
            sent = time.monotonic() - began
            if not pipeline.wait_for_verdicts(count, args.timeout):
                log(f"only {len(pipeline.verdicts):,} of {count:,} verdicts within {args.timeout:g} s")
            elapsed = time.monotonic() - began
            missing = pipeline.wait_for_archive(keys, 60)
            online = {v.tid: v.score for v in pipeline.verdicts.values()}
        log("scoring the same rows offline; recomputing every served feature (consistency)")
        scorer = InProcessScorer(model)
        feature_set = scorer.feature_set
        offline_scores = np.array(scorer.score([feature_vector({n: rows[n][i] for n in c.feature_names(feature_set)},
                                                               feature_set) for i in range(count)]))
        have = np.array([tid in online for tid in rows[c.TID]])
        online_scores = np.array([online.get(tid, np.nan) for tid in rows[c.TID]])
        both = {name: values[have] for name, values in rows.items()}
        offline_figures = figures(both, offline_scores[have], threshold)
        online_figures = figures(both, online_scores[have], threshold)
        report = consistency.check_local_run(workdir, history=transactions)

    mode = "flood" if args.flood else (f"lockstep step_minutes={args.step_minutes:g} nightly={args.nightly} "
                                       f"batching_window_s={args.batching_window_s:g} batch_size={args.batch_size}")
    print(f"holdout_transactions={count} verdicts={int(have.sum())} archive_missing={missing} mode={mode} "
          f"feature_set={feature_set}")
    print(f"producer_tx_per_s={count / sent:.0f} verdict_tx_per_s={count / elapsed:.0f} elapsed_s={elapsed:.1f}")
    print("metric=offline/online (online - offline)")
    for name, value in offline_figures.items():
        got = online_figures[name]
        print(f"{name}={_fmt(value)}/{_fmt(got)} ({_fmt(got - value)})")
    print(consistency.table(report))
    return 0


def _fmt(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) else f"{value}"


if __name__ == "__main__":
    sys.exit(main())
