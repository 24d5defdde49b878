"""The two Lambda entry points, loaded as Lambda loads them and configured by their environment."""

from __future__ import annotations

import pytest

from fraudstream import contract as c
from fraudstream.local.lambda_runtime import LambdaContext, load_handler
from fraudstream.online.settings import ConfigurationError
from fraudstream.online.stores import EmbeddedOnlineStore
from tests.support.events import documented_example, features_message, invalid_report, msk_event
from tests.support.models import write_model

CARD = 4111111111111111
DAY = 19_675  # 2023-11-14
T = DAY * c.SECONDS_PER_DAY + 12 * 3600.0
FEATURES = c.TRANSACTION_FEATURES_TOPIC


def Context() -> LambdaContext:  # noqa: N802 - reads like the class it stands for
    return LambdaContext(function_name="predict", aws_request_id="req-1")


def _load_handler(name, env, _monkeypatch):
    return load_handler(name, env)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return {fs: str(write_model(tmp_path_factory.mktemp(fs) / "model.tar.gz", fs)) for fs in ("v1", "v2")}


def _env(tmp_path, artifact, **extra):
    return {"FEATURE_STORE_BACKEND": "embedded", "EMBEDDED_STORE_PATH": str(tmp_path / "store.sqlite"),
            "MODEL_BACKEND": "local", "MODEL_PATH": artifact["v2"], **extra}


def test_both_handlers_run_end_to_end_locally_through_their_environment(tmp_path, artifact, monkeypatch, logs):
    # Given the card's nightly record (3 transactions the day before, 30.0 in all) in the embedded store
    EmbeddedOnlineStore(tmp_path / "store.sqlite").put_record(c.BATCH_FEATURE_GROUP, {
        c.CC_NUM: CARD, c.TRANS_TIME: float(DAY * c.SECONDS_PER_DAY), c.LAST_TRANS_TIME: T - 7200,
        **{name: 3 if k == 0 else 0 for k, name in enumerate(c.DAY_COUNTS)},
        **{name: 30.0 if k == 0 else 0.0 for k, name in enumerate(c.DAY_SUMS)}})
    env = _env(tmp_path, artifact)
    aggregate_handler = _load_handler("aggregate_to_feature_store", env, monkeypatch)
    predict_handler = _load_handler("predict_from_features", env, monkeypatch)
    # When both read Flink's message of the card's second transaction in 10 minutes
    event = msk_event([features_message(CARD, T + 30, 12.0, offset=8, count_10m=2, sum_10m=22.0, prev_ts=T,
                                        today=(2, 22.0))], topic=FEATURES)
    assert aggregate_handler.lambda_handler(event, Context()) == {"written": 1, "skipped_stale": 0, "invalid": 0}
    summary = predict_handler.lambda_handler(event, Context())
    # Then the aggregate function stored the card's 10-minute record and the predict function scored it once,
    # its week from the record and the message
    stored = EmbeddedOnlineStore(tmp_path / "store.sqlite").get_records({c.STREAMING_FEATURE_GROUP: [CARD]})
    assert stored[c.STREAMING_FEATURE_GROUP][CARD][c.NUM_TRANS_LAST_10M] == 2
    assert {k: v for k, v in summary.items() if k != "fraud"} == {"transactions": 1, "late": 0, "invalid": 0,
                                                                  "duplicates": 0, "published": 0}
    [verdict] = [r for r in logs.records() if r["message"].startswith("Prediction:")]
    assert "num last 10m: 2, avg amt last 10m: 11.00" in verdict["message"]
    assert verdict["function_request_id"] == "req-1"
    assert (verdict["features"][c.NUM_TRANS_LAST_1W], verdict["features"][c.AVG_AMT_LAST_1W]) == (5, 52.0 / 5)
    assert (verdict["offset"], verdict["features"][c.SECS_SINCE_PREV_TX]) == (8, 30.0)


def test_the_predict_function_logs_what_flink_refused_from_its_second_trigger(tmp_path, artifact, monkeypatch, logs):
    handler = _load_handler("predict_from_features", _env(tmp_path, artifact), monkeypatch)
    event = msk_event([invalid_report(3, partition=1), b"not a report"], topic=c.INVALID_TRANSACTIONS_TOPIC)
    assert handler.lambda_handler(event, Context())["transactions"] == 0
    errors = [r for r in logs.records() if r["level"] == "ERROR"]
    assert [(r["message"], r["topic"], r["partition"], r["offset"]) for r in errors] == [
        ("invalid transaction refused", c.TRANSACTIONS_TOPIC, 1, 3),
        ("invalid record skipped", c.INVALID_TRANSACTIONS_TOPIC, 0, 1)]


def test_a_card_number_too_large_for_the_store_is_skipped_not_fatal(tmp_path, artifact, monkeypatch, logs):
    handler = _load_handler("aggregate_to_feature_store", _env(tmp_path, artifact), monkeypatch)
    event = msk_event([features_message(CARD, T, 10.0, offset=1),
                       features_message(9999999999999999999, T, 10.0, offset=2)], topic=FEATURES)
    assert handler.lambda_handler(event, Context()) == {"written": 1, "skipped_stale": 0, "invalid": 1}


def test_the_documented_aws_event_is_handled_without_error(tmp_path, artifact, monkeypatch, logs):
    handler = _load_handler("predict_from_features", _env(tmp_path, artifact), monkeypatch)
    assert handler.lambda_handler(documented_example(), Context()) == {"transactions": 0, "fraud": 0, "late": 0,
                                                                   "invalid": 1, "duplicates": 0,
                                                                   "published": 0}
    assert [r["offset"] for r in logs.records() if r["level"] == "ERROR"] == [15]


def test_the_predict_function_refuses_to_start_with_a_model_of_another_feature_set(tmp_path, artifact, monkeypatch):
    with pytest.raises(ConfigurationError, match="expects feature set v1"):
        _load_handler("predict_from_features", _env(tmp_path, artifact, MODEL_PATH=artifact["v1"], FEATURE_SET="v2"),
                      monkeypatch)


@pytest.mark.parametrize(
    ("env", "message"),
    [({"MODEL_BACKEND": "endpoint"}, "ENDPOINT_NAME is required"),
     ({"MODEL_BACKEND": "gpu"}, "MODEL_BACKEND='gpu'"),
     ({"MODEL_BACKEND": "endpoint", "ENDPOINT_NAME": "e", "FRAUD_THRESHOLD": "high"}, "FRAUD_THRESHOLD"),
     ({"MODEL_BACKEND": "endpoint", "ENDPOINT_NAME": "e", "FRAUD_THRESHOLD": "nan"}, "finite"),
     ({"MODEL_BACKEND": "endpoint", "ENDPOINT_NAME": "e", "EMBEDDED_STORE_TTL_SECONDS": "nan"}, "finite"),
     ({"MODEL_BACKEND": "endpoint", "ENDPOINT_NAME": "e", "MODEL_FEATURE_SET": "v1"}, "expects feature set v1")],
)
def test_a_missing_or_invalid_variable_fails_the_cold_start_with_its_name(env, message, monkeypatch):
    monkeypatch.delenv("MODEL_PATH", raising=False)
    with pytest.raises(ConfigurationError, match=message):
        _load_handler("predict_from_features", env, monkeypatch)
