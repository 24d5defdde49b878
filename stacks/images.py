"""SageMaker container images: one region -> URI mapping per image, generated at synth time from the
SageMaker SDK's own table (no AWS call, no hand-typed account IDs), and what a role needs to pull them."""

from __future__ import annotations

import functools

from aws_cdk import Aws, CfnMapping, Fn, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from fraudstream.offline import sagemaker_jobs

# framework -> (image scope in the SDK's table, version); versions are sagemaker_jobs' (one definition).
IMAGES = {
    "spark": ("processing", sagemaker_jobs.SPARK_VERSION),
    "xgboost": ("inference", sagemaker_jobs.XGBOOST_VERSION),
}


@functools.cache  # the SDK's table, read once per synthesis for the mappings and the region check
def region_images(framework: str) -> dict[str, str]:
    """Region -> image URI of ``framework``, for every region the SDK's table lists."""
    from sagemaker.core import image_uris

    scope, version = IMAGES[framework]
    regions = image_uris.config_for_framework(framework)[scope]["versions"][version]["registries"]
    return {region: sagemaker_jobs.image_uri(framework, region) for region in sorted(regions)}


def supported_regions() -> list[str]:
    """Regions where every image the stack runs exists: the only ones it can deploy to."""
    common = set.intersection(*(set(region_images(framework)) for framework in IMAGES))
    return sorted(common)


def unsupported_region_message(region: str, regions: list[str]) -> str:
    return (f"region {region} has no SageMaker image for "
            + " and ".join(f"{name} {version}" for name, (_, version) in IMAGES.items())
            + f"; deploy to one of: {', '.join(regions)}")


def require_supported_region(stack: Stack) -> None:
    """Stop a deploy to a region without our images before CloudFormation creates anything.

    Synthesis is region-agnostic (the region is a token), so the stack carries a CloudFormation rule:
    rules are evaluated when the change set is created, with this one line as the reason. app.py checks
    the CLI's region (CDK_DEFAULT_REGION) earlier, at synthesis.
    """
    from aws_cdk import CfnRule, CfnRuleAssertion

    regions = supported_regions()
    CfnRule(stack, "SupportedRegion", assertions=[CfnRuleAssertion(
        assert_=Fn.condition_contains(regions, Aws.REGION),
        assert_description=unsupported_region_message("of this stack", regions))])


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
