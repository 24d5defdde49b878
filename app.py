#!/usr/bin/env python3
"""The CDK app: `make synth` / `make deploy` run it through the CDK CLI (cdk.json), and
`python app.py` with CDK_CONTEXT_JSON and CDK_OUTDIR set does the same.

Synthesis is offline: no AWS call, no Docker. It needs the two built artifacts (context keys
`modelArtifact` and `flinkPackage`) and stops with one line saying how to build a missing one.
"""

from __future__ import annotations

import os
import sys
import tarfile

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_DEPRECATED", "quiet")  # the Flink alpha module uses deprecated L1 names internally

import aws_cdk as cdk  # noqa: E402

from fraudstream.paths import BUILD  # noqa: E402
from fraudstream.stack_outputs import DEFAULT_STACK_NAME  # noqa: E402
from stacks.config import STACK_NAME_KEY, ConfigError, PipelineConfig, check_context_keys  # noqa: E402


def build_app(context: dict | None = None, outdir: str | None = None) -> cdk.App:
    """Build the app with its one stack and cdk-nag's AwsSolutions checks; raises ConfigError on bad input."""
    from fraudstream.offline.model_artifact import feature_set_of, load_artifact
    from fraudstream.packaging import lambda_assets
    from fraudstream.packaging.flink_app import PackageError, check_package
    from fraudstream.packaging.job_code import build_job_code
    from stacks.nag import enable_checks
    from stacks.pipeline_stack import FraudPipelineStack

    # S3 access logs delivered under a bucket policy (logging.s3.amazonaws.com, limited to our buckets and
    # account) rather than the log-delivery ACL, which buckets with ACLs disabled cannot take.
    flags = {"@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True}
    app = cdk.App(context={**flags, **(context or {})}, outdir=outdir)
    for key in check_context_keys(app.node.get_all_context()):
        print(f"warning: context {key} is not a key of this stack; ignored", file=sys.stderr)
    config = PipelineConfig.from_context(app.node.try_get_context)
    model_artifact = config.artifact("model_artifact", "Train one with `make demo` (or `fraudstream train`)")
    flink_package = config.artifact("flink_package", "Build it with `make flink-package` (needs Maven Central)")
    try:
        feature_set = feature_set_of(load_artifact(model_artifact))
    except (OSError, ValueError, tarfile.TarError) as error:
        raise ConfigError(f"modelArtifact: {model_artifact} is not a model.tar.gz from `fraudstream train`: {error}")
    try:
        check_package(flink_package)  # no main.py or no dependency jar: the application would fail only once deployed
    except PackageError as error:
        raise ConfigError(f"flinkPackage: {error}; rebuild it with `make flink-package`") from None
    batch_records = _batch_records(config)
    _check_region(os.environ.get("CDK_DEFAULT_REGION"))
    assets = lambda_assets.build(BUILD / "lambda")
    job_code = build_job_code(BUILD / "job")
    stack_name = app.node.try_get_context(STACK_NAME_KEY) or DEFAULT_STACK_NAME
    FraudPipelineStack(
        app, stack_name, config=config, model_artifact=model_artifact, flink_package=flink_package,
        feature_set=feature_set, lambda_assets=assets, job_code=job_code, batch_records=batch_records,
        # No env: the template is the same for every account and region (they resolve at deploy
        # time), so synthesis never depends on whose credentials are around.
    )
    enable_checks(app)
    return app


def _batch_records(config: PipelineConfig):
    """The 1-week records the deploy loads (context batchFeatures), as JSON lines under build/; None for "none"."""
    from fraudstream.checks import InputError
    from fraudstream.offline.features import read_batch_aggregates
    from fraudstream.packaging.batch_records import write_batch_records

    if config.batch_features == "none":
        return None
    path = config.artifact("batch_features", "`make demo` writes it (`fraudstream features`); "
                                             "-c batchFeatures=none deploys with an empty 1-week group,")
    try:
        rows = read_batch_aggregates(path)
    except (InputError, OSError, ValueError) as error:
        raise ConfigError(f"batchFeatures: {path} is not a batch_aggregates.parquet from `fraudstream features`: "
                          f"{error}") from None
    return write_batch_records(rows, BUILD / "batch_records")


def _check_region(region: str | None) -> None:
    """The CLI passes the region of your credentials or profile: refuse one without our images now."""
    from stacks.images import supported_regions, unsupported_region_message

    if region and region not in (regions := supported_regions()):
        raise ConfigError(unsupported_region_message(region, regions))


def main(context: dict | None = None, outdir: str | None = None) -> int:
    """Synthesize, or print one line and return 2 on bad input. The CLI passes context through CDK_CONTEXT_JSON."""
    try:
        build_app(context, outdir).synth()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
