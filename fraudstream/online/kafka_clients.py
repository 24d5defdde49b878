"""How our Kafka clients authenticate: IAM on MSK (SASL/OAUTHBEARER tokens signed by AWS's signer, over
TLS), TLS, or plaintext on a local broker. The simulator (fraudstream/operate/simulator.py) and the predict
function's verdict writer (fraudstream/online/verdict_topic.py) both build their clients from here.

kafka-python and the signer are imported on first use: importing kafka-python takes about a second, which
neither a command's parser nor a function's cold start should pay before it sends anything."""

from __future__ import annotations

import functools
import time
from typing import Any

from fraudstream import contract as c

SECURITY_MODES = ("iam", "plaintext", "ssl")
TOKEN_REFRESH_MARGIN_S = 60.0  # fetch a new IAM token this long before the current one expires


@functools.cache
def _token_provider_class():
    from kafka.sasl.oauth import AbstractTokenProvider

    class MSKTokenProvider(AbstractTokenProvider):
        """SASL/OAUTHBEARER tokens for MSK IAM auth, signed by AWS's signer with the default credentials.

        kafka-python asks for a token on every connection; a token is reused until shortly before it
        expires (as AbstractTokenProvider asks), so reconnects do not re-sign each time.
        """

        def __init__(self, region: str) -> None:
            super().__init__()
            self.region = region
            self._token: str | None = None
            self._expires_at = 0.0

        def token(self) -> str:
            from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

            if self._token is None or time.time() >= self._expires_at - TOKEN_REFRESH_MARGIN_S:
                token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(self.region)
                self._token, self._expires_at = token, float(expiry_ms) / 1000.0
            return self._token

    return MSKTokenProvider


def token_provider(region: str):
    """An `AbstractTokenProvider` whose token() is `MSKAuthTokenProvider.generate_auth_token(region)[0]`."""
    return _token_provider_class()(region)


def security_config(security: str, region: str | None = None, ssl_cafile: str | None = None) -> dict[str, Any]:
    """kafka-python keyword arguments for ``security`` (one of SECURITY_MODES), reconnect back-off included:
    MSK's brokers accept few new IAM connections a second (contract.MSK_RECONNECT_BACKOFF_MS); a local broker
    has no such quota."""
    if security not in SECURITY_MODES:
        raise ValueError(f"security {security!r}: expected one of {', '.join(SECURITY_MODES)}")
    if security == "iam":
        return {"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER",
                "sasl_oauth_token_provider": token_provider(region),
                "reconnect_backoff_ms": c.MSK_RECONNECT_BACKOFF_MS,
                "reconnect_backoff_max_ms": c.MSK_RECONNECT_BACKOFF_MAX_MS}
    backoff = {"reconnect_backoff_ms": 100, "reconnect_backoff_max_ms": 1000}
    if security == "ssl":
        return {"security_protocol": "SSL", **({"ssl_cafile": ssl_cafile} if ssl_cafile else {}), **backoff}
    return {"security_protocol": "PLAINTEXT", **backoff}
