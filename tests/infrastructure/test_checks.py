"""cdk-nag, cfn-lint and checkov on the synthesized template; the app's errors on bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudstream.paths import REPO
from stacks.config import ConfigError, PipelineConfig, check_context_keys
from tests.support.synth import run_app, run_app_here
from tests.support.models import write_model


def test_cdk_nag_aws_solutions_finds_nothing_unacknowledged(assembly):
    report = json.loads((assembly / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success" and nag["violations"] == []


def test_every_acknowledgment_names_its_construct_and_gives_a_reason(assembly):
    # Given the acknowledgments recorded in the cloud assembly's metadata
    metadata = json.loads((assembly / "FraudTest.metadata.json").read_text())
    acknowledged = [(path, rule, reason) for path, entries in metadata.items() for entry in entries
                    if entry["type"] == "aws:cdk:acknowledged-rules" for rule, reason in entry["data"].items()
                    if rule.startswith("AwsSolutions::")]
    # Then each sits on a resource's construct, not on the stack as a whole, and says why
    assert len(acknowledged) >= 10
    for path, rule, reason in acknowledged:
        assert path.count("/") >= 2, (path, rule)
        assert len(reason) >= 60, (path, rule, reason)


def test_cfn_lint_reports_no_errors(template_json):
    from cfnlint.api import ManualArgs, lint

    # One region: the default deploy target. (Across all regions cfn-lint also reports resource types
    # some regions lack, e.g. managed Flink logging options in af-south-1.)
    matches = lint(json.dumps(template_json), config=ManualArgs(regions=["us-east-1"]))
    errors = [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"  # make test builds it from tools/checkov.lock


def run_checkov(template: Path) -> dict:
    """checkov's report: results (failed, skipped checks) and summary (counts)."""
    assert CHECKOV.is_file(), f"{CHECKOV} is missing: `make test` builds it (tools/checkov.lock)"
    result = subprocess.run([str(CHECKOV), "-f", str(template), "--framework", "cloudformation", "--output", "json",
                             "--skip-download"], capture_output=True, text=True, timeout=600)
    assert result.stdout.strip(), result.stderr[-3000:]
    return json.loads(result.stdout)


def test_checkov_fails_nothing_and_every_skip_gives_its_reason(assembly, template_json):
    # When checkov scans the synthesized template
    report = run_checkov(assembly / "FraudTest.template.json")
    results = report["results"]
    # Then no check fails, and each check the stack does not meet by design is skipped with its reason there
    assert [(r["check_id"], r["resource"]) for r in results["failed_checks"]] == []
    assert report["summary"]["failed"] == 0 and report["summary"]["passed"] > 200
    skipped = {(r["check_id"], r["resource"].split(".")[-1]) for r in results["skipped_checks"]}
    assert {check for check, _ in skipped} == {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_18"}
    for name, resource in template_json["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert (skip["id"], name) in skipped and len(skip["comment"]) >= 60, (name, skip)


def test_missing_model_artifact_is_one_clear_line_and_exit_2(artifacts, tmp_path):
    result = run_app({**artifacts, "modelArtifact": str(tmp_path / "absent.tar.gz")}, tmp_path / "out")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: modelArtifact:") and "absent.tar.gz" in line and "make demo" in line


def test_missing_flink_package_says_how_to_build_it(artifacts, tmp_path):
    result = run_app_here({**artifacts, "flinkPackage": str(tmp_path / "absent.zip")}, tmp_path / "out")
    assert result.returncode == 2 and "make flink-package" in result.stderr


def test_a_file_that_is_not_a_model_is_refused(artifacts, tmp_path):
    bogus = tmp_path / "model.tar.gz"
    bogus.write_bytes(b"not a tarball")
    result = run_app_here({**artifacts, "modelArtifact": str(bogus)}, tmp_path / "out")
    assert result.returncode == 2 and "is not a model.tar.gz" in result.stderr


def test_missing_1_week_records_say_how_to_make_them_or_deploy_without(artifacts, tmp_path):
    result = run_app_here({**artifacts, "batchFeatures": str(tmp_path / "absent.parquet")}, tmp_path / "out")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: batchFeatures:") and "make demo" in line and "-c batchFeatures=none" in line


def test_a_file_that_is_not_batch_aggregates_is_refused(artifacts, tmp_path):
    wrong = tmp_path / "model.parquet"
    pq.write_table(pa.table({"x": [1]}), wrong)
    result = run_app_here({**artifacts, "batchFeatures": str(wrong)}, tmp_path / "out")
    assert result.returncode == 2 and "is not a batch_aggregates.parquet" in result.stderr and "missing column" in result.stderr


def test_batch_features_none_deploys_an_empty_1_week_group():
    import app

    assert app._batch_records(PipelineConfig.from_context({"batchFeatures": "none"}.get)) is None


def test_a_flink_package_without_its_entry_point_or_jar_is_refused_at_synth(artifacts, tmp_path):
    import zipfile

    from fraudstream.packaging.flink_app import DEPS_JAR, ENTRY_POINT

    for left_out in (ENTRY_POINT, DEPS_JAR):
        broken = tmp_path / f"without-{left_out.replace('/', '_')}.zip"
        with zipfile.ZipFile(artifacts["flinkPackage"]) as good, zipfile.ZipFile(broken, "w") as bad:
            for item in good.infolist():
                if item.filename != left_out:
                    bad.writestr(item, good.read(item))
        result = run_app_here({**artifacts, "flinkPackage": str(broken)}, tmp_path / "out")
        assert result.returncode == 2
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: flinkPackage: {broken}: lacks {left_out}") and "make flink-package" in line


def test_context_values_from_the_cli_are_strings_and_are_converted():
    context = {"brokerCount": "4", "fraudThreshold": "0.3", "flinkParallelism": "2", "archiveTransactions": "false"}
    config = PipelineConfig.from_context(context.get)
    assert (config.broker_count, config.fraud_threshold, config.flink_parallelism) == (4, 0.3, 2)
    assert config.archive_transactions is False


def test_time_mode_and_streaming_wait_are_no_longer_settings_and_the_invalid_group_is():
    import dataclasses

    fields = {f.name for f in dataclasses.fields(PipelineConfig)}
    assert not {"flink_time_mode", "streaming_wait_ms"} & fields
    assert PipelineConfig().invalid_consumer_group == "fraudstream-invalid-transactions"
    config = PipelineConfig.from_context({"invalidConsumerGroup": "mine"}.get)
    assert config.invalid_consumer_group == "mine"


@pytest.mark.parametrize("context, message", [
    ({"brokerCount": "three"}, "brokerCount='three': expected int"),
    ({"brokerCount": 3}, "expected a multiple of maxAzs=2"),
    ({"topicReplicationFactor": 3}, "expected 1 to brokerCount=2"),
    ({"predictBatchSize": 20000}, "1 to 10000"),
    ({"aggregateBatchingWindowSeconds": 301}, "0 to 300"),
    ({"fraudThreshold": 1.5}, "[0, 1]"),
    ({"startingPosition": "AT_TIMESTAMP"}, "LATEST or TRIM_HORIZON"),
    ({"tickDelayMs": 150}, "tickDelayMs=150: expected a multiple of 100 ms up to 60000"),
    ({"maxOutOfOrdernessSeconds": "90"}, "maxOutOfOrdernessSeconds=90.0: expected 0 to 60 seconds"),
])
def test_bad_context_names_the_key_and_what_it_expects(context, message):
    with pytest.raises(ConfigError, match="context ") as error:
        PipelineConfig.from_context(context.get)
    assert message in str(error.value)


def test_a_misspelt_context_key_stops_synthesis_naming_the_key_it_resembles(artifacts, tmp_path):
    result = run_app_here({**artifacts, "reserveConcurency": "false"}, tmp_path / "out")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == ("error: context reserveConcurency: not a key of this stack; did you mean reserveConcurrency? "
                    "(docs/deploy-reference.md lists them)")


def test_a_key_of_ours_spelt_another_way_is_refused_and_other_keys_are_only_named():
    for spelling in ("reserve-concurrency", "reserve_concurrency", "ReserveConcurrency", "reserveConcurency"):
        with pytest.raises(ConfigError, match=f"context {spelling}: not a key of this stack; did you mean "
                                              "reserveConcurrency\\?"):
            check_context_keys({spelling: "false"})
    # The CDK's own keys pass; a key of another app (a user's ~/.cdk.json) is returned, for a warning
    assert check_context_keys({"stackName": "X", "brokerCount": 4, "cli-telemetry": False,
                               "acknowledged-issue-numbers": [1], "aws:cdk:enable-path-metadata": True,
                               "@aws-cdk/core:newStyleStackSynthesis": True, "aws-cdk:enableDiffNoFail": True,
                               "availability-zones:account=1:region=eu-west-1": ["a"], "env": "dev",
                               "stage": "prod"}) == ["env", "stage"]


def test_model_feature_set_travels_from_the_artifact(tmp_path):
    from fraudstream.offline.model_artifact import feature_set_of, load_artifact

    assert feature_set_of(load_artifact(write_model(tmp_path / "m.tar.gz", "v2"))) == "v2"
