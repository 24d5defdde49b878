"""AWS clients with explicit timeouts and adaptive retries: the one definition of both.

Adaptive retries back off on throttling (Feature Store and endpoint quotas are per account);
timeouts are short because a Lambda waiting on a hung connection holds its whole batch. The
handlers' clients come from botocore alone: boto3 (and the s3transfer it imports) would add
about 0.1 s to every cold start for nothing they use (docs/lambda.md: "Handler speed").
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import botocore.session
from botocore.config import Config

if TYPE_CHECKING:
    import boto3

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
    """A client for ``service`` with this project's timeouts and retries, from ``session`` (the operating
    commands' boto3 session) or, without one, from a new botocore session (default credentials and region)."""
    config = config or client_config(service)
    if session is None:
        return botocore.session.get_session().create_client(service, config=config, **kwargs)
    return session.client(service, config=config, **kwargs)


@functools.cache
def _container_session() -> botocore.session.Session:
    return botocore.session.get_session()  # one per container: each session loads the endpoint data again


@functools.cache
def client(service: str):
    """The container's one client for ``service`` (cached: creating clients costs ~50 ms each)."""
    return _container_session().create_client(service, config=client_config(service))
