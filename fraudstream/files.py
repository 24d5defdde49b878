"""Reading inputs with clear errors, and writing outputs so a failed run leaves nothing half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fraudstream.checks import InputError


def check_parquet(path: str | os.PathLike, required: Mapping[str, str]) -> pa.Schema:
    """The schema of the Parquet file at ``path``, after checking it has the ``required`` columns.

    ``required`` maps column names to a kind: "integer", "number", "timestamp" or "string".
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a Parquet file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    try:
        metadata = pq.read_metadata(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    schema = metadata.schema.to_arrow_schema()
    missing = [name for name in required if name not in schema.names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(schema.names)})")
    for name, kind in required.items():
        field_type = schema.field(name).type
        if not _KIND_CHECKS[kind](field_type):
            raise InputError(f"{path}: column {name} has type {field_type}, expected {kind}")
    if metadata.num_rows == 0:
        raise InputError(f"{path}: has no rows")
    return schema


_KIND_CHECKS = {
    "integer": pa.types.is_integer,
    "number": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t),
    "timestamp": pa.types.is_timestamp,
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    if path.is_dir():  # else the rename fails naming the temporary file, a name the user never chose
        raise IsADirectoryError(f"{path} is a directory; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes it private; outputs are ordinary files
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_parquet(table: pa.Table, path: str | os.PathLike) -> None:
    """Write ``table`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
