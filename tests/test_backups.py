"""Backups streamed into an object store (both APIs of the real Swift): the whole stream
arrives, a writer that fails leaves no object that looks complete, an existing key is
refused, the destination's variables can be overridden."""

import hashlib
import os

import pytest

from stateless_odoo.errors import (
    AccessDenied,
    ConfigError,
    StatelessOdooError,
    StoreUnavailable,
)
from stateless_odoo.platform import backups

from .conftest import s3_environ, swift_environ

KINDS = pytest.mark.parametrize("kind", ["s3", "swift"])


def environ_for(kind, services, container="ignored-by-the-url"):
    return (s3_environ if kind == "s3" else swift_environ)(services, container)


def writer(total, chunk=100_000, fail_after=None):
    """Writes ``total`` pseudo-random bytes in small pieces, as a zip writer does;
    raises once ``fail_after`` bytes are written. Returns (write, digest of what it
    wrote when whole)."""
    block = os.urandom(chunk)
    digest = hashlib.sha256()
    for start in range(0, total, chunk):
        digest.update(block[: min(chunk, total - start)])

    def write(stream):
        for start in range(0, total, chunk):
            if fail_after is not None and start >= fail_after:
                raise RuntimeError("the database went away in the middle of the dump")
            stream.write(block[: min(chunk, total - start)])

    return write, digest.hexdigest()


@KINDS
def test_a_backup_is_streamed_whole_into_the_store(kind, services, make_fresh_store):
    container = make_fresh_store(kind).container
    store, key = backups.backup_store(
        f"{kind}://{container}/nightly/db.zip",
        {**environ_for(kind, services), "AWS_KEY_PREFIX": "x/", "SWIFT_KEY_PREFIX": "x/"},
    )
    assert key == "nightly/db.zip" and store.container == container
    write, digest = writer(40 * 1024 * 1024)  # above the multipart threshold
    info = backups.upload(store, key, write)
    assert info.size == 40 * 1024 * 1024
    with store.open(key) as reader:
        got = hashlib.sha256()
        while chunk := reader.read(1024 * 1024):
            got.update(chunk)
    assert got.hexdigest() == digest
    # an existing key is refused, and replaced when asked
    with pytest.raises(ConfigError, match="exists"):
        backups.upload(store, key, writer(10)[0])
    assert backups.upload(store, key, writer(10)[0], overwrite=True).size == 10


@KINDS
@pytest.mark.parametrize("fail_after", [0, 3 * 1024 * 1024, 30 * 1024 * 1024])
def test_a_writer_that_fails_leaves_no_object(kind, fail_after, services, make_fresh_store):
    container = make_fresh_store(kind).container
    store, key = backups.backup_store(
        f"{kind}://{container}/broken.zip", environ_for(kind, services)
    )
    with pytest.raises(RuntimeError, match="went away"):
        backups.upload(store, key, writer(40 * 1024 * 1024, fail_after=fail_after)[0])
    assert not store.exists(key, newest=True)
    assert [info.key for info in store.list()] == []


def test_a_store_that_fails_fails_the_backup(services, closed_port):
    """The upload's error, never a writer blocked on a reader that is gone (S3's
    transfer reads the rest of the stream after a failed part: the writer ends)."""
    environ = {**environ_for("s3", services), "AWS_HOST": f"http://127.0.0.1:{closed_port}"}
    store, key = backups.backup_store("s3://somewhere/db.zip", {**environ, "AWS_MAX_ATTEMPTS": "1"})
    store.exists = lambda key, newest=False: False  # the check before would fail already
    with pytest.raises(StoreUnavailable, match="put"):
        backups.upload(store, key, writer(40 * 1024 * 1024)[0])
    # Swift's upload stops reading: the writer is stopped with it
    environ = {
        **environ_for("swift", services),
        "SWIFT_AUTH_URL": f"http://127.0.0.1:{closed_port}/auth/v1.0",
    }
    store, key = backups.backup_store(
        "swift://somewhere/db.zip", {**environ, "SWIFT_MAX_ATTEMPTS": "1"}
    )
    store.exists = lambda key, newest=False: False
    with pytest.raises(StatelessOdooError):
        backups.upload(store, key, writer(400 * 1024 * 1024)[0])


def test_the_destination_variables(services, make_fresh_store):
    container = make_fresh_store("s3").container
    environ = environ_for("s3", services)
    for url in ("", "file:///tmp/x.zip", "s3://bucket-only", "s3:///key"):
        with pytest.raises(ConfigError, match="backup URL"):
            backups.backup_store(url, environ)
    # ODOO_BACKUP_<NAME> overrides the attachment store's <NAME>
    store, key = backups.backup_store(
        f"s3://{container}/k", {**environ, "ODOO_BACKUP_AWS_SECRET_ACCESS_KEY": "wrong"}
    )
    with pytest.raises(AccessDenied):
        store.put(key, b"x")
    store, key = backups.backup_store(
        f"s3://{container}/k",
        {
            **environ,
            "AWS_SECRET_ACCESS_KEY": "wrong",
            "ODOO_BACKUP_AWS_SECRET_ACCESS_KEY": environ["AWS_SECRET_ACCESS_KEY"],
        },
    )
    store.put(key, b"x")
    with pytest.raises(ConfigError, match="AWS_READ_TIMEOUT"):
        backups.backup_store(
            f"s3://{container}/k", {**environ, "ODOO_BACKUP_AWS_READ_TIMEOUT": "soon"}
        )
