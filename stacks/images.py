"""SageMaker container images: one region -> URI mapping per image, generated at synth time from the
SageMaker SDK's own table (no AWS call, no hand-typed account IDs), and what a role needs to pull them."""

from __future__ import annotations

from aws_cdk import Aws, CfnMapping, Fn, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from fraudstream.offline import sagemaker_jobs

# framework -> (image scope in the SDK's table, version); versions are sagemaker_jobs' (one definition).
IMAGES = {
    "spark": ("processing", sagemaker_jobs.SPARK_VERSION),
    "xgboost": ("inference", sagemaker_jobs.XGBOOST_VERSION),
}


def region_images(framework: str) -> dict[str, str]:
    """Region -> image URI of ``framework``, for every region the SDK's table lists."""
    from sagemaker.core import image_uris

    scope, version = IMAGES[framework]
    regions = image_uris.config_for_framework(framework)[scope]["versions"][version]["registries"]
    return {region: sagemaker_jobs.image_uri(framework, region) for region in sorted(regions)}


def image_in_region(scope: Construct, framework: str) -> str:
    """The image URI of ``framework`` in the stack's region; the stack holds one mapping per image."""
    stack = Stack.of(scope)
    id = f"{framework.capitalize()}Image"
    mapping = stack.node.try_find_child(id) or CfnMapping(
        stack, id, mapping={region: {"uri": uri} for region, uri in region_images(framework).items()})
    return mapping.find_in_map(Aws.REGION, "uri")


def repository_arn(image: str) -> str:
    """arn:...:ecr:<region>:<registry account>:repository/<name> of an image URI (tokens allowed)."""
    account = Fn.select(0, Fn.split(".", image))
    name = Fn.select(0, Fn.split(":", Fn.select(1, Fn.split("/", image))))
    return f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{account}:repository/{name}"


def container_statements(*images: str) -> list[iam.PolicyStatement]:
    """What a SageMaker role needs to run containers of ``images``: pull them, log in, publish metrics."""
    return [
        iam.PolicyStatement(actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                            resources=[repository_arn(image) for image in images]),
        # ECR's GetAuthorizationToken and CloudWatch's PutMetricData have no resource-level permission.
        iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}),
    ]
