"""The managed Flink application zip, built from a local stand-in for Maven Central (loopback HTTP)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
import zipfile

import pytest

from fraudstream.packaging import flink_app as fp


def _jar(path, entries):
    with zipfile.ZipFile(path, "w") as jar:
        for name, data in entries.items():
            jar.writestr(name, data)
    return path.read_bytes()


@pytest.fixture
def repository(tmp_path):
    """A Maven-layout directory with a fake jar per artifact (and its .sha1), served on 127.0.0.1."""
    root = tmp_path / "maven"
    for i, artifact in enumerate(fp.ARTIFACTS):
        target = root / artifact.path()
        target.parent.mkdir(parents=True)
        data = _jar(target, {f"pkg{i}/Class.class": f"class {i}".encode(),
                             "META-INF/services/org.apache.kafka.Service": f"impl.{i}\n".encode(),
                             "META-INF/SIGNER.SF": b"signature", "shared/Common.class": f"common {i}".encode()})
        (target.parent / f"{target.name}.sha1").write_text(hashlib.sha1(data).hexdigest())  # noqa: S324
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, requests
    server.shutdown()


def test_lock_pins_sha256_after_checking_the_published_sha1(repository, tmp_path):
    url, root, _ = repository
    pins = fp.lock(url, tmp_path / "jars.lock.json")
    for artifact in fp.ARTIFACTS:
        assert pins[artifact.key] == hashlib.sha256((root / artifact.path()).read_bytes()).hexdigest()
    assert json.loads((tmp_path / "jars.lock.json").read_text()) == pins


def test_lock_refuses_a_jar_that_does_not_match_the_published_sha1(repository, tmp_path):
    url, root, _ = repository
    (root / fp.ARTIFACTS[1].path()).write_bytes(b"tampered")
    with pytest.raises(fp.PackageError, match="does not match the repository's SHA-1"):
        fp.lock(url, tmp_path / "jars.lock.json")


def test_build_writes_the_entry_point_the_sql_and_one_merged_jar(repository, tmp_path):
    url, _, requests = repository
    fp.lock(url, tmp_path / "jars.lock.json")
    out = fp.build(tmp_path / "app.zip", url, tmp_path / "cache", tmp_path / "jars.lock.json")
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        assert {"main.py", "aggregate_10m.sql", "tables_msk.sql", "application_properties.json", fp.DEPS_JAR} <= names
        properties = json.loads(archive.read("application_properties.json"))
        run_options = next(g for g in properties if g["PropertyGroupId"] == "kinesis.analytics.flink.run.options")
        assert run_options["PropertyMap"] == {"python": "main.py", "jarfile": fp.DEPS_JAR}
        (tmp_path / "deps.jar").write_bytes(archive.read(fp.DEPS_JAR))
    with zipfile.ZipFile(tmp_path / "deps.jar") as deps:
        count = len(fp.ARTIFACTS)
        assert {f"pkg{i}/Class.class" for i in range(count)} | {"shared/Common.class"} <= set(deps.namelist())
        assert deps.read("META-INF/services/org.apache.kafka.Service").decode().split() == [f"impl.{i}" for i in range(count)]
        assert "META-INF/SIGNER.SF" not in deps.namelist()


def test_a_second_build_uses_the_cache_without_downloading(repository, tmp_path):
    url, _, requests = repository
    fp.lock(url, tmp_path / "jars.lock.json")
    fp.build(tmp_path / "app.zip", url, tmp_path / "cache", tmp_path / "jars.lock.json")
    downloads = len(requests)
    fp.build(tmp_path / "app2.zip", url, tmp_path / "cache", tmp_path / "jars.lock.json")
    assert len(requests) == downloads


def test_a_jar_that_differs_from_its_pin_is_refused_and_not_cached(repository, tmp_path):
    url, root, _ = repository
    fp.lock(url, tmp_path / "jars.lock.json")
    (root / fp.ARTIFACTS[0].path()).write_bytes(b"something else")
    with pytest.raises(fp.PackageError, match="does not match the pinned"):
        fp.build(tmp_path / "app.zip", url, tmp_path / "cache", tmp_path / "jars.lock.json")
    assert not (tmp_path / "cache" / fp.ARTIFACTS[0].path()).exists()
    assert not (tmp_path / "app.zip").exists()


def test_a_lock_without_pins_is_a_clear_error(tmp_path):
    with pytest.raises(fp.PackageError, match="no SHA-256 for org.apache.flink:flink-connector-kafka"):
        fp.build(tmp_path / "app.zip", "http://127.0.0.1:9", tmp_path / "cache", tmp_path / "missing.json")


def test_an_unreachable_repository_is_a_clear_error(tmp_path, repository):
    url, _, _ = repository
    fp.lock(url, tmp_path / "jars.lock.json")
    with pytest.raises(fp.PackageError, match="cannot download http://127.0.0.1:9/"):
        fp.build(tmp_path / "app.zip", "http://127.0.0.1:9", tmp_path / "cache", tmp_path / "jars.lock.json")


def test_msk_iam_library_is_the_jar_that_bundles_the_aws_sdk_it_calls():
    # The plain aws-msk-iam-auth jar declares the AWS SDK as Maven dependencies, which the merge does
    # not resolve; without the "all" jar the login module fails on the managed service.
    from fraudstream.packaging.flink_app import ARTIFACTS

    (iam,) = [a for a in ARTIFACTS if a.name == "aws-msk-iam-auth"]
    assert iam.path().endswith("/aws-msk-iam-auth/2.2.0/aws-msk-iam-auth-2.2.0-all.jar")
    assert iam.key == "software.amazon.msk:aws-msk-iam-auth:2.2.0:all"
