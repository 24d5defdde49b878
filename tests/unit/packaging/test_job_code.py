"""The SageMaker processing job's code: the entry script and a zip of exactly the modules it imports."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from fraudstream.packaging import job_code

# The Spark image has boto3 but none of these: the job's imports must not reach them.
ABSENT_IN_THE_SPARK_IMAGE = ("duckdb", "numpy", "pyarrow", "pandas", "xgboost", "aws_lambda_powertools")
PROBE = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {absent!r}:
            raise ImportError(f"{{name}} is not in the Spark image")
sys.meta_path.insert(0, Refuse())
sys.path.insert(0, sys.argv[1])
import importlib.util
spec = importlib.util.spec_from_file_location("processing_job", sys.argv[2])
job = importlib.util.module_from_spec(spec)
spec.loader.exec_module(job)
import fraudstream
args = job.parse_args(["--transactions", "in/", "--output", "out/"])
print(fraudstream.__file__, args.holdout_start, args.validation_fraction)
"""


def test_the_zip_holds_what_the_entry_imports_and_the_batch_sql(tmp_path):
    entry, deps = job_code.build_job_code(tmp_path)
    names = set(zipfile.ZipFile(deps).namelist())
    assert {"fraudstream/__init__.py", "fraudstream/contract.py", "fraudstream/offline/spark.py",
            "fraudstream/offline/batch_sql.py", "fraudstream/offline/train_config.py", "fraudstream/online/stores.py",
            "fraudstream/offline/sql/batch_features.sql", "fraudstream/offline/sql/batch_aggregates.sql"} <= names
    # DuckDB's engine, training and the command line are not the job's
    assert not names & {"fraudstream/offline/features.py", "fraudstream/offline/train.py", "fraudstream/cli/main.py"}
    assert entry.read_bytes() == job_code.PROCESSING_JOB.read_bytes()


def test_the_job_imports_from_the_zip_without_the_libraries_the_spark_image_lacks(tmp_path):
    entry, deps = job_code.build_job_code(tmp_path)
    out = subprocess.run([sys.executable, "-c", PROBE.format(absent=ABSENT_IN_THE_SPARK_IMAGE), str(deps), str(entry)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    location, holdout_start, validation_fraction = out.stdout.split()
    assert location.startswith(str(deps))
    # the split defaults are `fraudstream train`'s
    assert (holdout_start, validation_fraction) == ("2022-05-15", "0.3")


def test_identical_sources_give_a_byte_identical_zip(tmp_path):
    _, first = job_code.build_job_code(tmp_path / "a")
    _, second = job_code.build_job_code(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
