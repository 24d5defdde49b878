"""`fraudstream consistency`: the features the predict handler served, recomputed with the batch SQL.

Input: the verdicts the handler logged (each carries its features, score, event time and its place in the
transactions topic) and the transactions Flink archived (fraudstream/archive.py). For each verdict it
computes the batch definition (fraudstream/offline/sql/batch_features.sql over the archive and the history
before it, DuckDB): the value training used for the same transaction. The online path serves that definition
by construction (docs/online-path.md: "The online definition"), so each feature value is exact (equal to it,
relative 1e-9), unverifiable (different, and the history the check needs is not there) or unexplained: a
defect. With the model, the scores of the batch definition's vectors are compared with the logged ones, and
verdict flips counted; the command exits 1 on any unexplained value or flip.

Plain functions over plain values, in three modules: sources (what a local run or a stack left: check_local_run,
check_stack), comparison (run: verdicts against the batch definition, and scores) and report (the classes,
the table, the chart).
"""

from __future__ import annotations

from fraudstream.operate.consistency.comparison import run, same_value
from fraudstream.operate.consistency.report import CLASSES, EXACT, EXAMPLES, FEATURES, UNEXPLAINED, UNVERIFIABLE, Report, table, write_png
from fraudstream.operate.consistency.sources import check_local_run, check_stack, read_history, read_log_lines

__all__ = ["CLASSES", "EXACT", "EXAMPLES", "FEATURES", "UNEXPLAINED", "UNVERIFIABLE", "Report", "check_local_run",
           "check_stack", "read_history", "read_log_lines", "run", "same_value", "table", "write_png"]
