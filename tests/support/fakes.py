"""Test doubles at the AWS boundary: canned HTTP answers injected below botocore's retry loop."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

from botocore.awsrequest import AWSResponse


class _Raw(io.BytesIO):
    """What botocore reads a response from: stream() for parsed bodies, read() for streaming ones."""

    def stream(self, **_kwargs):
        yield self.getvalue()


def http_response(status: int, body: dict | bytes, content_type: str = "application/json") -> AWSResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return AWSResponse("https://fake.amazonaws.com/", status, {"Content-Type": content_type}, _Raw(data))


def answer_with(client, operation: str, responses: list[Callable[[], AWSResponse] | AWSResponse]) -> list:
    """Make ``client`` receive ``responses`` in turn for ``operation`` (retries included); returns the request log."""
    calls: list = []
    event = f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}"

    def handler(request, **_kwargs):
        calls.append(request)
        response = responses[min(len(calls), len(responses)) - 1]
        return response() if callable(response) else response

    client.meta.events.register(event, handler)
    return calls


THROTTLED = http_response(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
