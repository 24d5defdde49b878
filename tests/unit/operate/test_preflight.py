"""make deploy's checks before the CDK: the account's Lambda concurrency against what the template reserves.

moto does not answer Lambda's GetAccountSettings, so Lambda and CloudFormation answer through botocore's Stubber:
the requests are checked against the services' models, and every stubbed answer must be asked for.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber

from fraudstream.operate import preflight
from fraudstream.operate.deployed import DeploymentError


class StubbedSession:
    """A session whose clients are stubbed: what preflight asks AWS for, and nothing else."""

    region_name = "us-east-1"

    def __init__(self):
        self.clients = {name: boto3.client(name, region_name=self.region_name) for name in ("lambda", "cloudformation")}
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}

    def client(self, service, **kwargs):
        return self.clients[service]

    def account(self, limit: int, unreserved: int) -> None:
        self.stubs["lambda"].add_response("get_account_settings", {"AccountLimit": {
            "ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": unreserved}})

    def no_stack(self, name: str) -> None:
        self.stubs["cloudformation"].add_client_error(
            "describe_stacks", "ValidationError", f"Stack with id {name} does not exist", expected_params={"StackName": name})

    def stack(self, name: str, reservations: dict[str, int | None]) -> None:
        """A deployed stack whose functions reserve ``reservations`` (None: the function reserves nothing)."""
        cloudformation, lambda_ = self.stubs["cloudformation"], self.stubs["lambda"]
        cloudformation.add_response("describe_stacks", {"Stacks": [{
            "StackName": name, "CreationTime": datetime(2026, 12, 1, tzinfo=timezone.utc),
            "StackStatus": "UPDATE_COMPLETE"}]}, {"StackName": name})
        summaries = [{"LogicalResourceId": f"Fn{i}", "PhysicalResourceId": function, "ResourceType": preflight.FUNCTION,
                      "ResourceStatus": "CREATE_COMPLETE", "LastUpdatedTimestamp": datetime(2026, 12, 1, tzinfo=timezone.utc)}
                     for i, function in enumerate(reservations)]
        summaries.append({"LogicalResourceId": "Topic", "PhysicalResourceId": "arn:aws:sns:us-east-1:1:t",
                          "ResourceType": "AWS::SNS::Topic", "ResourceStatus": "CREATE_COMPLETE",
                          "LastUpdatedTimestamp": datetime(2026, 12, 1, tzinfo=timezone.utc)})
        cloudformation.add_response("list_stack_resources", {"StackResourceSummaries": summaries}, {"StackName": name})
        for function, reserved in reservations.items():
            answer = {} if reserved is None else {"ReservedConcurrentExecutions": reserved}
            lambda_.add_response("get_function_concurrency", answer, {"FunctionName": function})

    def __enter__(self):
        for stub in self.stubs.values():
            stub.activate()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            for stub in self.stubs.values():
                stub.assert_no_pending_responses()


def assembly(tmp_path, reservations: list[int | None], stack: str = "FraudStream"):
    """A cloud assembly as `cdk synth` writes it: a manifest naming one stack's template with these functions."""
    resources = {f"Fn{i}": {"Type": preflight.FUNCTION, "Properties": {} if r is None else {"ReservedConcurrentExecutions": r}}
                 for i, r in enumerate(reservations)}
    resources["Queue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    (tmp_path / f"{stack}.template.json").write_text(json.dumps({"Resources": resources}))
    (tmp_path / "manifest.json").write_text(json.dumps({"version": "41.0.0", "artifacts": {
        "Tree": {"type": "cdk:tree", "properties": {"file": "tree.json"}},
        stack: {"type": "aws:cloudformation:stack", "environment": "aws://unknown-account/unknown-region",
                "properties": {"templateFile": f"{stack}.template.json"}}}}))
    return tmp_path


def test_the_template_s_reservations_are_summed_per_stack(tmp_path):
    assert preflight.reserved_by(assembly(tmp_path, [6, 3, None, 2])) == {"FraudStream": 11}


def test_a_directory_that_is_not_an_assembly_says_to_synthesize(tmp_path):
    with pytest.raises(DeploymentError, match=r"not a synthesized cloud assembly .*make synth"):
        preflight.reserved_by(tmp_path)


def test_a_new_account_s_limit_of_10_stops_the_deploy_naming_the_context_key(tmp_path, capsys, monkeypatch):
    # Given a new account (limit 10, all unreserved) and no stack yet
    with StubbedSession() as session:
        session.account(limit=10, unreserved=10)
        session.no_stack("FraudStream")
        monkeypatch.setattr(preflight, "session_for", lambda region: session)
        # When the check runs on a template reserving 17
        code = preflight.main(["concurrency", str(assembly(tmp_path, [6, 6, 3, 2]))])
    # Then it fails with one line naming the key that lets the deploy through, and the quota that would
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert line.startswith("error: FraudStream: the stack reserves 17 concurrent Lambda executions")
    assert "make deploy CONTEXT=reserveConcurrency=false" in line and "-c reserveConcurrency=false" in line
    assert "quota of at least 117" in line


def test_an_account_with_room_passes_and_says_what_stays_unreserved(tmp_path, capsys, monkeypatch):
    with StubbedSession() as session:
        session.account(limit=1000, unreserved=950)
        session.no_stack("FraudStream")
        monkeypatch.setattr(preflight, "session_for", lambda region: session)
        assert preflight.main(["concurrency", str(assembly(tmp_path, [6, 6, 3, 2]))]) == 0
    assert capsys.readouterr().out.strip() == "FraudStream: reserves 17 concurrent executions; 933 of 1000 stay unreserved"


def test_an_update_counts_what_the_deployed_stack_already_reserves(tmp_path):
    # Given a limit of 120 of which the deployed stack reserves 17 (103 unreserved): a new stack would not fit
    with StubbedSession() as session:
        session.account(limit=120, unreserved=103)
        session.stack("FraudStream", {"predict": 6, "invalid": 6, "aggregate": 3, "copier": 2, "scheduler": None})
        # When the same template is deployed again / Then it fits: the update hands the 17 back first
        found = preflight.concurrency(session, "FraudStream", to_reserve=17)
    assert found.reserved_now == 17 and found.unreserved_after == 103 and found.problem() is None


def test_one_more_reservation_than_fits_is_refused(tmp_path):
    # limit 120, another function reserves 3: 117 unreserved; 18 would leave 99
    with StubbedSession() as session:
        session.account(limit=120, unreserved=117)
        session.no_stack("FraudStream")
        found = preflight.concurrency(session, "FraudStream", to_reserve=18)
    assert found.unreserved_after == 99
    assert "3 of them reserved by other functions" in found.problem()
    assert found.problem().endswith("quota of at least 121 (Service Quotas, AWS Lambda)")


def test_a_template_that_reserves_nothing_never_asks_for_the_stack(tmp_path):
    # -c reserveConcurrency=false: a limit of 10 is no obstacle, and the stack's functions are not looked up
    with StubbedSession() as session:
        session.account(limit=10, unreserved=10)
        assert preflight.check_assembly(assembly(tmp_path, [None, None]), session) == [
            "FraudStream: reserves 0 concurrent executions; 10 of 10 stay unreserved"]


def test_access_denied_on_the_account_settings_is_one_line(tmp_path, capsys, monkeypatch):
    with StubbedSession() as session:
        session.stubs["lambda"].add_client_error("get_account_settings", "AccessDeniedException",
                                                 "not authorized to perform: lambda:GetAccountSettings")
        monkeypatch.setattr(preflight, "session_for", lambda region: session)
        assert preflight.main(["concurrency", str(assembly(tmp_path, [6]))]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: access denied: not authorized to perform: lambda:GetAccountSettings")


def test_the_environment_check_is_one_line_without_credentials(monkeypatch, tmp_path, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert preflight.main(["environment", "--region", "us-east-1"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: no AWS credentials found: configure them (aws configure, AWS_PROFILE or aws sso login)"]
