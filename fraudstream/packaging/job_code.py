"""Build the SageMaker processing job's code: training/processing_job.py and the fraudstream zip for --py-files.

The zip holds exactly the fraudstream modules the entry script imports (read from its source by
packaging/modules.py, lazy imports included) and the batch SQL files: pure Python, no DuckDB, pyarrow
or numpy, which the Spark image lacks. Byte-identical for identical sources, so the CDK asset changes
only when the code does.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from fraudstream.packaging.modules import closure
from fraudstream.paths import PACKAGE, PROCESSING_JOB

SQL_DIR = PACKAGE / "offline" / "sql"
JOB_DEPS_ZIP = "fraudstream.zip"  # on smspark-submit --py-files (offline/sagemaker_jobs.processing_request)


def job_files(entry: Path = PROCESSING_JOB) -> list[Path]:
    """The fraudstream files the job needs: what the entry imports, and the SQL its batch renderer reads."""
    return sorted(closure([entry]) | set(SQL_DIR.glob("*.sql")))


def build_job_code(out_dir: str | Path, entry: Path = PROCESSING_JOB) -> tuple[Path, Path]:
    """Write the entry script and the fraudstream zip into out_dir; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    copied = out_dir / entry.name
    shutil.copyfile(entry, copied)
    deps = out_dir / JOB_DEPS_ZIP
    with zipfile.ZipFile(deps, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in job_files(entry):
            info = zipfile.ZipInfo(path.relative_to(PACKAGE.parent).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return copied, deps
