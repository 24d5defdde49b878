"""The model: one interface (CSV rows in, scores out), two backends (SageMaker endpoint, in process)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from typing import Protocol

# InvokeEndpoint takes at most 6 MB; keep a margin for headers and encoding.
MAX_PAYLOAD_BYTES = 5_000_000


class ModelOutputError(RuntimeError):
    """The model answered with something that is not one fraud probability per row: the batch must fail
    (its trigger retries it, then sends it to the failure destination), never become verdicts."""


def check_scores(scores: Sequence, rows: int) -> list[float]:
    """The scores, if they are ``rows`` finite probabilities; ModelOutputError naming what is wrong otherwise."""
    if len(scores) != rows:
        raise ModelOutputError(f"the model returned {len(scores)} scores for {rows} rows")
    bad = [i for i, s in enumerate(scores)
           if isinstance(s, bool) or not isinstance(s, (int, float)) or not (math.isfinite(s) and 0.0 <= s <= 1.0)]
    if bad:
        raise ModelOutputError(f"the model returned {len(bad)} score(s) that are not probabilities in [0, 1], "
                               f"the first at row {bad[0]}: {scores[bad[0]]!r}")
    return [float(s) for s in scores]


class Scorer(Protocol):
    feature_set: str | None  # the set the model was trained on, when known

    def score(self, rows: Sequence[Sequence[float]]) -> list[float]:
        """One fraud probability per row."""


def to_csv_lines(rows: Sequence[Sequence[float]]) -> list[str]:
    """Model input rows as CSV lines (no header), the format the XGBoost container reads."""
    return [",".join(repr(float(v)) for v in row) for row in rows]


def to_csv(rows: Sequence[Sequence[float]]) -> str:
    return "\n".join(to_csv_lines(rows))


def payloads(rows: Sequence[Sequence[float]], max_bytes: int = MAX_PAYLOAD_BYTES) -> Iterator[tuple[int, str]]:
    """(number of rows, CSV body) requests covering ``rows``, split only where one would exceed max_bytes."""
    lines, size = [], 0
    for line in to_csv_lines(rows):
        if lines and size + len(line) + 1 > max_bytes:
            yield len(lines), "\n".join(lines)
            lines, size = [], 0
        lines.append(line)
        size += len(line) + 1
    if lines:
        yield len(lines), "\n".join(lines)


class EndpointScorer:
    """A SageMaker endpoint running the built-in XGBoost container."""

    def __init__(self, client, endpoint_name: str, feature_set: str | None = None, max_bytes: int = MAX_PAYLOAD_BYTES):
        self.client = client
        self.endpoint_name = endpoint_name
        self.feature_set = feature_set
        self.max_bytes = max_bytes

    def score(self, rows: Sequence[Sequence[float]]) -> list[float]:
        scores: list[float] = []
        for count, body in payloads(rows, self.max_bytes):
            response = self.client.invoke_endpoint(
                EndpointName=self.endpoint_name, ContentType="text/csv", Accept="application/json", Body=body.encode()
            )
            predictions = json.loads(response["Body"].read())["predictions"]
            if len(predictions) != count:
                raise ModelOutputError(f"endpoint {self.endpoint_name} returned {len(predictions)} scores for {count} rows")
            scores.extend(p.get("score") if isinstance(p, dict) else None for p in predictions)
        return scores


class InProcessScorer:
    """The same model.tar.gz loaded in this process, scored as the container scores the CSV of the rows."""

    def __init__(self, model_path: str | os.PathLike):
        from fraudstream.offline import (
            model_artifact as model,  # xgboost: only where this backend is chosen
        )

        self._model = model
        self.booster = model.load_artifact(model_path)
        self.feature_set = model.feature_set_of(self.booster)

    def score(self, rows: Sequence[Sequence[float]]) -> list[float]:
        return self._model.score_rows(self.booster, rows) if rows else []
