"""One handler in a fresh process, started as Lambda starts it: what `benchmarks/handlers.py` runs per handler.

Imports the handler from its built asset with the AWS backends (endpoint scorer, Feature Store store)
and times that import (the cold start: Powertools, botocore, our modules, the clients), then runs
batches of 100 through `lambda_handler` with AWS answers faked below botocore and reports the peak
resident memory. Prints one JSON object.

Usage: python benchmarks/handler_process.py ASSET_DIR [--batches 30]
"""

import sys
import time

if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])  # the asset first, as /var/task on Lambda
    started = time.perf_counter()
    import handler  # noqa: E402  (timed: this is the cold start)

    cold_start_s = time.perf_counter() - started

import argparse  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402


def fake_answers() -> None:
    """Answer the container's clients without a network: empty stores, one score per CSV row, puts accepted."""
    from botocore.awsrequest import AWSResponse

    from fraudstream.online import aws

    class Raw:
        def __init__(self, data: bytes):
            self.data = data

        def stream(self, **_kwargs):
            yield self.data

        def read(self, *_args):
            data, self.data = self.data, b""
            return data

    def answer(request, **_kwargs):
        if "invocations" in request.url:
            body = {"predictions": [{"score": 0.1}] * (request.body.decode().count("\n") + 1)}
        elif "BatchGetRecord" in str(request.headers.get("X-Amz-Target", "")) or request.url.endswith("/BatchGetRecord"):
            body = {"Records": [], "Errors": [], "UnprocessedIdentifiers": []}
        else:
            body = {}
        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, Raw(json.dumps(body).encode()))

    for service in ("sagemaker-featurestore-runtime", "sagemaker-runtime"):
        aws.client(service).meta.events.register("before-send", answer)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent before exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def event(name: str, size: int, first_card: int) -> dict:
    aggregates = name.startswith("aggregate")
    records = []
    for i in range(size):
        card, ts = first_card + i, 1_700_000_000.0 + i
        message = ({"cc_num": card, "num_trans_last_10m": 2, "avg_amt_last_10m": 12.5, "trans_ts": ts, "prev_trans_ts": ts - 30}
                   if aggregates else {"cc_num": card, "amount": 10.0 + i, "trans_ts": ts, "tid": f"t{card}"})
        records.append({"topic": "t", "partition": 0, "offset": i, "timestamp": 0, "timestampType": "CREATE_TIME",
                        "key": None, "value": base64.b64encode(json.dumps(message).encode()).decode(), "headers": []})
    return {"eventSource": "aws:kafka", "records": {"t-0": records}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("asset", help="the handler's built asset directory")
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args()
    from fraudstream.local.lambda_runtime import LambdaContext
    from fraudstream.online.telemetry import logger

    logger.registered_handler.setStream(open(os.devnull, "w"))
    fake_answers()
    name = os.path.basename(os.path.normpath(args.asset))
    context = LambdaContext(function_name=name)
    report, sys.stdout = sys.stdout, open(os.devnull, "w")  # the EMF metrics Powertools prints
    for batch in range(args.batches):
        handler.lambda_handler(event(name, 100, 4 * 10**15 + batch * 100), context)
    sys.stdout = report
    heavy = [m for m in ("xgboost", "sklearn", "scipy", "pandas", "numpy", "boto3") if m in sys.modules]
    print(json.dumps({"cold_start_s": cold_start_s, "peak_rss_mb": peak_rss_mb(),
                      "heavy_modules": heavy}))


if __name__ == "__main__":
    main()
