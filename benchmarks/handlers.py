"""API calls per batch with the AWS backends, handler throughput with the local ones, cold start, asset size, memory.

The process pins itself to one CPU and XGBoost to one thread (a Lambda function at the stack's memory
size has about one vCPU). For batches of 1, 10 and 100 records on distinct cards:
- api_calls: AWS API calls the predict handler makes per batch (SageMaker Feature Store and
  endpoint clients, answers faked below botocore so nothing leaves this machine; counted with a
  botocore event hook). The AWS sample made 2 GetRecord + 1 InvokeEndpoint per transaction.
- tx_per_s: transactions per second through the whole predict logic (parse, store read, online
  features, model, one structured log record per verdict) with the embedded store and the in-process model;
  the events are built before the clock starts, as Lambda hands the handler a parsed event.
- aggregate_tx_per_s: aggregates per second through the aggregate logic into the embedded store.
Both are the fastest of rounds of 10 batches, as timeit reports the fastest run: slower rounds come from
other work on the machine (on a shared virtual machine, other tenants), not from the code; the median
round follows each (median_*), for what a busy machine gives.
Then baseline_tx_per_s: the same work at batch 100 without the handler's layers (base64 and JSON, the
fold-in, the feature vector, the model, the verdict message as a string; no checks, no store, no log
record, no metrics): what this machine allows, so figures from different machines compare as a ratio.
Then per handler, from its built asset in a fresh process with the AWS backends
(benchmarks/handler_process.py): cold_start_s (import and backends, median of 3 starts), peak_rss_mb
over batches of 100, and asset_bytes (the zipped code asset, Powertools layer excluded). Each start finds
compiled what a Lambda function finds compiled (Python's own modules and botocore, which the runtime
ships compiled) and compiles the rest, as on Lambda, where the function's code and its layer are
read-only and carry no bytecode. Last, local_scorer_import_s: what the in-process model (local runs) adds to a
start, with this environment's bytecode.

Usage: python benchmarks/handlers.py [--model data/model.tar.gz] [--seconds 3] [--profile]
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import importlib.metadata
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import orjson

os.environ["OMP_NUM_THREADS"] = "1"  # before xgboost loads: one thread, as on one vCPU
CPU = min(os.sched_getaffinity(0))
os.sched_setaffinity(0, {CPU})
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.setdefault(_key, "benchmark")

from fraudstream import contract as c  # noqa: E402
from fraudstream.local.lambda_runtime import msk_event, msk_record  # noqa: E402
from fraudstream.online import aggregate, aws, predict  # noqa: E402
from fraudstream.online.features import feature_vector, model_features  # noqa: E402
from fraudstream.contract import RecordRef  # noqa: E402
from fraudstream.online.messages import parse_transaction_features, records  # noqa: E402
from fraudstream.online.scorers import EndpointScorer, InProcessScorer  # noqa: E402
from fraudstream.online.settings import aggregate_settings, predict_settings  # noqa: E402
from fraudstream.online.stores import (  # noqa: E402
    EmbeddedOnlineStore,
    FeatureStoreOnlineStore,
)
from fraudstream.online.telemetry import logger, metrics, skip_unlogged_lookups  # noqa: E402
from fraudstream.online.verdict import Verdict  # noqa: E402
from fraudstream.packaging import lambda_assets  # noqa: E402
from fraudstream.paths import REPO  # noqa: E402

sys.path.insert(0, str(REPO))  # the fake AWS answers are the tests' own (tests/support/fakes.py)
from handler_process import answer  # noqa: E402  (benchmarks/handler_process.py: the fake AWS answers)

from tests.support.models import write_model  # noqa: E402

BATCH_SIZES = (1, 10, 100)
T0 = 1_700_000_000.0


def features_value(i: int, card: int) -> bytes:
    """Flink's message for a card's second transaction in 10 minutes, with a 16-hex-digit tid as the generator writes."""
    return json.dumps({c.CC_NUM: card, "merchant": "m", c.AMOUNT: 10.5, "zip_code": "0", c.TRANS_TS: T0 + i,
                       c.TID: f"{card:016x}", c.EVENT_MS: c.event_ms(T0 + i), c.NUM_TRANS_LAST_10M: 2,
                       c.AMT_SUM_LAST_10M: 25.0, c.PREV_EVENT_MS: c.event_ms(T0 + i - 30), c.NUM_TRANS_TODAY: 2,
                       c.AMT_SUM_TODAY: 25.0, c.NUM_TRANS_DAYS_BEFORE: [1, 0, 2, 0, 0, 1, 0],
                       c.AMT_SUM_DAYS_BEFORE: [9.5, 0, 30.25, 0, 0, 12.0, 0], c.LATE: False,
                       c.TOPIC: c.TRANSACTIONS_TOPIC, c.PARTITION: 0, c.OFFSET: i}).encode()


def event(size: int, first_card: int) -> dict:
    """An MSK event of ``size`` features messages (what both functions read) on distinct cards."""
    return msk_event(msk_record(c.TRANSACTION_FEATURES_TOPIC, 0, i, features_value(i, first_card + i)) for i in range(size))


aggregate_event = event  # the aggregate function reads the same messages


def count_aws_calls(size: int) -> int:
    """Run one batch against the SageMaker backends with faked HTTP answers; count the API calls."""
    store_client, model_client = aws.new_client("sagemaker-featurestore-runtime"), aws.new_client("sagemaker-runtime")
    calls = []
    for client in (store_client, model_client):
        client.meta.events.register("before-call", lambda **kwargs: calls.append(kwargs["event_name"]))
        client.meta.events.register("before-send", answer)
    settings = predict_settings({"MODEL_BACKEND": "endpoint", "ENDPOINT_NAME": "fraud"})
    predict.handle_predict_event(event(size, 4 * 10**15), FeatureStoreOnlineStore(store_client),
                                EndpointScorer(model_client, "fraud"), settings)
    return len(calls)


def handled_per_s(handle, build, size: int, seconds: float, batches_per_round: int = 10) -> tuple[float, float]:
    """Records per second through ``handle`` over events of ``size`` records from ``build`` (fresh cards each
    batch): (fastest, median) of rounds of ``batches_per_round`` batches, for ``seconds`` and at least 5 rounds.
    Only the handling is timed (with the metrics cleared after each batch, as the handlers' decorator flushes
    them), not building the events."""
    rates, busy, batches = [], 0.0, 0
    while busy < seconds or len(rates) < 5:
        events = [build(size, 4 * 10**15 + (batches + i) * size) for i in range(batches_per_round)]
        batches += batches_per_round
        started = time.perf_counter()
        for each in events:
            handle(each)
            metrics.clear_metrics()
        elapsed = time.perf_counter() - started
        busy += elapsed
        rates.append(size * batches_per_round / elapsed)
    return max(rates), statistics.median(rates)


def baseline_per_s(model_path: Path, seconds: float, size: int = 100) -> tuple[float, float]:
    """Transactions per second through the predict work alone: each value decoded, its features built from the
    message, one model call per batch, the verdict message as a string; no checks, store, log record or metrics."""
    scorer = InProcessScorer(model_path)
    feature_set = scorer.feature_set or c.DEFAULT_FEATURE_SET

    def handle(each: dict) -> None:
        messages = [orjson.loads(base64.b64decode(value)) for _, value in records(each)]
        features = [{c.AMOUNT: m[c.AMOUNT], c.NUM_TRANS_LAST_10M: m[c.NUM_TRANS_LAST_10M],
                     c.AVG_AMT_LAST_10M: m[c.AMT_SUM_LAST_10M] / m[c.NUM_TRANS_LAST_10M],
                     c.NUM_TRANS_LAST_1W: m[c.NUM_TRANS_TODAY] + sum(m[c.NUM_TRANS_DAYS_BEFORE]),
                     c.AVG_AMT_LAST_1W: (m[c.AMT_SUM_TODAY] + sum(m[c.AMT_SUM_DAYS_BEFORE]))
                     / (m[c.NUM_TRANS_TODAY] + sum(m[c.NUM_TRANS_DAYS_BEFORE])),
                     c.SECS_SINCE_PREV_TX: (m[c.EVENT_MS] - m[c.PREV_EVENT_MS]) / 1000} for m in messages]
        features = [c.add_ratio_features(f) for f in features]
        scores = scorer.score([feature_vector(f, feature_set) for f in features])
        for m, f, score in zip(messages, features, scores, strict=True):
            Verdict(c.mask_card(m[c.CC_NUM]), m[c.AMOUNT], score, c.verdict(score, c.DEFAULT_THRESHOLD), f).message()

    return handled_per_s(handle, event, size, seconds)


def throughput(size: int, model_path: Path, seconds: float) -> tuple[float, float]:
    """Transactions per second through the predict logic with the embedded store and in-process model."""
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedOnlineStore(Path(tmp) / "store.sqlite")
        scorer = InProcessScorer(model_path)
        settings = predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": str(model_path), "FEATURE_SET": scorer.feature_set})
        return handled_per_s(lambda each: predict.handle_predict_event(each, store, scorer, settings), event, size, seconds)


def aggregate_throughput(size: int, seconds: float) -> tuple[float, float]:
    """Aggregates per second through the aggregate logic into the embedded store."""
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedOnlineStore(Path(tmp) / "store.sqlite")
        settings = aggregate_settings({})
        return handled_per_s(lambda each: aggregate.handle_aggregate_event(each, store, settings), aggregate_event, size,
                             seconds)


def profile_predict(model_path: Path, batches: int = 100, top: int = 15) -> str:
    """The predict logic's profile at batch 100: the functions that take the time, by their own time."""
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedOnlineStore(Path(tmp) / "store.sqlite")
        scorer = InProcessScorer(model_path)
        settings = predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": str(model_path), "FEATURE_SET": scorer.feature_set})
        events = [event(100, 4 * 10**15 + i * 100) for i in range(batches)]
        profiler = cProfile.Profile()
        profiler.enable()
        for each in events:
            predict.handle_predict_event(each, store, scorer, settings)
            metrics.clear_metrics()
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def log_record_us(records: int = 20_000) -> dict[str, float]:
    """Microseconds per verdict record through the handlers' Powertools Logger, and through a Logger with
    Powertools' default formatter and serializer (the json module): what the log record puts under predict."""
    from aws_lambda_powertools import Logger

    tx = parse_transaction_features(RecordRef(c.TRANSACTION_FEATURES_TOPIC, 0, 0), json.loads(features_value(0, 4 * 10**15)))
    verdict = Verdict.of(tx, model_features(tx, None), 0.12, 0.5, 1.0)
    figures = {}
    for name, each in (("handlers", logger), ("json_module", Logger(service="benchmark-json"))):
        each.registered_handler.setStream(open(os.devnull, "w"))
        started = time.perf_counter()
        for _ in range(records):
            each.info(verdict.message(), extra=verdict.log_fields())
        figures[name] = (time.perf_counter() - started) / records * 1e6
    return figures


def zipped_bytes(directory: Path) -> int:
    """The size of ``directory`` zipped as the CDK zips a code asset."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return buffer.tell()


def layer_sources() -> set[Path]:
    """The Python files of the distributions the Powertools layer carries (lambda_assets: the layer's contents)."""
    found = set()
    for name in lambda_assets.LAYER_DISTRIBUTIONS + lambda_assets.COMPILED_DISTRIBUTIONS:
        dist = importlib.metadata.distribution(name)
        found.update(Path(dist.locate_file(f)).resolve() for f in dist.files or () if f.suffix == ".py")
    return found


def forget_function_bytecode(cache: Path, asset: Path) -> None:
    """Remove from a bytecode cache (PYTHONPYCACHEPREFIX layout: <cache>/<source dir>/<module>.<tag>.pyc) what a
    Lambda function would not find compiled: its own code and its layer's."""
    layer, asset, removed = layer_sources(), asset.resolve(), {"asset": 0, "layer": 0}
    for pyc in cache.rglob("*.pyc"):
        source = Path("/", pyc.parent.relative_to(cache), pyc.name.split(".")[0] + ".py").resolve()
        if source.is_relative_to(asset) or source in layer:
            removed["asset" if source.is_relative_to(asset) else "layer"] += 1
            pyc.unlink()
    if not all(removed.values()):  # the cache's layout is not the one expected: the figure would be wrong
        raise RuntimeError(f"no bytecode of the function or its layer found in {cache}: {removed}")


def fresh_process(asset: Path, starts: int = 3, batches: int = 30) -> dict:
    """Cold start (median over ``starts`` fresh processes) and peak memory of a handler with the AWS backends,
    over ``batches`` batches of 100 built here as for the in-process figures.

    A first start, not counted, compiles everything it imports into a bytecode cache of its own; then the
    handler's code and the layer's are taken out of it, and the counted starts write nothing, so each of
    them compiles those again, as every Lambda cold start does."""
    env = {**os.environ, "MODEL_BACKEND": "endpoint", "ENDPOINT_NAME": "fraud", "FEATURE_SET": c.DEFAULT_FEATURE_SET,
           "FEATURE_STORE_BACKEND": "sagemaker"}
    env.pop("PYTHONPATH", None)
    build = aggregate_event if asset.name.startswith("aggregate") else event
    with tempfile.TemporaryDirectory() as tmp:
        events, cache = Path(tmp) / "events.json", Path(tmp) / "bytecode"
        events.write_text(json.dumps([build(100, 4 * 10**15 + i * 100) for i in range(batches)]))

        def start(write_bytecode: bool) -> dict:
            run_env = {key: value for key, value in env.items() if key != "PYTHONDONTWRITEBYTECODE"}
            run_env["PYTHONPYCACHEPREFIX"] = str(cache)
            if not write_bytecode:
                run_env["PYTHONDONTWRITEBYTECODE"] = "1"
            out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "handler_process.py"), str(asset), str(events),
                                  "--repo", str(REPO)], env=run_env, cwd=asset.parent, capture_output=True, text=True,
                                 check=True)
            return json.loads(out.stdout.splitlines()[-1])

        start(write_bytecode=True)
        forget_function_bytecode(cache, asset)
        runs = [start(write_bytecode=False) for _ in range(starts)]
    return {"cold_start_s": statistics.median(r["cold_start_s"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "heavy_modules": runs[0]["heavy_modules"]}


def local_scorer_import_s(starts: int = 3) -> float:
    """Seconds a fresh process takes to import the in-process scorer's model format (xgboost, and with it
    scikit-learn, scipy and pandas, which xgboost's package imports whenever they are installed); median."""
    probe = ("import time; started = time.perf_counter(); import fraudstream.offline.model_artifact; "
             "print(time.perf_counter() - started)")
    return statistics.median(float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                                  check=True).stdout) for _ in range(starts))


def single_card_batch_seconds(size: int, model_path: Path) -> float:
    """Seconds for the predict logic over one batch of ``size`` transactions all on one card."""
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedOnlineStore(Path(tmp) / "store.sqlite")
        scorer = InProcessScorer(model_path)
        settings = predict_settings({"MODEL_BACKEND": "local", "MODEL_PATH": str(model_path), "FEATURE_SET": scorer.feature_set})
        batch = msk_event(msk_record(c.TRANSACTION_FEATURES_TOPIC, 0, i, features_value(i, 4 * 10**15))
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
    parser.add_argument("--profile", action="store_true", help="also print the predict logic's profile at batch 100")
    args = parser.parse_args()
    skip_unlogged_lookups()  # as the handlers' processes do at their start
    print(f"# one core: pinned to CPU {CPU}, XGBoost on 1 thread; logs built and written to /dev/null", flush=True)
    logger.registered_handler.setStream(open(os.devnull, "w"))  # log lines are built and written, not shown
    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model if args.model.exists() else write_model(Path(tmp) / "model.tar.gz", rows=20_000, rounds=100, max_depth=5)
        for size in BATCH_SIZES:
            calls = count_aws_calls(size)
            metrics.clear_metrics()
            (predict_fast, predict_median), (aggregate_fast, aggregate_median) = (
                throughput(size, model_path, args.seconds), aggregate_throughput(size, args.seconds))
            print(f"batch={size} api_calls={calls} tx_per_s={predict_fast:.0f} aggregate_tx_per_s={aggregate_fast:.0f} "
                  f"median_tx_per_s={predict_median:.0f} median_aggregate_tx_per_s={aggregate_median:.0f}", flush=True)
        fastest, median = baseline_per_s(model_path, args.seconds)
        print(f"baseline_tx_per_s={fastest:.0f} median_baseline_tx_per_s={median:.0f}", flush=True)
        floor = log_record_us()
        print(f"log_record_us={floor['handlers']:.1f} json_module_log_record_us={floor['json_module']:.1f}", flush=True)
        for size in (2_000, 10_000):
            print(f"single_card_batch={size} seconds={single_card_batch_seconds(size, model_path):.2f}", flush=True)
        assets = lambda_assets.build(Path(tmp) / "assets")
        for name in lambda_assets.HANDLERS:
            started = fresh_process(assets[name])
            print(f"handler={name} cold_start_s={started['cold_start_s']:.3f}", flush=True)
            print(f"handler={name} asset_bytes={zipped_bytes(assets[name])}", flush=True)
            print(f"handler={name} peak_rss_mb={started['peak_rss_mb']:.0f} heavy_modules_loaded={len(started['heavy_modules'])}",
                  flush=True)
        print(f"local_scorer_import_s={local_scorer_import_s():.2f}", flush=True)
        if args.profile:
            print(profile_predict(model_path), flush=True)


if __name__ == "__main__":
    main()
