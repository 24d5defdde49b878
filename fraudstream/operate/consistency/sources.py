"""The inputs of a report: a local run's work directory, or a deployed stack's log group and S3 archive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from fraudstream import archive
from fraudstream import contract as c
from fraudstream.archive import ArchivedTransaction
from fraudstream.operate.consistency.comparison import run
from fraudstream.operate.consistency.report import Report

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


def check_local_run(workdir: Path, *, history: Path | None = None, model: Path | None = None) -> Report:
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


def check_stack(deployment, start, end, *, history: Path | None = None, model: Path | None = None,
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
