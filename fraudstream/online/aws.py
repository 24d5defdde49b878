"""boto3 clients with explicit timeouts and adaptive retries: the one definition of both.

Adaptive retries back off on throttling (Feature Store and endpoint quotas are per account);
timeouts are short because a Lambda waiting on a hung connection holds its whole batch.
"""

from __future__ import annotations

import functools

import boto3
from botocore.config import Config

RETRY_ATTEMPTS = 5
TIMEOUTS = {  # service -> (connect, read) seconds
    "sagemaker-featurestore-runtime": (2, 5),
    "sagemaker-runtime": (2, 10),
}


def client_config(service: str, attempts: int = RETRY_ATTEMPTS, **options) -> Config:
    """This project's botocore configuration of ``service``; ``options`` add Config settings (pool size...)."""
    connect, read = TIMEOUTS.get(service, (None, None))
    timeouts = {"connect_timeout": connect, "read_timeout": read} if connect else {}
    return Config(retries={"mode": "adaptive", "total_max_attempts": attempts}, **timeouts, **options)


def new_client(service: str, session: boto3.session.Session | None = None, config: Config | None = None, **kwargs):
    """A client for ``service`` with this project's timeouts and retries (from ``session``, or a new default one)."""
    session = session or boto3.session.Session()
    return session.client(service, config=config or client_config(service), **kwargs)


@functools.cache
def client(service: str):
    """The container's one client for ``service`` (cached: creating clients costs ~50 ms each)."""
    return new_client(service)
