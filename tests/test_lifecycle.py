"""A database's life with its objects, without Odoo: zip backups that carry the objects
(a real pg_dump, a real store through both APIs), the checks before a restore, the
adoption of another database's objects, dropped namespaces purged after the retention."""

import datetime
import functools
import io
import json
import os
import subprocess
import uuid
import zipfile

import psycopg2
import pytest

from stateless_odoo.attachments import collection, lifecycle
from stateless_odoo.attachments.backup import (
    AttachmentRows,
    BackupError,
    check_zip,
    complete_zip,
)
from stateless_odoo.attachments.stores import AttachmentStores
from stateless_odoo.testing.pg import PgCursor

from . import test_migration

environ_for = test_migration.environ_for
sha1 = test_migration.sha1
pg = test_migration.pg
filestore = test_migration.filestore
DB = test_migration.DB

KINDS = pytest.mark.parametrize("kind", ["s3", "swift"])


def pg_args(dsn):
    params = dict(item.split("=", 1) for item in dsn.split())
    return ["-h", params["host"], "-p", params["port"], "-U", params["user"]], params["dbname"]


def pg_dump(dsn):
    args, dbname = pg_args(dsn)
    out = subprocess.run(
        ["pg_dump", "--no-owner", *args, dbname],
        check=True,
        capture_output=True,
    )
    return out.stdout


def odoo_zip(dsn, files=()):
    """A zip as Odoo's dump_db writes it: dump.sql first, then manifest and filestore."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("dump.sql", pg_dump(dsn))
        archive.writestr("manifest.json", json.dumps({"odoo_dump": "1", "version": "18.0"}))
        for data in files:
            archive.writestr(f"filestore/{sha1(data)[:2]}/{sha1(data)}", data)
    buffer.seek(0)
    return buffer


class Unseekable(io.RawIOBase):
    """A pipe-like stream (stdout of `odoo db dump DB -`): written, never sought."""

    def __init__(self):
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, chunk):
        self.data += chunk
        return len(chunk)


@pytest.fixture
def stores_of(services, make_fresh_store):
    def make(kind, db=DB):
        container = make_fresh_store(kind)
        return AttachmentStores(kind, db, environ_for(kind, services, container.container))

    return make


def put(stores, data):
    store, key, url = stores.place(sha1(data))
    store.put(key, data)
    return url


def open_object(stores, url):
    store, key = stores.locate(url)
    return store.open(key)


# -- the rows of a pg_dump --------------------------------------------------------------


def test_rows_naming_objects_are_rewritten_to_their_file():
    sha = "a" * 40
    dump = [
        b"COPY public.res_partner (id, name) FROM stdin;\n",
        b"1\ts3://bucket/db/aa/" + sha.encode() + b"\n",  # another table: untouched
        b"\\.\n",
        b"COPY public.ir_attachment (id, name, store_fname, checksum) FROM stdin;\n",
        b"1\tpdf\ts3://bucket/db/aa/" + sha.encode() + b"\t" + sha.encode() + b"\n",
        b"2\tno checksum\tswift://c/db/bb/" + b"b" * 40 + b"\t\\N\n",
        b"3\tlocal\tcc/" + b"c" * 40 + b"\t" + b"c" * 40 + b"\n",
        b"4\tin db\t\\N\t" + b"d" * 40 + b"\n",
        b"5\tnameless\ts3://bucket/db/not-a-sha\t\\N\n",
        b"6\tthe older addons'\ts3://bucket/" + b"e" * 40 + b"\t\\N\n",  # a bare sha1 key
        b"\\.\n",
        b"SELECT 1;\n",
    ]
    rows = AttachmentRows()
    out = [rows.line(line) for line in dump]
    assert out[1] == dump[1]
    assert out[4] == b"1\tpdf\taa/" + sha.encode() + b"\t" + sha.encode() + b"\n"
    assert out[5] == b"2\tno checksum\tbb/" + b"b" * 40 + b"\t\\N\n"
    assert out[6:9] == dump[6:9] and out[10:] == dump[10:]
    assert out[9] == b"6\tthe older addons'\tee/" + b"e" * 40 + b"\t\\N\n"
    assert rows.objects == {
        sha: f"s3://bucket/db/aa/{sha}",
        "b" * 40: f"swift://c/db/bb/{'b' * 40}",
        "e" * 40: f"s3://bucket/{'e' * 40}",
    }
    assert rows.kept == ["s3://bucket/db/not-a-sha"]


# -- complete zip backups -----------------------------------------------------------------


@KINDS
def test_a_zip_backup_carries_every_object_and_restores_without_the_suite(
    kind, stores_of, filestore, services
):
    stores = stores_of(kind)
    pdf, image, local = os.urandom(300_000), os.urandom(20_000), b"a local file " * 100
    big = os.urandom(9 * 1024 * 1024)  # larger than a spool: through a temporary file
    urls = {data: put(stores, data) for data in (pdf, image, big)}
    for data, url in urls.items():
        filestore._insert("obj", url, None, sha1(data), "application/pdf", len(data))
    filestore._insert("twice", urls[pdf], None, sha1(pdf), "application/pdf", len(pdf))
    filestore.add_file(local)
    filestore.add_db(b"kept in the database")
    out = Unseekable()
    report = complete_zip(
        odoo_zip(filestore.dsn, [local]),
        out,
        functools.partial(open_object, stores),
        threads=4,
    )
    assert (report.objects, report.bytes) == (3, len(pdf) + len(image) + len(big))
    assert report.complete
    backup = io.BytesIO(bytes(out.data))
    check_zip(backup)
    with zipfile.ZipFile(backup) as archive:
        for data in (pdf, image, big, local):
            assert archive.read(f"filestore/{sha1(data)[:2]}/{sha1(data)}") == data
        dump_sql = archive.read("dump.sql")
    # restored by psql as Odoo's restore does: every row names its file
    target = f"stateless_t_{uuid.uuid4().hex[:10]}"
    args, source = pg_args(filestore.dsn)
    admin = psycopg2.connect(filestore.dsn.replace(source, "postgres"))
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{target}"')
    try:
        subprocess.run(
            ["psql", "-q", *args, "-d", target, "-v", "ON_ERROR_STOP=1"],
            input=dump_sql,
            check=True,
            capture_output=True,
        )
        with PgCursor(filestore.dsn.replace(source, target)) as cr:
            cr.execute("SELECT store_fname, checksum FROM ir_attachment ORDER BY id")
            rows = cr.fetchall()
        for fname, checksum in rows:
            assert fname is None or fname == f"{checksum[:2]}/{checksum}"
        assert sum(1 for fname, _c in rows if fname) == 5
    finally:
        admin.cursor().execute(f'DROP DATABASE "{target}" WITH (FORCE)')
        admin.close()


def test_a_missing_or_corrupt_object_is_named_and_the_backup_goes_on(stores_of, filestore):
    stores = stores_of("swift")
    good, gone, wrong = b"good" * 100, b"gone" * 100, b"wrong" * 100
    for data in (good, gone):
        filestore._insert("x", put(stores, data), None, sha1(data), "text/plain", len(data))
    store, key, url = stores.place(sha1(wrong))
    store.put(key, b"not the content its name says")
    filestore._insert("x", url, None, sha1(wrong), "text/plain", len(wrong))
    stores.place(sha1(gone)).store.delete(stores.place(sha1(gone)).key)
    out = io.BytesIO()
    report = complete_zip(odoo_zip(filestore.dsn), out, functools.partial(open_object, stores))
    assert report.objects == 1 and not report.complete
    assert report.missing == [stores.place(sha1(gone)).store_fname]
    assert report.corrupt == [url]
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == [
            "dump.sql",
            "manifest.json",
            f"filestore/{sha1(good)[:2]}/{sha1(good)}",
        ]


def test_a_store_that_fails_fails_the_backup(stores_of, filestore, services):
    stores = stores_of("s3")
    data = b"content"
    filestore._insert("x", put(stores, data), None, sha1(data), "text/plain", len(data))
    down = AttachmentStores(
        "s3",
        DB,
        {
            **environ_for("s3", services, stores.container),
            "AWS_HOST": "http://127.0.0.1:9",
            "AWS_MAX_ATTEMPTS": "1",
        },
    )
    with pytest.raises(Exception, match="get"):
        complete_zip(odoo_zip(filestore.dsn), io.BytesIO(), functools.partial(open_object, down))


# -- what a restore refuses -----------------------------------------------------------------


def _zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


GOOD = {"dump.sql": b"SELECT 1;\n", "manifest.json": b'{"odoo_dump": "1"}'}


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"dump.sql": b""}, "no manifest.json"),
        ({"manifest.json": b"{}"}, "no dump.sql"),
        ({**GOOD, "../etc/passwd": b"x"}, "'../etc/passwd' is outside filestore/"),
        ({**GOOD, "other/file": b"x"}, "'other/file' is outside filestore/"),
        ({**GOOD, "filestore/../../x": b"x"}, "outside filestore/"),
        ({**GOOD, f"filestore/aa/{'a' * 40}": b"x"}, f"filestore/aa/{'a' * 40}: its content"),
        ({**GOOD, "manifest.json": b"not json"}, "manifest.json is not JSON"),
    ],
)
def test_a_zip_that_odoo_would_restore_wrongly_is_refused(tmp_path, members, message):
    path = tmp_path / "backup.zip"
    path.write_bytes(_zip(members))
    with pytest.raises(BackupError, match=message.replace("(", r"\(").replace(".", r"\.")):
        check_zip(str(path))


def test_a_truncated_or_corrupt_zip_is_refused(tmp_path):
    data = _zip({**GOOD, "filestore/ab/abc": os.urandom(100_000)})
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(BackupError, match="not a zip backup"):
        check_zip(str(truncated))
    corrupt = bytearray(data)
    start = corrupt.find(b"filestore/ab/abc") + 100
    corrupt[start : start + 50] = bytes(50)
    path = tmp_path / "corrupt.zip"
    path.write_bytes(bytes(corrupt))
    with pytest.raises(BackupError, match="corrupt or truncated"):
        check_zip(str(path))
    sound = io.BytesIO(_zip({**GOOD, f"filestore/{sha1(b'x')[:2]}/{sha1(b'x')}": b"x"}))
    assert check_zip(sound) == {"odoo_dump": "1"} and sound.tell() == 0


# -- a copy gets its own objects -----------------------------------------------------------


@KINDS
def test_a_copy_adopts_the_objects_of_its_source(kind, stores_of, filestore, services):
    source = stores_of(kind, "source")
    copy = AttachmentStores(kind, DB, environ_for(kind, services, source.container))
    contents = [os.urandom(5000) for _ in range(3)]
    for data in contents:
        url = put(source, data)
        filestore._insert("x", url, None, sha1(data), "application/pdf", len(data))
        filestore._insert("y", url, None, sha1(data), "application/pdf", len(data))
    older = b"the older addons' bare sha1 key"  # no database's namespace: left alone
    source.write_store.put(sha1(older), older)
    older_url = f"{kind}://{source.container}/{sha1(older)}"
    filestore._insert("older", older_url, None, sha1(older), "text/plain", len(older))
    gone = b"missing"
    filestore._insert("gone", source.place(sha1(gone)).store_fname, None, sha1(gone), "x", 7)
    cursor = functools.partial(PgCursor, filestore.dsn)
    report = lifecycle.adopt(cursor, copy, threads=2)
    assert (report.copied, report.rows) == (3, 6)
    assert report.missing == [source.place(sha1(gone)).store_fname]
    names = {fname for fname, _d, _c in filestore.rows().values()}
    assert names == {
        *(copy.place(sha1(d)).store_fname for d in contents),
        older_url,
        source.place(sha1(gone)).store_fname,
    }
    for data in contents:
        place = copy.place(sha1(data))
        assert place.store.get_bytes(place.key) == data
        assert copy.owns(place.store_fname)
        assert source.place(sha1(data)).store.exists(source.place(sha1(data)).key)
    with PgCursor(filestore.dsn) as cr:  # recorded first: a killed adoption is collected
        cr.execute(f"SELECT count(*) FROM {collection.TABLE}")
        assert cr.fetchone()[0] == 4
    assert lifecycle.adopt(cursor, copy).copied == 0  # idempotent


# -- dropped databases ---------------------------------------------------------------------------


def test_a_dropped_database_goes_after_the_retention_and_never_a_neighbour(stores_of, services):
    gone = stores_of("s3", "gone")
    neighbour = AttachmentStores("s3", "neighbour", environ_for("s3", services, gone.container))
    reborn = AttachmentStores("s3", "reborn", environ_for("s3", services, gone.container))
    for stores in (gone, neighbour, reborn):
        for i in range(3):
            put(stores, f"{stores.db_name} {i}".encode())
    now = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.timezone.utc)
    lifecycle.schedule_drop(gone, "gone", now=now)
    lifecycle.schedule_drop(reborn, "reborn", now=now)
    exists = {"neighbour", "reborn"}.__contains__
    day = datetime.timedelta(days=1)
    report = lifecycle.purge_dropped(gone, 30 * 86400, exists, now=now + 29 * day)
    assert report.waiting == [("gone", now + 30 * day)] and report.cancelled == ["reborn"]
    report = lifecycle.purge_dropped(gone, 30 * 86400, exists, now=now + 31 * day)
    assert (report.databases, report.objects) == (["gone"], 3)
    keys = [info.key for info in gone.write_store.list()]
    assert not [k for k in keys if k.startswith("gone/")]
    assert len([k for k in keys if k.startswith("neighbour/")]) == 3
    assert len([k for k in keys if k.startswith("reborn/")]) == 3
    assert not [k for k in keys if k.startswith(lifecycle.MARKERS)]
