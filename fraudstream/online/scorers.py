"""The model: one interface (CSV rows in, scores out), two backends (SageMaker endpoint, in process)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Protocol

# InvokeEndpoint takes at most 6 MB; keep a margin for headers and encoding.
MAX_PAYLOAD_BYTES = 5_000_000


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
                raise RuntimeError(f"endpoint {self.endpoint_name} returned {len(predictions)} scores for {count} rows")
            scores.extend(float(p["score"]) for p in predictions)
        return scores


class InProcessScorer:
    """The same model.tar.gz loaded in this process, scored through the same CSV contract."""

    def __init__(self, model_path: str | os.PathLike):
        from fraudstream.offline import (
            model_artifact as model,  # xgboost: only where this backend is chosen
        )

        self._model = model
        self.booster = model.load_artifact(model_path)
        self.feature_set = model.feature_set_of(self.booster)

    def score(self, rows: Sequence[Sequence[float]]) -> list[float]:
        return self._model.score_csv(self.booster, to_csv(rows)) if rows else []
