"""API calls per batch with the AWS backends, and handler throughput with the local ones.

For batches of 1, 10 and 100 transactions on distinct cards:
- api_calls: AWS API calls the predict handler makes per batch (SageMaker Feature Store and
  endpoint clients, answers faked below botocore so nothing leaves this machine; counted with a
  botocore event hook). The AWS sample made 2 GetRecord + 1 InvokeEndpoint per transaction.
- tx_per_s: transactions per second through the whole predict logic (parse, store read, online
  features, model, log line) with the embedded store and the in-process model.

Usage: python benchmarks/handlers.py [--model data/model.tar.gz] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.setdefault(_key, "benchmark")

from fraudstream import contract as c  # noqa: E402
from fraudstream.local.lambda_runtime import msk_event, msk_record  # noqa: E402
from fraudstream.online import aws, predict  # noqa: E402
from fraudstream.online.scorers import EndpointScorer, InProcessScorer  # noqa: E402
from fraudstream.online.settings import predict_settings  # noqa: E402
from fraudstream.online.stores import (  # noqa: E402
    EmbeddedOnlineStore,
    FeatureStoreOnlineStore,
)
from fraudstream.online.telemetry import logger, metrics  # noqa: E402
from fraudstream.paths import REPO  # noqa: E402

sys.path.insert(0, str(REPO))  # the fake AWS answers are the tests' own (tests/support/fakes.py)
from tests.support.fakes import http_response  # noqa: E402
from tests.support.models import write_model  # noqa: E402

BATCH_SIZES = (1, 10, 100)
T0 = 1_700_000_000.0


def event(size: int, first_card: int) -> dict:
    """An MSK event of ``size`` transactions on distinct cards."""
    return msk_event(
        msk_record(c.TRANSACTIONS_TOPIC, 0, i, json.dumps({c.CC_NUM: first_card + i, c.AMOUNT: 10.0 + i,
                                                           c.TRANS_TS: T0 + i, "merchant": "m", "zip_code": "0"}).encode())
        for i in range(size)
    )


def count_aws_calls(size: int) -> int:
    """Run one batch against the SageMaker backends with faked HTTP answers; count the API calls."""
    store_client, model_client = aws.new_client("sagemaker-featurestore-runtime"), aws.new_client("sagemaker-runtime")
    calls = []

    def answer(request, **_kwargs):
        if "invocations" in request.url:
            rows = request.body.decode().count("\n") + 1
            body = {"predictions": [{"score": 0.1}] * rows}
        else:
            body = {"Records": [], "Errors": [], "UnprocessedIdentifiers": []}
        return http_response(200, body)

    for client in (store_client, model_client):
        client.meta.events.register("before-call", lambda **kwargs: calls.append(kwargs["event_name"]))
        client.meta.events.register("before-send", answer)
    settings = predict_settings({"MODEL_BACKEND": "endpoint", "ENDPOINT_NAME": "fraud"})
    predict.handle_predict_event(event(size, 4 * 10**15), FeatureStoreOnlineStore(store_client),
                                EndpointScorer(model_client, "fraud"), settings)
    return len(calls)


def throughput(size: int, model_path: Path, seconds: float) -> float:
    """Transactions per second through the predict logic with the embedded store and in-process model."""
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedOnlineStore(Path(tmp) / "store.sqlite")
        scorer = InProcessScorer(model_path)
        settings = predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": str(model_path), "FEATURE_SET": scorer.feature_set})
        done, batches, started = 0, 0, time.perf_counter()
        while time.perf_counter() - started < seconds or batches < 3:
            predict.handle_predict_event(event(size, 4 * 10**15 + batches * size), store, scorer, settings)
            metrics.clear_metrics()
            done, batches = done + size, batches + 1
        return done / (time.perf_counter() - started)


def single_card_batch_seconds(size: int, model_path: Path) -> float:
    """Seconds for the predict logic over one batch of ``size`` transactions all on one card (the fold-in's worst case)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedOnlineStore(Path(tmp) / "store.sqlite")
        scorer = InProcessScorer(model_path)
        settings = predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": str(model_path), "FEATURE_SET": scorer.feature_set})
        batch = msk_event(
            msk_record(c.TRANSACTIONS_TOPIC, 0, i, json.dumps({c.CC_NUM: 4 * 10**15, c.AMOUNT: 10.0, c.TRANS_TS: T0 + i}).encode())
            for i in range(size))
        started = time.perf_counter()
        predict.handle_predict_event(batch, store, scorer, settings)
        metrics.clear_metrics()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("data/model.tar.gz"), help="model.tar.gz (default: data/model.tar.gz, "
                        "or a stand-in trained here if missing)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per batch size (default: 3)")
    args = parser.parse_args()
    logger.registered_handler.setStream(open(os.devnull, "w"))  # log lines are built and written, not shown
    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model if args.model.exists() else write_model(Path(tmp) / "model.tar.gz", rows=20_000, rounds=100, max_depth=5)
        for size in BATCH_SIZES:
            calls = count_aws_calls(size)
            metrics.clear_metrics()
            print(f"batch={size} api_calls={calls} tx_per_s={throughput(size, model_path, args.seconds):.0f}", flush=True)
        for size in (2_000, 10_000):
            print(f"single_card_batch={size} seconds={single_card_batch_seconds(size, model_path):.2f}", flush=True)


if __name__ == "__main__":
    main()
