"""Names and events the component tests use, which the template tests map onto the stack's resources
(tests/infrastructure/test_calls_granted.py: every call a component makes is granted to its role)."""

from __future__ import annotations

APP = "fraudstream-features"  # the Flink application the stack-resources handler starts and stops
ENDPOINT = "fraud-endpoint"  # the SageMaker endpoint the predict function calls


def copy_event(request: str, key: str = "models/abc/model.tar.gz") -> dict:
    """The custom resource event that copies the model artifact under a .tar.gz key."""
    return {"ResourceType": "Custom::CopiedObject", "RequestType": request,
            "ResourceProperties": {"SourceBucket": "cdk-assets", "SourceKey": "abc.gz", "Bucket": "data", "Key": key}}


def batch_features_event(request: str, records: int) -> dict:
    """The custom resource event that loads the 1-week group from the CDK asset of its records."""
    return {"ResourceType": "Custom::BatchFeaturesLoaded", "RequestType": request,
            "ResourceProperties": {"Bucket": "cdk-assets", "Key": "def.jsonl", "FeatureGroupName": "cc-agg-batch-fg",
                                   "Records": str(records)}}
