"""boto3 clients, created once per container, with explicit timeouts and adaptive retries.

Adaptive retries back off on throttling (Feature Store and endpoint quotas are per account);
timeouts are short because a Lambda waiting on a hung connection holds its whole batch.
"""

from __future__ import annotations

import functools

import boto3
from botocore.config import Config

RETRY_ATTEMPTS = 5
CONFIGS = {
    "sagemaker-featurestore-runtime": Config(connect_timeout=2, read_timeout=5, retries={"mode": "adaptive", "total_max_attempts": RETRY_ATTEMPTS}),
    "sagemaker-runtime": Config(connect_timeout=2, read_timeout=10, retries={"mode": "adaptive", "total_max_attempts": RETRY_ATTEMPTS}),
}


def new_client(service: str, session: boto3.session.Session | None = None, **kwargs):
    """A client for ``service`` with this project's timeouts and retries (from ``session``, or a new default one)."""
    session = session or boto3.session.Session()
    return session.client(service, config=CONFIGS.get(service, Config(retries={"mode": "standard"})), **kwargs)


@functools.cache
def client(service: str):
    """The container's one client for ``service`` (cached: creating clients costs ~50 ms each)."""
    return new_client(service)
