"""`fraudstream consistency`: the features the predict handler served, recomputed with the batch SQL.

Input: the verdicts the handler logged (each carries its features, score, event time and its place in the
transactions topic) and the transactions Flink archived (fraudstream/archive.py). For each verdict it
computes the batch definition (fraudstream/offline/sql/batch_features.sql over the archive and the history
before it, DuckDB): the value training used for the same transaction. The online path serves that definition
by construction (docs/online-path.md: "The online definition"), so each feature value is exact (equal to it,
relative 1e-9), unverifiable (different, and the history the check needs is not there) or unexplained: a
defect. With the model, the scores of the batch definition's vectors are compared with the logged ones, and
verdict flips counted; the command exits 1 on any unexplained value or flip.

Plain functions over plain values; the readers of a local work directory and of a stack are at the end.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fraudstream import archive
from fraudstream import contract as c
from fraudstream.archive import ArchivedTransaction
from fraudstream.contract import RecordRef
from fraudstream.local.replay import percentile
from fraudstream.online.features import feature_vector
from fraudstream.online.scorers import Scorer
from fraudstream.online.verdict import UnreadableVerdict, Verdict

REL_TOL, ABS_TOL = 1e-9, 1e-12
EXACT, UNVERIFIABLE, UNEXPLAINED = "exact", "unverifiable", "unexplained"
CLASSES = (EXACT, UNVERIFIABLE, UNEXPLAINED)
# Every value a verdict logs: the aggregates and the model features built from them.
FEATURES = tuple(dict.fromkeys((c.AMOUNT, *c.AGGREGATE_COLUMNS, *c.ALL_FEATURES)))
EXAMPLES = 5  # named examples kept per problem and for unexplained values
TEN_MINUTE_VALUES = {c.NUM_TRANS_LAST_10M, c.AVG_AMT_LAST_10M}


@dataclass(frozen=True)
class OfflineRow:
    """A transaction of the archive or the history, with the batch definition's features."""

    key: RecordRef | None  # None: a history row (before the archive)
    trans_ts: float
    amount: float
    features: dict[str, float]


@dataclass
class Report:
    source: str
    verdicts: int = 0  # verdict records read
    compared: int = 0
    features: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # feature -> class -> n
    problems: Counter = field(default_factory=Counter)  # named input problem -> n
    problem_examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    unexplained: list[dict[str, Any]] = field(default_factory=list)  # the first EXAMPLES
    score_differences: list[float] = field(default_factory=list)  # |logged - batch definition's|, sorted
    flips: Counter = field(default_factory=Counter)  # "FRAUD -> NOT FRAUD" -> n
    scored: bool = False

    def problem(self, name: str, example: str = "") -> None:
        self.problems[name] += 1
        if example and len(self.problem_examples[name]) < EXAMPLES:
            self.problem_examples[name].append(example)

    @property
    def unexplained_values(self) -> int:
        return sum(counts[UNEXPLAINED] for counts in self.features.values())

    @property
    def consistent(self) -> bool:
        """No unexplained value and no verdict that the batch definition's features would flip."""
        return not self.unexplained_values and not sum(self.flips.values())

    def as_dict(self) -> dict[str, Any]:
        diffs = self.score_differences
        return {
            "source": self.source, "verdicts": self.verdicts, "compared": self.compared,
            "features": {name: {k: counts[k] for k in CLASSES} for name, counts in self.features.items()},
            "unexplained_values": self.unexplained_values, "unexplained_examples": self.unexplained,
            "problems": dict(self.problems), "problem_examples": dict(self.problem_examples),
            "scores": None if not self.scored else {
                "compared": len(diffs), "p50": _percentile(diffs, 50), "p99": _percentile(diffs, 99),
                "max": diffs[-1] if diffs else None, "verdict_flips": dict(self.flips)},
        }


# --- Inputs -----------------------------------------------------------------------------------------


def read_verdicts(records: Iterable[tuple[str, Mapping[str, Any]]], report: Report) -> dict[RecordRef, Verdict]:
    """The first verdict of each transaction from (where, log record) pairs; the rest counted in ``report``."""
    verdicts: dict[RecordRef, Verdict] = {}
    for where, record in records:
        if "verdict" not in record:
            continue  # the handler's other lines (summaries, errors)
        report.verdicts += 1
        try:
            verdict = Verdict.from_log(record)
        except UnreadableVerdict as error:
            report.problem("unreadable verdict line", f"{where}: {error}")
            continue
        if verdict.topic is None or verdict.partition is None or verdict.offset is None or verdict.trans_ts is None:
            report.problem("verdict without topic, partition, offset or trans_ts", where)
            continue
        key = verdict.place()
        if key in verdicts:
            report.problem("verdict logged again for a redelivered transaction (the first is compared)", _name(key))
            continue
        verdicts[key] = verdict
    return verdicts


def index_archive(rows: Iterable[ArchivedTransaction], report: Report) -> dict[RecordRef, ArchivedTransaction]:
    archived: dict[RecordRef, ArchivedTransaction] = {}
    for row in rows:
        if row.key in archived:
            report.problem("transaction archived twice (kept once)", _name(row.key))
            continue
        archived[row.key] = row
    return archived


def offline_features(archived: Sequence[ArchivedTransaction], history: pa.Table | None) -> dict[int, list[OfflineRow]]:
    """Each card's transactions (history before the first archived one, then the archive) with the batch
    definition's features, in (event time, partition, offset) order."""
    from fraudstream.offline.batch_sql import render_sql
    from fraudstream.offline.features import connect

    # One card's transactions of one millisecond count in the order they sat in their partition (the tid orders
    # them in the batch SQL): the offset, zero-padded, after any history row's tid of the same millisecond.
    schema = pa.schema([("cc_num", pa.int64()), ("amount", pa.float64()), ("trans_ts", pa.float64()), ("tid", pa.string()),
                        ("k_topic", pa.string()), ("k_partition", pa.int64()), ("k_offset", pa.int64())])
    table = pa.Table.from_pylist([{"cc_num": r.cc_num, "amount": r.amount, "trans_ts": r.trans_ts,
                                   "tid": f"~{r.offset:020d}", "k_topic": r.topic,
                                   "k_partition": r.partition, "k_offset": r.offset} for r in archived], schema=schema)
    if history is not None and history.num_rows:
        first = min((row.trans_ts for row in archived), default=math.inf)
        before = history.filter(pc.less(history.column(c.TRANS_TS), first))
        table = pa.concat_tables([pa.table({name: before.column(name).cast(schema.field(name).type)
                                            if name in before.column_names else pa.nulls(before.num_rows, schema.field(name).type)
                                            for name in schema.names}, schema=schema), table])
    con = connect()
    con.register("transactions", table)
    result = con.sql(f"SELECT * FROM ({render_sql('batch_features')}) "
                     "ORDER BY cc_num, trans_ts, k_partition NULLS FIRST, k_offset NULLS FIRST").fetch_arrow_table().to_pydict()
    cards: dict[int, list[OfflineRow]] = defaultdict(list)
    for i, card in enumerate(result["cc_num"]):
        key = None if result["k_topic"][i] is None else RecordRef(result["k_topic"][i], result["k_partition"][i],
                                                                   result["k_offset"][i])
        cards[card].append(OfflineRow(key, result["trans_ts"][i], result["amount"][i],
                                      {name: result[name][i] for name in FEATURES}))
    return cards


# --- The comparison -------------------------------------------------------------------------------------


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def compare(verdicts: Mapping[RecordRef, Verdict], archived: Mapping[RecordRef, ArchivedTransaction],
            offline: Mapping[int, list[OfflineRow]], report: Report,
            coverage_start: float = -math.inf) -> list[tuple[Verdict, dict[str, float]]]:
    """Classify every feature value of every verdict that has its transaction; returns (verdict, batch
    definition's features) pairs for the score comparison. ``coverage_start``: the time of the oldest
    transaction the archive and history hold; a differing value whose windows reach before it cannot be
    checked (unverifiable)."""
    offline_by_key = {row.key: row for rows in offline.values() for row in rows if row.key is not None}
    pairs = []
    for key, verdict in verdicts.items():
        tx = archived.get(key)
        if tx is None:
            report.problem("transaction absent from the archive", _name(key))
            continue
        if (c.mask_card(tx.cc_num) != verdict.card or not close(tx.trans_ts, verdict.trans_ts)
                or abs(tx.amount - verdict.amount) > 0.005):
            report.problem("archived transaction differs from the verdict's (card, time or amount)", _name(key))
            continue
        missing = [name for name in FEATURES if not isinstance(verdict.features.get(name), (int, float))]
        if missing:
            report.problem("verdict without every feature", f"{_name(key)}: {', '.join(missing)}")
            continue
        report.compared += 1
        truth = offline_by_key[key].features
        # The oldest transaction the batch definition may read: 10 minutes before for the 10-minute values, 7 days
        # before the start of the transaction's day for the rest (the week, and the previous transaction's gap).
        oldest_week = (c.event_ms(tx.trans_ts) // c.MS_PER_DAY - 7) * c.SECONDS_PER_DAY
        differs = False
        for name in FEATURES:
            got = float(verdict.features[name])
            oldest = tx.trans_ts - c.WINDOW_10M_SECONDS if name in TEN_MINUTE_VALUES else oldest_week
            if close(got, truth[name]):
                kind = EXACT
            elif oldest < coverage_start:
                kind = UNVERIFIABLE
            else:
                kind = UNEXPLAINED
                differs = True
                if len(report.unexplained) < EXAMPLES:
                    report.unexplained.append({"transaction": _name(key), "card": verdict.card, "feature": name,
                                               "online": got, "batch_definition": truth[name]})
            report.features[name][kind] += 1
        if differs and verdict.late:
            report.problem("late verdicts (came behind Flink's watermark, scored on themselves alone)", _name(key))
        pairs.append((verdict, truth))
    return pairs


def compare_scores(pairs: Sequence[tuple[Verdict, dict[str, float]]], scorer: Scorer, feature_set: str,
                   threshold: float, report: Report) -> None:
    """Score the batch definition's vectors; record |logged - offline| and verdicts that would flip."""
    report.scored = True
    if not pairs:
        return
    scores = scorer.score([feature_vector(truth, feature_set) for _, truth in pairs])
    for (verdict, _), score in zip(pairs, scores, strict=True):
        report.score_differences.append(abs(verdict.score - score))
        offline_verdict = c.verdict(score, threshold)
        if offline_verdict != verdict.verdict:
            report.flips[f"{verdict.verdict} -> {offline_verdict}"] += 1
    report.score_differences.sort()


def run(records: Iterable[tuple[str, Mapping[str, Any]]], archived_rows: Iterable[ArchivedTransaction], source: str, *,
        history: pa.Table | None = None, scorer: Scorer | None = None, feature_set: str = c.DEFAULT_FEATURE_SET,
        threshold: float = c.DEFAULT_THRESHOLD, archive_problems: Sequence[str] = (),
        archive_complete: bool = False) -> Report:
    """The whole report from the inputs (each reader below gathers them). ``archive_complete``: the archive
    holds every transaction the topic ever carried (a local run, whose topic starts empty)."""
    report = Report(source)
    for problem in archive_problems:
        report.problem("unreadable archive line", problem)
    verdicts = read_verdicts(records, report)
    archived = index_archive(archived_rows, report)
    if not verdicts:
        report.problem("no verdict in the window")
        return report
    offline = offline_features(list(archived.values()), history)
    times = [row.trans_ts for rows in offline.values() for row in rows[:1]]
    coverage = -math.inf if archive_complete else min(times, default=math.inf)
    pairs = compare(verdicts, archived, offline, report, coverage)
    if scorer is not None:
        compare_scores(pairs, scorer, feature_set, threshold, report)
    return report


# --- Output -------------------------------------------------------------------------------------------


def table(report: Report) -> str:
    lines = [f"consistency of {report.source}: {report.verdicts:,} verdicts read, {report.compared:,} compared "
             "with the batch definition"]
    if report.features:
        lines.append(f"{'feature':<22} {'exact':>8} {'unverifiable':>13} {'unexplained':>12} {'exact %':>8}")
        for name in FEATURES:
            counts = report.features.get(name)
            if counts:
                total = sum(counts.values())
                lines.append(f"{name:<22} {counts[EXACT]:>8,} {counts[UNVERIFIABLE]:>13,} "
                             f"{counts[UNEXPLAINED]:>12,} {100 * counts[EXACT] / total:>7.1f}%")
    if report.scored:
        diffs = report.score_differences
        flips = ", ".join(f"{n} {what}" for what, n in sorted(report.flips.items())) or "none"
        if diffs:
            lines.append(f"scores (logged vs the batch definition's vector): |difference| p50 {_percentile(diffs, 50):.6f}, "
                         f"p99 {_percentile(diffs, 99):.6f}, max {diffs[-1]:.6f}; verdict flips: {flips}")
    else:
        lines.append("scores not compared (no model given)")
    for example in report.unexplained:
        lines.append(f"unexplained: {example['transaction']} card {example['card']} {example['feature']} online "
                     f"{example['online']!r}, batch definition {example['batch_definition']!r}")
    for name, count in sorted(report.problems.items()):
        examples = report.problem_examples.get(name)
        lines.append(f"input: {count:,} {name}" + (f" (e.g. {'; '.join(examples[:3])})" if examples else ""))
    return "\n".join(lines)


def write_png(report: Report, path: Path) -> None:
    """Per feature: the share of values unverifiable and unexplained (stacked bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fraudstream.files import atomic_path

    names = [name for name in FEATURES if report.features.get(name)]
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(names), 1) + 1.5))
    left = [0.0] * len(names)
    for kind, colour in ((UNVERIFIABLE, "tab:gray"), (UNEXPLAINED, "tab:red")):
        shares = [100 * report.features[n][kind] / sum(report.features[n].values()) for n in names]
        ax.barh(names, shares, left=left, color=colour, label=kind)
        left = [a + b for a, b in zip(left, shares)]
    ax.set(xlabel="% of values differing from the batch definition", xlim=(0, 100),
           title=f"Online vs batch features, {report.compared:,} transactions")
    ax.invert_yaxis()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _percentile(ordered: Sequence[float], q: float) -> float | None:
    return percentile(list(ordered), q) if ordered else None


def _name(key: RecordRef) -> str:
    return str(key)


# --- Readers ------------------------------------------------------------------------------------------


def log_record(text: str) -> dict[str, Any]:
    """A logged line as a record: its JSON object; a line that is not one counts as an unreadable verdict
    when it mentions a verdict, and as another line otherwise."""
    text = text.strip()
    try:
        record = json.loads(text) if text.startswith("{") else None
    except ValueError:
        record = None
    if isinstance(record, dict):
        return record
    return {"verdict": None} if '"verdict"' in text else {}


def read_log_lines(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file:line, record) of a JSON-lines log (the local pipeline's log group)."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        return [(f"{path}:{number}", log_record(line)) for number, line in enumerate(lines, start=1)]


def read_history(path: Path) -> pa.Table:
    """Transactions of `fraudstream generate`'s format (datetime) as cc_num, amount, trans_ts and tid."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from fraudstream.files import check_parquet

    check_parquet(path, {c.CC_NUM: "integer", c.AMOUNT: "number", c.DATETIME: "timestamp"})
    columns = [c.CC_NUM, c.AMOUNT, c.DATETIME] + ([c.TID] if c.TID in pq.read_schema(path).names else [])
    table = pq.read_table(path, columns=columns)
    seconds = pc.divide(pc.cast(pc.cast(table.column(c.DATETIME), pa.timestamp("us")), pa.int64()).cast(pa.float64()), 1e6)
    tids = table.column(c.TID).cast(pa.string()) if c.TID in columns else pa.nulls(table.num_rows, pa.string())
    return pa.table({c.CC_NUM: table.column(c.CC_NUM).cast(pa.int64()), c.AMOUNT: table.column(c.AMOUNT).cast(pa.float64()),
                     c.TRANS_TS: seconds, c.TID: tids})


def local(workdir: Path, *, history: Path | None = None, model: Path | None = None) -> Report:
    """The report of a local pipeline's work directory (what `fraudstream replay` leaves there)."""
    from fraudstream.checks import InputError
    from fraudstream.local.workdir import WorkDir
    from fraudstream.online.scorers import InProcessScorer

    files = WorkDir(workdir)
    run_record = files.read_run()
    records = read_log_lines(files.verdict_log) if files.verdict_log.is_file() else []
    report_problems: list[str] = []
    rows: list[ArchivedTransaction] = []
    if run_record.archived:
        rows, report_problems = archive.read_directory(files.archive)
    history = history or run_record.history
    if history is not None and not history.is_file():
        raise InputError(f"{history}: no such file (the history: transactions before the run)")
    model = model or run_record.model
    scorer = InProcessScorer(model) if model.is_file() else None
    report = run(records, rows, f"the local run in {workdir}", history=read_history(history) if history else None,
                 scorer=scorer,
                 feature_set=run_record.feature_set, threshold=run_record.threshold, archive_problems=report_problems,
                 # The topic started empty, so the archive holds all the run carried; with the history before it (or
                 # no 1-week records loaded, which would have counted an unknown one) nothing is missing.
                 archive_complete=history is not None or not run_record.batch_aggregates)
    if not run_record.archived:
        report.problem("the run kept no archive (archive_transactions off)")
    if scorer is None:
        report.problem("model not found; scores not compared", str(model))
    return report


def stack_archive(s3, bucket: str, first_day, last_day) -> tuple[list[ArchivedTransaction], list[str]]:
    """The archived transactions of the UTC days [first_day, last_day] from the data bucket."""
    from datetime import timedelta

    rows, problems = [], []
    day = first_day
    paginator = s3.get_paginator("list_objects_v2")
    while day <= last_day:
        prefix = f"{archive.S3_PREFIX}{archive.PARTITION_PREFIX}{day.isoformat()}/"
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not archive.is_data_file(item["Key"].rsplit("/", 1)[-1]):
                    continue
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode("utf-8", "replace")
                found, bad = archive.parse_lines(body.splitlines(), f"s3://{bucket}/{item['Key']}")
                rows.extend(found)
                problems.extend(bad)
        day += timedelta(days=1)
    return rows, problems


def stack(deployment, start, end, *, history: Path | None = None, model: Path | None = None,
          threshold: float = c.DEFAULT_THRESHOLD, page_size: int | None = None) -> Report:
    """The report of a deployed stack over [start, end]: the predict log group and the archive in S3.

    The archive is read from a week before ``start`` (the 1-week windows' history; the bucket keeps
    archive_retention_days of it) to ``end``'s day."""
    from datetime import timedelta

    from fraudstream import stack_outputs as out
    from fraudstream.online import aws
    from fraudstream.online.scorers import InProcessScorer
    from fraudstream.operate.deployed import aws_errors
    from fraudstream.operate.log_viewer import read_events, to_ms

    group = deployment.output(out.PREDICT_LOG_GROUP)
    logs = aws.new_client("logs", session=deployment.session)
    records = [(f"{group} event {event.get('eventId', '?')}", log_record(str(event.get("message", ""))))
               for event in read_events(logs, group, to_ms(start), to_ms(end), page_size=page_size)]
    s3 = aws.new_client("s3", session=deployment.session)
    with aws_errors():
        rows, problems = stack_archive(s3, deployment.output(out.DATA_BUCKET),
                                       (start - timedelta(days=7)).date(), end.date())
    scorer = InProcessScorer(model) if model else None
    report = run(records, rows, f"stack {deployment.stack} from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC",
                 history=read_history(history) if history else None, scorer=scorer,
                 feature_set=scorer.feature_set if scorer else c.DEFAULT_FEATURE_SET, threshold=threshold,
                 archive_problems=problems)
    return report
