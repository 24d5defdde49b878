"""Stand-ins for the Flink application zip: what `check_package` (fraudstream/packaging/flink_app.py) looks for,
without the 50 MB jar Maven builds. The stack tests synthesize with one; the package tests break one on purpose."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from fraudstream.packaging import flink_app as fp


def write_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def stand_in_jar(path: Path, leave_out=()) -> Path:
    """A jar holding (empty) every class and service entry the job loads, but those in ``leave_out``."""
    entries = {name.replace(".", "/") + ".class": b"\xca\xfe\xba\xbe\x00\x00\x00\x37" for name in fp.REQUIRED_CLASSES}
    for service, implementation in fp.REQUIRED_SERVICES:
        entries[f"META-INF/services/{service}"] = f"{implementation}\n".encode()
    return write_zip(path, {name: data for name, data in entries.items() if name not in leave_out})


def stand_in_package(directory: Path, jar: Path | None = None, leave_out=(), name: str = "app.zip") -> Path:
    """An application zip that passes check_package, but for the entries in ``leave_out``."""
    entries = {"main.py": b"raise SystemExit('test stand-in for the Flink package')\n", "tables_kafka.sql": b"",
               fp.PROPERTIES: json.dumps([{"PropertyGroupId": fp.RUN_OPTIONS_GROUP, "PropertyMap": fp.RUN_OPTIONS}]).encode(),
               fp.DEPS_JAR: (jar or stand_in_jar(directory / "stand-in.jar")).read_bytes(),
               **{name: b"" for name in fp.CONTRACT_FILES}}
    return write_zip(directory / name, {key: data for key, data in entries.items() if key not in leave_out})
