"""What Lambda gives a handler, on one machine: the MSK trigger's event, a context, and a cold start.

`msk_event` builds the event Lambda's MSK trigger delivers (AWS's documented shape: records keyed by
`topic-partition`, base64 keys and values, headers as lists of byte values); the local trigger builds
its events with it, and so do the tests and benchmarks. `load_handler` imports a handler module of
lambdas/ as Lambda does at cold start, with the function's environment variables set only while it
reads them.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from fraudstream.online.telemetry import metrics
from fraudstream.paths import LAMBDAS

LOCAL_CLUSTER_ARN = "arn:aws:kafka:local:000000000000:cluster/local/00000000-0000-0000-0000-000000000000-1"


def msk_record(topic: str, partition: int, offset: int, value: bytes | None, key: bytes | None = None,
               timestamp_ms: int = 0, headers: Iterable[tuple[str, bytes]] = ()) -> dict[str, Any]:
    """One record of an MSK event; ``key`` None leaves the key out, as Lambda does for a record without one."""
    record: dict[str, Any] = {
        "topic": topic, "partition": partition, "offset": offset, "timestamp": timestamp_ms,
        "timestampType": "CREATE_TIME",
        "value": None if value is None else base64.b64encode(value).decode(),
        "headers": [{name: list(data)} for name, data in headers],
    }
    if key is not None:
        record["key"] = base64.b64encode(key).decode()
    return record


def msk_event(records: Iterable[Mapping[str, Any]], cluster_arn: str = LOCAL_CLUSTER_ARN,
              bootstrap_servers: str = "") -> dict[str, Any]:
    """The MSK trigger's event for ``records`` (from msk_record), grouped by topic-partition in their order."""
    grouped: dict[str, list] = defaultdict(list)
    for record in records:
        grouped[f"{record['topic']}-{record['partition']}"].append(dict(record))
    return {"eventSource": "aws:kafka", "eventSourceArn": cluster_arn, "bootstrapServers": bootstrap_servers,
            "records": dict(grouped)}


@dataclass(frozen=True)
class LambdaContext:
    """The attributes of Lambda's context object that the handlers (through Powertools) read."""

    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:local"
    aws_request_id: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` set in os.environ while the block runs, the previous values restored after."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def invoker(module: ModuleType):
    """The module's lambda_handler as the local triggers call it: one invocation, then a fresh metrics set.

    With POWERTOOLS_METRICS_DISABLED (set locally) Powertools does not clear what it did not publish, and
    prints the set anyway once a metric holds 100 values; Lambda starts each function in its own process.
    """
    def invoke(event: dict, context: Any) -> Any:
        try:
            return module.lambda_handler(event, context)
        finally:
            metrics.clear_metrics()

    return invoke


def load_handler(name: str, env: Mapping[str, str]) -> ModuleType:
    """lambdas/<name>/handler.py, imported fresh with ``env`` as its environment (settings are read at import)."""
    path = LAMBDAS / name / "handler.py"
    spec = importlib.util.spec_from_file_location(f"lambda_{name}", path)
    module = importlib.util.module_from_spec(spec)
    with environment(env):
        spec.loader.exec_module(module)
    return module
