"""The managed Flink application zip, built once for real: Maven on flink_sql/pom.xml, then the zip around its jar."""

from __future__ import annotations

import json
import re
import zipfile

import pytest

from fraudstream.packaging import flink_app as fp
from fraudstream.packaging.modules import imports
from fraudstream.paths import FLINK_SQL
from tests.support.flink_package import stand_in_jar, stand_in_package

KAFKA_FACTORY = "org/apache/flink/streaming/connectors/kafka/table/KafkaDynamicTableFactory.class"
IAM_HANDLER = "software/amazon/msk/auth/iam/IAMClientCallbackHandler.class"
JAVA_11 = 55  # class file major version of Java 11, the managed Flink 1.20 runtime's Java
# The tests of the built zip run on one pytest-xdist worker (make test: --dist loadgroup), so Maven runs once.
built = pytest.mark.xdist_group("flink_package")


@pytest.fixture(scope="session")
def package(tmp_path_factory):
    """build/flink-app.zip as `make flink-package` builds it (real Maven, artifacts from the local Maven cache)."""
    return fp.build(tmp_path_factory.mktemp("flink") / "flink-app.zip")


@pytest.fixture(scope="session")
def jar(package, tmp_path_factory):
    path = tmp_path_factory.mktemp("jar") / "deps.jar"
    with zipfile.ZipFile(package) as archive:
        path.write_bytes(archive.read(fp.DEPS_JAR))
    with zipfile.ZipFile(path) as deps:
        yield deps


def _services(jar, service):
    return jar.read(f"META-INF/services/{service}").decode().split()


def test_the_zip_carries_every_module_of_ours_the_entry_point_imports():
    imported = {i.module.replace(".", "/") + ".py" for i in imports(FLINK_SQL / "main.py", "flink_main")}
    assert imported and imported | {"fraudstream/__init__.py"} == set(fp.CONTRACT_FILES)


@built
def test_the_zip_holds_the_entry_point_the_sql_the_properties_the_contract_and_the_jar(package):
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
        properties = json.loads(archive.read("application_properties.json"))
    sql = sorted(path.name for path in FLINK_SQL.glob("*.sql"))
    assert sql and set(sql) <= set(names)
    assert names == ["main.py", *sql, "application_properties.json", "fraudstream/__init__.py",
                     "fraudstream/contract.py", "fraudstream/flink_properties.py", "lib/fraudstream-flink-deps.jar"]
    (run_options,) = [g["PropertyMap"] for g in properties
                      if g["PropertyGroupId"] == "kinesis.analytics.flink.run.options"]
    assert run_options == {"python": "main.py", "jarfile": "lib/fraudstream-flink-deps.jar"} == fp.RUN_OPTIONS
    assert fp.RUN_OPTIONS_GROUP == "kinesis.analytics.flink.run.options"


@built
def test_the_zip_is_what_the_builder_leaves_behind_and_passes_its_own_check(package):
    assert sorted(p.name for p in package.parent.iterdir()) == ["flink-app.zip"]  # Maven's work directory is gone
    fp.check_package(package)


@built
def test_the_jar_carries_the_kafka_connector_iam_auth_plain_kafka_clients_and_the_s3_filesystem(jar):
    names = set(jar.namelist())
    assert {KAFKA_FACTORY, IAM_HANDLER, "software/amazon/msk/auth/iam/IAMLoginModule.class",
            "org/apache/kafka/clients/consumer/KafkaConsumer.class",
            "org/apache/flink/fs/s3hadoop/S3FileSystemFactory.class"} <= names
    # Unrelocated: the handler implements org.apache.kafka's interface, not a shaded copy of it.
    assert not any(re.match(r"org/apache/flink/kafka/shaded/|.*/shaded/org/apache/kafka/", n) for n in names)
    assert "org.apache.flink.streaming.connectors.kafka.table.KafkaDynamicTableFactory" in _services(
        jar, "org.apache.flink.table.factories.Factory")
    s3_factories = {"org.apache.flink.fs.s3hadoop.S3FileSystemFactory", "org.apache.flink.fs.s3hadoop.S3AFileSystemFactory"}
    assert s3_factories <= set(_services(jar, "org.apache.flink.core.fs.FileSystemFactory"))


@built
def test_the_jar_bundles_no_flink_runtime_no_logging_backend_and_no_signatures(jar):
    names = set(jar.namelist())
    assert "org/apache/flink/table/api/TableEnvironment.class" not in names
    assert "org/apache/flink/streaming/api/environment/StreamExecutionEnvironment.class" not in names
    assert "org/apache/flink/api/common/functions/MapFunction.class" not in names
    assert not any(n.startswith(("org/slf4j/", "org/apache/log4j/", "org/apache/logging/log4j/")) for n in names)
    assert not [n for n in names if re.fullmatch(r"META-INF/[^/]+\.(SF|DSA|RSA)", n, re.IGNORECASE)]
    assert not [n for n in names if n.endswith("module-info.class")]


@built
def test_every_class_the_java_11_runtime_can_load_is_java_11_bytecode_or_older(jar):
    # A Java 11 JVM loads the base entries; META-INF/versions/N/ copies only on Java N or newer (and only
    # from a Multi-Release jar). jackson-core carries Java 17 and 19 variants there: never loaded, not counted.
    newer = {}
    checked = 0
    for info in jar.infolist():
        versioned = re.match(r"META-INF/versions/(\d+)/", info.filename)
        if not info.filename.endswith(".class") or (versioned and int(versioned.group(1)) > 11):
            continue
        with jar.open(info) as handle:
            header = handle.read(8)
        assert header[:4] == b"\xca\xfe\xba\xbe", info.filename
        checked += 1
        major = int.from_bytes(header[6:8], "big")
        if major > JAVA_11:
            newer[info.filename] = major
    assert checked > 10_000
    assert newer == {}


def test_check_package_accepts_a_zip_with_everything_it_checks(tmp_path):
    fp.check_package(stand_in_package(tmp_path))


def test_check_package_refuses_a_zip_without_the_entry_point(tmp_path):
    with pytest.raises(fp.PackageError, match=r"app\.zip: lacks main\.py$"):
        fp.check_package(stand_in_package(tmp_path, leave_out={"main.py"}))


def test_check_package_refuses_a_zip_without_the_jar(tmp_path):
    with pytest.raises(fp.PackageError, match=r"lacks lib/fraudstream-flink-deps\.jar$"):
        fp.check_package(stand_in_package(tmp_path, leave_out={fp.DEPS_JAR}))


def test_check_package_refuses_a_zip_without_the_runtime_properties(tmp_path):
    with pytest.raises(fp.PackageError, match=r"lacks application_properties\.json$"):
        fp.check_package(stand_in_package(tmp_path, leave_out={"application_properties.json"}))


def test_check_package_refuses_a_jar_without_the_iam_callback_handler(tmp_path):
    jar = stand_in_jar(tmp_path / "no-iam.jar", leave_out={IAM_HANDLER})
    with pytest.raises(fp.PackageError) as refused:
        fp.check_package(stand_in_package(tmp_path, jar=jar))
    assert str(refused.value) == (f"{tmp_path / 'app.zip'}: lib/fraudstream-flink-deps.jar lacks "
                                  "software.amazon.msk.auth.iam.IAMClientCallbackHandler")


def test_check_package_refuses_a_jar_whose_service_file_does_not_list_the_kafka_factory(tmp_path):
    jar = stand_in_jar(tmp_path / "no-service.jar",
                    leave_out={"META-INF/services/org.apache.flink.table.factories.Factory"})
    with pytest.raises(fp.PackageError, match="lacks org.apache.flink.streaming.connectors.kafka.table."
                                              "KafkaDynamicTableFactory in META-INF/services/"):
        fp.check_package(stand_in_package(tmp_path, jar=jar))


def test_check_package_refuses_a_file_that_is_not_a_zip(tmp_path):
    (tmp_path / "app.zip").write_text("not a zip")
    with pytest.raises(fp.PackageError, match="is not a readable application zip"):
        fp.check_package(tmp_path / "app.zip")


def test_build_refuses_an_incomplete_jar_and_leaves_no_zip(tmp_path):
    jar = stand_in_jar(tmp_path / "no-iam.jar", leave_out={IAM_HANDLER})
    out = tmp_path / "out" / "flink-app.zip"
    with pytest.raises(fp.PackageError) as refused:
        fp.build(out, jar=jar)
    assert str(refused.value) == (f"{out} not written: lib/fraudstream-flink-deps.jar lacks "
                                  "software.amazon.msk.auth.iam.IAMClientCallbackHandler")
    assert list((tmp_path / "out").iterdir()) == []


def test_without_maven_the_build_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    with pytest.raises(fp.PackageError, match=r"^Maven \(mvn\) is not installed: "):
        fp.build(tmp_path / "flink-app.zip")
    assert not (tmp_path / "flink-app.zip").exists()


def test_a_maven_failure_reports_the_tail_of_its_output(tmp_path):
    pom = tmp_path / "pom.xml"
    pom.write_text("<project><modelVersion>4.0.0</modelVersion></project>")  # no groupId, artifactId, version
    with pytest.raises(fp.PackageError, match=r"(?s)^Maven failed \(exit 1\): .*\[ERROR\].*artifactId"):
        fp.build_jar(tmp_path / "out", pom=pom)
