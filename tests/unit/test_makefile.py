"""`make help`: every target and variable a user can pass, in aligned columns, with no Make syntax left in."""

from __future__ import annotations

import re
import subprocess

from fraudstream.paths import REPO


def _help() -> list[str]:
    return subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()


def test_help_lists_every_phony_target_and_the_variables_in_aligned_columns():
    lines = _help()
    phony = set((REPO / "Makefile").read_text().split(".PHONY:", 1)[1].splitlines()[0].split())
    targets = {line.split()[1]: line for line in lines if line.startswith("  make ")}
    assert set(targets) == phony
    variables = [line for line in lines if re.match(r"  [A-Z]+=", line)]
    assert [line.split("=")[0].strip() for line in variables] == ["DATA", "SCALE", "WORKERS", "ONLY", "CONTEXT"]
    # Each description starts in the same column, targets and variables alike.
    starts = {len(line) - len(line.split(maxsplit=2 if line.startswith("  make ") else 1)[-1]) for line in
              [*targets.values(), *variables]}
    assert len(starts) == 1


def test_help_shows_no_make_syntax():
    assert not any("$(" in line or "$$" in line for line in _help())


def test_deploy_checks_the_environment_then_the_synthesized_stack_s_concurrency_then_deploys_that_assembly():
    # Given context for the deploy / When make shows what `make deploy` runs
    dry = subprocess.run(["make", "-n", "deploy", "CONTEXT=reserveConcurrency=false alarmEmail=me@example.com"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()
    steps = [line for line in dry if "preflight" in line or "cdk --no-notices" in line]
    # Then credentials first, synthesis with every key, the concurrency check on its output, the same assembly deployed
    assert "preflight environment" in steps[0]
    assert steps[1].endswith("synth --quiet -c reserveConcurrency=false -c alarmEmail=me@example.com")
    assert steps[2].endswith("-m fraudstream.operate.preflight concurrency cdk.out")
    assert steps[3].endswith("deploy --app cdk.out --require-approval broadening")

