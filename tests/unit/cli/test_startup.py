"""`fraudstream --help` starts light: the parsers import neither the AWS SDK nor the ML libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("boto3", "botocore", "xgboost", "pandas", "sklearn", "duckdb", "kafka", "numpy", "pyarrow")
PROBE = """
import json, sys
from fraudstream.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(name for name in {heavy!r} if name in sys.modules)))
"""


@pytest.mark.parametrize("argv", [["--help"], ["generate", "--help"], ["replay", "--help"], ["logs", "--help"],
                                  ["simulate", "--help"], ["train", "--help"]])
def test_help_imports_no_heavy_library(argv):
    # When a fresh interpreter prints a verb's help
    out = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv], capture_output=True, text=True,
                         check=True)
    # Then none of the heavy libraries was imported on the way
    assert "usage: fraudstream" in out.stdout
    assert json.loads(out.stdout.splitlines()[-1]) == []
