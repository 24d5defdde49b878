"""The model backends: the SageMaker endpoint (moto) and the same artifact in process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests
import xgboost as xgb
from moto import mock_aws

from fraudstream import contract as c
from fraudstream.offline import model_artifact as model
from fraudstream.online import aws
from fraudstream.online.scorers import EndpointScorer, InProcessScorer, payloads, to_csv
from tests.support.components import ENDPOINT



def test_payloads_split_only_when_a_request_would_exceed_the_limit():
    rows = [[float(i), 1.5] for i in range(1000)]
    bodies = list(payloads(rows, max_bytes=2_000))
    assert all(len(body) <= 2_000 for _, body in bodies)
    assert sum(count for count, _ in bodies) == 1000
    assert "\n".join(body for _, body in bodies) == to_csv(rows)
    assert len(list(payloads(rows))) == 1  # the real limit: one request


@pytest.mark.aws_component("predict")
@mock_aws
def test_the_endpoint_scorer_sends_csv_and_reads_one_score_per_row():
    body = json.dumps({"predictions": [{"score": 0.9}, {"score": 0.1}]})
    requests.post("http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
                  json={"results": [{"Body": body, "ContentType": "application/json"}]}, timeout=5)
    scorer = EndpointScorer(aws.new_client("sagemaker-runtime"), ENDPOINT, feature_set="v2")
    assert scorer.score([[1.0, 2.0], [3.0, 4.0]]) == [0.9, 0.1]


@pytest.mark.aws_component("predict")
@mock_aws
def test_a_score_count_that_does_not_match_the_rows_is_an_error():
    body = json.dumps({"predictions": [{"score": 0.9}]})
    requests.post("http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
                  json={"results": [{"Body": body, "ContentType": "application/json"}]}, timeout=5)
    scorer = EndpointScorer(aws.new_client("sagemaker-runtime"), ENDPOINT)
    with pytest.raises(RuntimeError, match="returned 1 scores for 2 rows"):
        scorer.score([[1.0], [2.0]])


def test_the_in_process_scorer_loads_the_artifact_and_knows_its_feature_set(tmp_path):
    rows = np.random.default_rng(0).random((200, 4))
    dtrain = xgb.DMatrix(rows, label=(rows[:, 0] > 0.5).astype(int), feature_names=list(c.feature_names("v1")))
    booster = xgb.train({"objective": "binary:logistic"}, dtrain, num_boost_round=5)
    model.save_artifact(booster, "v1", tmp_path / "model.tar.gz")
    scorer = InProcessScorer(tmp_path / "model.tar.gz")
    assert scorer.feature_set == "v1"
    np.testing.assert_allclose(scorer.score(rows.tolist()), booster.predict(dtrain), rtol=1e-6)
    assert scorer.score([]) == []


def test_the_in_process_scorer_scores_exactly_what_the_container_reads_from_the_csv(tmp_path):
    """score_rows skips the CSV text; the container scores that text. Values over 16 decades, so any rounding
    difference between the text and the direct path would show in the matrix or the scores."""
    generator = np.random.default_rng(1)
    rows = generator.standard_normal((20_000, 4)) * 10.0 ** generator.integers(-8, 8, (20_000, 4))
    dtrain = xgb.DMatrix(rows, label=(rows[:, 0] > 0).astype(int), feature_names=list(c.feature_names("v1")))
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6}, dtrain, num_boost_round=20)
    assert model.score_rows(booster, rows.tolist()) == model.score_csv(booster, to_csv(rows.tolist()))
