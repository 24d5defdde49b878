"""Least privilege, checked on every IAM policy in the synthesized template.

No wildcard in any action. A bare "*" resource only for actions AWS offers no resource-level
permission for; docs/deploy-reference.md lists each one (section "IAM"). Kafka data actions name the topic or
consumer group they are for.
"""

from __future__ import annotations

import json

from fraudstream import contract as c
from tests.support.synth import of_type, role_of
from tests.support import aws_calls

# Actions whose API has no resource-level permission: the only ones allowed on Resource "*".
NO_RESOURCE_LEVEL = {
    "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeDhcpOptions",
    "ec2:DescribeNetworkInterfaces", "ec2:DescribeManagedPrefixLists", "ecr:GetAuthorizationToken", "cloudwatch:PutMetricData",
    "kafka:GetBootstrapBrokers", "logs:DescribeLogGroups",
}
# Findings of the offline linter (parliament) we accept, each with its reason: (issue, action) -> why.
LINTER_ACCEPTED: dict[tuple[str, str], str] = {
    ("RESOURCE_MISMATCH", "ec2:CreateNetworkInterface"):
        "arn:aws:ec2:<region>:<account>:*/* names every EC2 resource type of the account and region (the form Lambda's "
        "VPC guide gives for the interface actions; docs/deploy-reference.md: IAM); parliament checks a resource "
        "against one resource type's pattern at a time",
}


def identity_statements(resources: dict):
    """(policy owner, statement) for every identity policy: AWS::IAM::Policy and roles' inline policies."""
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for document in documents:
            for statement in document["Statement"]:
                yield name, statement


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_template_has_identity_policies_to_check(resources):
    assert sum(1 for _ in identity_statements(resources)) > 20


def test_no_action_has_a_wildcard(resources):
    offenders = [(name, action) for name, statement in identity_statements(resources)
                 for action in as_list(statement["Action"]) if "*" in action]
    assert offenders == []


def test_star_resources_only_for_actions_without_resource_level_permissions(resources):
    offenders = []
    for name, statement in identity_statements(resources):
        if "*" in as_list(statement.get("Resource", [])):
            offenders += [(name, a) for a in as_list(statement["Action"]) if a not in NO_RESOURCE_LEVEL]
    assert offenders == []


def test_every_star_resource_action_is_listed_in_the_deploy_reference(resources):
    readme = open("docs/deploy-reference.md", encoding="utf-8").read()  # its IAM table
    used = {a for _, s in identity_statements(resources) if "*" in as_list(s.get("Resource", []))
            for a in as_list(s["Action"])}
    assert used and all(f"`{action}`" in readme for action in used)


def test_no_managed_policies_on_the_stacks_own_roles(resources):
    for name, role in of_type(resources, "AWS::IAM::Role").items():
        assert not role["Properties"].get("ManagedPolicyArns"), name


def test_kafka_data_actions_are_scoped_to_named_topics_and_groups(resources):
    reads, writes = {}, {}
    for name, statement in identity_statements(resources):
        actions = as_list(statement["Action"])
        text = json.dumps(statement["Resource"])
        if "kafka-cluster:ReadData" in actions:
            assert '"topic/"' not in text and ":topic" in text
            reads[name] = reads.get(name, "") + text  # a role may read several topics, in several statements
        if "kafka-cluster:WriteData" in actions:
            writes[name] = writes.get(name, "") + text
        if "kafka-cluster:AlterGroup" in actions:
            assert ":group" in text
    # Only Flink reads transactions; both functions read the features, only the predict function the invalid
    # reports and the verdicts (its own, to write each once); Flink writes the features, the invalid reports and its
    # time ticks on the transactions topic, the predict function only the verdicts, the producer function only the
    # transactions (a scenario sent by `fraudstream simulate --stack`).
    assert sum(f"/{c.TRANSACTIONS_TOPIC}\"" in t or f"/{c.TRANSACTIONS_TOPIC}\"]" in t for t in reads.values()) == 1
    assert sum(f"/{c.TRANSACTION_FEATURES_TOPIC}" in t for t in reads.values()) == 2
    assert sum(f"/{c.INVALID_TRANSACTIONS_TOPIC}" in t for t in reads.values()) == 1
    assert sum(f"/{c.VERDICTS_TOPIC}" in t for t in reads.values()) == 1
    assert len(writes) == 3
    [producer] = [t for n, t in writes.items() if n.startswith("HandlersProduceTransactions")]
    assert f"/{c.TRANSACTIONS_TOPIC}\"" in producer and c.TRANSACTION_FEATURES_TOPIC not in producer
    [flink] = [t for n, t in writes.items() if c.VERDICTS_TOPIC not in t and not n.startswith("HandlersProduce")]
    assert all(f"/{topic}" in flink for topic in
               (c.TRANSACTIONS_TOPIC, c.TRANSACTION_FEATURES_TOPIC, c.INVALID_TRANSACTIONS_TOPIC))
    [predict] = [t for t in writes.values() if c.VERDICTS_TOPIC in t]
    assert not any(f"/{topic}" in predict for topic in
                   (c.TRANSACTIONS_TOPIC, c.TRANSACTION_FEATURES_TOPIC, c.INVALID_TRANSACTIONS_TOPIC))


def test_feature_store_and_endpoint_access_is_per_function(resources):
    by_action = {}
    for name, statement in identity_statements(resources):
        for action in as_list(statement["Action"]):
            by_action.setdefault(action, set()).add(name)
    # Writes: the aggregate function to the 10-minute group; the SageMaker jobs and the custom resource that loads
    # the 1-week records at deploy to the 1-week group only.
    writers = {}
    for name, statement in identity_statements(resources):
        if "sagemaker:PutRecord" in as_list(statement["Action"]):
            groups = json.dumps(statement["Resource"])
            writers[name] = {g for g in (c.STREAMING_FEATURE_GROUP, c.BATCH_FEATURE_GROUP) if f"feature-group/{g}\"" in groups}
    assert sorted(writers.values(), key=sorted) == [{c.BATCH_FEATURE_GROUP}, {c.BATCH_FEATURE_GROUP},
                                                    {c.STREAMING_FEATURE_GROUP}]
    assert any("Aggregate" in n for n, g in writers.items() if g == {c.STREAMING_FEATURE_GROUP})
    assert any("StackResources" in n for n, g in writers.items() if g == {c.BATCH_FEATURE_GROUP})
    assert len(by_action["sagemaker:BatchGetRecord"]) == 1 and "sagemaker:GetRecord" not in by_action
    assert by_action["sagemaker:InvokeEndpoint"] == by_action["sagemaker:BatchGetRecord"]
    # and the predict function reads the 1-week group only: its 10-minute values come in Flink's message
    for name, statement in identity_statements(resources):
        if "sagemaker:BatchGetRecord" in as_list(statement["Action"]):
            text = json.dumps(statement["Resource"])
            assert f"feature-group/{c.BATCH_FEATURE_GROUP}" in text and c.STREAMING_FEATURE_GROUP not in text
    assert not by_action["sagemaker:PutRecord"] & by_action["sagemaker:InvokeEndpoint"]


def test_the_predict_role_may_read_only_the_1_week_group_with_batch_get_record(resources):

    # Given the predict function's role / Then its only Feature Store grant is BatchGetRecord on the batch group,
    # and nothing of it names the 10-minute group: Flink's message carries each transaction's streaming features.
    statements = aws_calls.role_statements(resources, role_of(resources, "predict"))
    store = [(action, aws_calls.evaluate(r, resources)) for s in statements for action in as_list(s["Action"])
             if action.startswith("sagemaker:") and action != "sagemaker:InvokeEndpoint" for r in as_list(s["Resource"])]
    assert store == [("sagemaker:BatchGetRecord",
                      f"arn:aws:sagemaker:us-east-1:123456789012:feature-group/{c.BATCH_FEATURE_GROUP}")]
    assert c.STREAMING_FEATURE_GROUP not in json.dumps(statements)


def evaluated(value, resources: dict):
    """A policy document with its intrinsics as strings (tests/support/aws_calls.py: deploy-time parts as *)."""
    if isinstance(value, list):
        return [evaluated(v, resources) for v in value]
    if isinstance(value, dict) and not (len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref"))):
        return {k: evaluated(v, resources) for k, v in value.items()}
    return value if isinstance(value, (bool, int, float)) else aws_calls.evaluate(value, resources)


def lint(document: dict, resources: dict) -> list[tuple[str, str]]:
    """(issue, action or detail) of each parliament finding on ``document``."""
    from parliament import analyze_policy_string

    found = []
    for finding in analyze_policy_string(json.dumps(evaluated(document, resources))).findings:
        details = finding.detail if isinstance(finding.detail, list) else [finding.detail]
        for detail in details:
            found.append((finding.issue, detail.get("action", str(detail)) if isinstance(detail, dict) else str(detail)))
    return found


def identity_documents(resources: dict):
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            yield name, props["PolicyDocument"]
        if resource["Type"] == "AWS::IAM::Role":
            yield from ((name, p["PolicyDocument"]) for p in props.get("Policies", []))


def test_the_offline_iam_linter_finds_nothing_unaccepted_in_any_policy(resources):
    documents = list(identity_documents(resources))
    findings = [(name, issue, action) for name, document in documents for issue, action in lint(document, resources)
                if (issue, action) not in LINTER_ACCEPTED]
    assert len(documents) >= 9 and findings == []


def test_the_linter_catches_an_action_scoped_to_a_resource_type_it_does_not_have(resources):
    # Given the mistake this stack once made: GetBootstrapBrokers on the cluster's ARN (it takes only "*")
    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kafka:GetBootstrapBrokers",
         "Resource": "arn:aws:kafka:us-east-1:123456789012:cluster/fraud/uuid"},
        {"Effect": "Allow", "Action": "sagemaker:PutRecords", "Resource": "*"}]}
    # Then the linter reports the mismatch and the action that does not exist
    assert set(lint(document, resources)) >= {("RESOURCE_MISMATCH", "kafka:GetBootstrapBrokers"),
                                              ("UNKNOWN_ACTION", "Unknown action sagemaker:PutRecords")}
