"""One handler in a fresh process, started as Lambda starts it: what `benchmarks/handlers.py` runs per handler.

Imports the handler from its built asset with the AWS backends (endpoint scorer, Feature Store store)
and times that import (the cold start: Powertools, botocore, our modules, the clients), then runs
batches of 100 through `lambda_handler` with AWS answers faked below botocore and reports the peak
resident memory. Prints one JSON object.

Usage: python benchmarks/handler_process.py ASSET_DIR EVENTS_JSON --repo REPO
"""

import sys
import time

if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])  # the asset first, as /var/task on Lambda
    started = time.perf_counter()
    import handler  # noqa: E402  (timed: this is the cold start)

    cold_start_s = time.perf_counter() - started

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402


def answer(request, **_kwargs):
    """The AWS answer to one request of the handlers' clients, without a network: empty stores, one score per CSV
    row, puts accepted (with the tests' own canned responses, tests/support/fakes.py). A botocore before-send hook."""
    from tests.support.fakes import http_response

    if "invocations" in request.url:
        return http_response(200, {"predictions": [{"score": 0.1}] * (request.body.decode().count("\n") + 1)})
    if "BatchGetRecord" in str(request.headers.get("X-Amz-Target", "")) or request.url.endswith("/BatchGetRecord"):
        return http_response(200, {"Records": [], "Errors": [], "UnprocessedIdentifiers": []})
    return http_response(200, {})


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent before exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("asset", help="the handler's built asset directory")
    parser.add_argument("events", help="a JSON file holding a list of MSK events (benchmarks/handlers.py writes it)")
    parser.add_argument("--repo", required=True, help="the repository, for the tests' fake AWS answers")
    args = parser.parse_args()
    # After the timed import, so the asset's modules are the ones measured: the repository for tests/support.
    sys.path.insert(0, args.repo)
    from fraudstream.local.lambda_runtime import LambdaContext
    from fraudstream.online.telemetry import logger

    logger.registered_handler.setStream(open(os.devnull, "w"))
    from fraudstream.online import aws

    for service in ("sagemaker-featurestore-runtime", "sagemaker-runtime"):
        aws.client(service).meta.events.register("before-send", answer)
    with open(args.events) as file:
        events = json.load(file)
    name = os.path.basename(os.path.normpath(args.asset))
    context = LambdaContext(function_name=name)
    report, sys.stdout = sys.stdout, open(os.devnull, "w")  # the EMF metrics Powertools prints
    for each in events:
        handler.lambda_handler(each, context)
    sys.stdout = report
    heavy = [m for m in ("xgboost", "sklearn", "scipy", "pandas", "numpy", "boto3") if m in sys.modules]
    print(json.dumps({"cold_start_s": cold_start_s, "peak_rss_mb": peak_rss_mb(),
                      "heavy_modules": heavy}))


if __name__ == "__main__":
    main()
