"""Migration and garbage collection of attachment content, against the real PostgreSQL
and the real Swift (S3 and Swift APIs), on a throwaway database holding an
``ir_attachment`` table with Odoo's columns."""

import functools
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from stateless_odoo.attachments import collection
from stateless_odoo.attachments.migration import Migration, MigrationRunning
from stateless_odoo.attachments.stores import AttachmentStores
from stateless_odoo.observability import events
from stateless_odoo.testing.pg import PgCursor

from .conftest import ROOT, s3_environ, swift_environ

DB = "migr"


def sha1(data):
    return hashlib.sha1(data).hexdigest()


@pytest.fixture
def pg(services):
    """DSN of a new database with an ir_attachment table; dropped at the end."""
    base = (
        f"host={services['TEST_PG_HOST']} port={services['TEST_PG_PORT']}"
        f" user={services['TEST_PG_USER']}"
    )
    name = f"stateless_t_{uuid.uuid4().hex[:10]}"
    import psycopg2

    admin = psycopg2.connect(base + " dbname=postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    dsn = f"{base} dbname={name}"
    with PgCursor(dsn) as cr:
        cr.execute(
            """CREATE TABLE ir_attachment (
                id serial PRIMARY KEY, name varchar, type varchar DEFAULT 'binary',
                store_fname varchar, db_datas bytea, checksum varchar(40),
                mimetype varchar, file_size integer)"""
        )
        cr.execute("CREATE INDEX ON ir_attachment (store_fname)")
    yield dsn
    admin.cursor().execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


def environ_for(kind, services, container):
    return (s3_environ if kind == "s3" else swift_environ)(services, container)


class Filestore:
    """A filestore directory and the rows pointing at it, as Odoo writes them."""

    def __init__(self, dsn, root):
        self.dsn = dsn
        self.root = root

    def add_file(self, data, mimetype="application/pdf", *, name="f", write=True):
        checksum = sha1(data)
        fname = f"{checksum[:2]}/{checksum}"
        if write:
            os.makedirs(os.path.join(self.root, checksum[:2]), exist_ok=True)
            with open(os.path.join(self.root, fname), "wb") as out:
                out.write(data)
            # Odoo's mark for its filestore's garbage collection (_mark_for_gc)
            os.makedirs(os.path.join(self.root, "checklist", checksum[:2]), exist_ok=True)
            open(os.path.join(self.root, "checklist", fname), "ab").close()
        return self._insert(name, fname, None, checksum, mimetype, len(data))

    def add_db(self, data, mimetype="application/pdf", name="d"):
        return self._insert(name, None, data, sha1(data), mimetype, len(data))

    def _insert(self, name, fname, data, checksum, mimetype, size):
        with PgCursor(self.dsn) as cr:
            cr.execute(
                "INSERT INTO ir_attachment (name, store_fname, db_datas, checksum, mimetype,"
                " file_size) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (name, fname, data, checksum, mimetype, size),
            )
            return cr.fetchone()[0]

    def rows(self):
        with PgCursor(self.dsn) as cr:
            cr.execute("SELECT id, store_fname, db_datas, checksum FROM ir_attachment")
            return {
                r[0]: (r[1], None if r[2] is None else bytes(r[2]), r[3]) for r in cr.fetchall()
            }

    def content(self, stores, att_id):
        fname, data, _checksum = self.rows()[att_id]
        if fname is None:
            return data
        if "://" in fname:
            store, key = stores.locate(fname)
            return store.get_bytes(key)
        with open(os.path.join(self.root, fname), "rb") as src:
            return src.read()


@pytest.fixture
def filestore(pg, tmp_path):
    return Filestore(pg, str(tmp_path / "filestore"))


def migration(fs, target, stores, **kw):
    kw.setdefault("batch_size", 4)
    kw.setdefault("threads", 4)
    return Migration(
        functools.partial(PgCursor, fs.dsn),
        target=target,
        stores=stores,
        filestore=fs.root,
        **kw,
    )


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_migration_to_the_store_and_back(kind, services, make_fresh_store, filestore):
    container = make_fresh_store(kind)
    stores = AttachmentStores(kind, DB, environ_for(kind, services, container.container))
    big = os.urandom(5 * 1024 * 1024)  # above the whole-read limit: streamed
    payloads = {
        "pdf": filestore.add_file(b"%PDF report"),
        "dup1": filestore.add_file(b"same content"),
        "dup2": filestore.add_file(b"same content"),
        "big": filestore.add_file(big, "video/mp4"),
        "icon": filestore.add_file(b"\x89PNG small", "image/png"),
        "js": filestore.add_file(b"console.log(1)", "application/javascript"),
        "in_db_big": filestore.add_db(b"x" * 60000, "image/png"),
        "in_db_small": filestore.add_db(b"tiny", "image/png"),
    }
    expected = {att_id: filestore.content(stores, att_id) for att_id in payloads.values()}

    report = migration(filestore, "store", stores).run()

    assert report.ok, report.skipped
    rows = filestore.rows()
    for name in ("pdf", "dup1", "dup2", "big", "in_db_big"):
        assert rows[payloads[name]][0].startswith(f"{kind}://{container.container}/{DB}/")
    for name in ("icon", "js", "in_db_small"):
        assert rows[payloads[name]][0] is None and rows[payloads[name]][1] is not None
    assert rows[payloads["dup1"]][0] == rows[payloads["dup2"]][0]
    assert {a: filestore.content(stores, a) for a in expected} == expected
    # one object per distinct content, every local file gone
    assert len(list(container.list(f"{DB}/"))) == 4
    assert not [f for _d, _s, files in os.walk(filestore.root) for f in files]
    assert report.files_removed == 5  # the duplicates share one file
    # the uploads were recorded as candidates, and are referenced: nothing to delete
    with PgCursor(filestore.dsn) as cr:
        assert collection.collect(cr, stores).deleted == 0
    assert len(list(container.list(f"{DB}/"))) == 4

    # the way back, for a team leaving the platform: to the filestore, then the database
    assert migration(filestore, "file", stores).run().ok
    assert {a: filestore.content(stores, a) for a in expected} == expected
    assert all(fname and "://" not in fname for fname, _d, _c in filestore.rows().values())
    assert list(container.list(f"{DB}/")) == []  # collected once unreferenced
    assert migration(filestore, "db", stores).run().ok
    assert {a: filestore.content(stores, a) for a in expected} == expected
    assert all(fname is None for fname, _d, _c in filestore.rows().values())


def test_a_switch_of_store_kind_moves_the_objects(services, make_fresh_store, filestore):
    """Swift to S3 (OVH to Exoscale): the objects move and the old ones are collected;
    an object of the configured kind in another container stays where it is."""
    old = make_fresh_store("swift")
    new = make_fresh_store("s3")
    old_stores = AttachmentStores("swift", DB, environ_for("swift", services, old.container))
    new_stores = AttachmentStores("s3", DB, environ_for("s3", services, new.container))
    ids = [filestore.add_file(b"%PDF " + bytes([i]) * 3000) for i in range(3)]
    assert migration(filestore, "store", old_stores).run().ok
    assert all(filestore.rows()[i][0].startswith("swift://") for i in ids)
    expected = {i: filestore.content(old_stores, i) for i in ids}
    other = make_fresh_store("s3")  # another environment's bucket, read-only here
    theirs = sha1(b"theirs")
    other.put(f"{DB}/{theirs[:2]}/{theirs}", b"theirs")
    foreign = filestore._insert(
        "f", f"s3://{other.container}/{DB}/{theirs[:2]}/{theirs}", None, theirs, "x/y", 6
    )

    report = migration(filestore, "store", new_stores, read_stores=[old_stores]).run()

    assert report.ok and report.moved == 3, report.skipped
    rows = filestore.rows()
    assert all(rows[i][0].startswith(f"s3://{new.container}/") for i in ids)
    assert {i: filestore.content(new_stores, i) for i in ids} == expected
    assert list(old.list(f"{DB}/")) == []  # collected after the commit
    assert rows[foreign][0].startswith(f"s3://{other.container}/")
    # and back to Swift (the other environment's object is copied in, read-only there)
    back = migration(filestore, "store", old_stores, read_stores=[new_stores]).run()
    assert back.ok and back.moved == 4, back.skipped
    assert other.get_bytes(f"{DB}/{theirs[:2]}/{theirs}") == b"theirs"  # never deleted
    # without the old kind's variables, its objects are named, not lost
    report = migration(filestore, "store", new_stores).run()
    skipped = sorted(i for ids_, _s, _r in report.skipped for i in ids_)
    assert skipped == sorted([*ids, foreign])
    assert all(filestore.rows()[i][0].startswith("swift://") for i in [*ids, foreign])


def test_one_object_named_through_both_apis_is_never_lost(services, make_fresh_store, filestore):
    """One Swift answering both APIs (s3api, as OVH's; the test services too):
    ``swift://c/k`` and ``s3://c/k`` are one object. Moving it to the other kind, then
    collecting the moved source, must not delete what the row now names; nor may the
    daily collection, nor may it rob a writer that reuses it through the other API."""
    container = make_fresh_store("swift").container
    swift = AttachmentStores("swift", DB, environ_for("swift", services, container))
    s3 = AttachmentStores("s3", DB, environ_for("s3", services, container))
    data = b"%PDF one object, two names " + uuid.uuid4().bytes
    att = filestore.add_file(data)
    assert migration(filestore, "store", swift).run().ok
    assert filestore.rows()[att][0].startswith("swift://")

    report = migration(filestore, "store", s3, read_stores=[swift]).run()

    assert report.ok and report.moved == 1, report.skipped
    url = filestore.rows()[att][0]
    assert url.startswith(f"s3://{container}/")
    assert filestore.content(s3, att) == data  # not deleted as the moved swift source
    # and back: the s3 source is not deleted either
    assert migration(filestore, "store", swift, read_stores=[s3]).run().ok
    assert filestore.content(swift, att) == data
    # the daily collection: a candidate of one API, a row naming it through the other
    with PgCursor(filestore.dsn) as cr:
        collection.mark(cr, [url])
    result = collect(filestore.dsn, s3)
    assert result.deleted == 0 and result.kept >= 1  # (with the migrations' uploads)
    assert filestore.content(swift, att) == data
    # a writer reusing the object through one API holds it against the other's collection
    other = b"%PDF reused through the other API " + uuid.uuid4().bytes
    _store, key, url = s3.place(sha1(other))
    s3.write_store.put(key, other)
    with PgCursor(filestore.dsn) as cr:
        collection.mark(cr, [url])
    writer = PgCursor(filestore.dsn)
    try:
        collection.lock_objects(writer, [swift.place(sha1(other)).store_fname])
        assert collect(filestore.dsn, s3).busy == 1
    finally:
        writer.close()
    assert s3.write_store.exists(key)


def test_bad_rows_are_skipped_and_named(services, make_fresh_store, filestore, caplog):
    container = make_fresh_store("s3")
    stores = AttachmentStores("s3", DB, environ_for("s3", services, container.container))
    good = filestore.add_file(b"good")
    missing = filestore.add_file(b"missing", write=False)
    corrupt = filestore.add_file(b"original")
    fname = filestore.rows()[corrupt][0]
    with open(os.path.join(filestore.root, fname), "wb") as out:
        out.write(b"bit rot")

    report = migration(filestore, "store", stores).run()

    skipped = {ids[0]: reason for ids, _source, reason in report.skipped}
    assert set(skipped) == {missing, corrupt}
    assert "missing" in skipped[missing]
    assert "is not its checksum" in skipped[corrupt]
    rows = filestore.rows()
    assert rows[good][0].startswith("s3://")
    assert rows[missing][0] == filestore.rows()[missing][0] and "://" not in rows[missing][0]
    assert os.path.exists(os.path.join(filestore.root, rows[corrupt][0]))  # kept
    assert f"ir.attachment {corrupt}" in caplog.text


def test_objects_of_an_unconfigured_kind_are_skipped(services, make_fresh_store, filestore):
    container = make_fresh_store("s3")
    stores = AttachmentStores("s3", DB, environ_for("s3", services, container.container))
    att = filestore._insert("w", f"swift://c/{DB}/aa/{'a' * 40}", None, "a" * 40, "x/y", 3)
    report = migration(filestore, "db", None, read_stores=[stores]).run()
    assert [(ids, reason) for ids, _s, reason in report.skipped] == [
        ([att], "no swift store is configured here to read its object")
    ]
    assert filestore.rows()[att][0].startswith("swift://")


def test_a_second_migration_refuses_to_start(services, make_fresh_store, filestore):
    container = make_fresh_store("s3")
    stores = AttachmentStores("s3", DB, environ_for("s3", services, container.container))
    filestore.add_file(b"one")
    holder = PgCursor(filestore.dsn)
    try:
        holder.execute(
            "SELECT pg_advisory_lock(%s, %s)",
            (collection.LOCK_NAMESPACE, collection.MIGRATION_LOCK),
        )
        with pytest.raises(MigrationRunning, match="another attachment migration"):
            migration(filestore, "store", stores).run()
    finally:
        holder.close()
    assert migration(filestore, "store", stores).run().moved == 1


KILLED_RUN = textwrap.dedent(
    """
    import functools, logging, sys, time
    from stateless_odoo.attachments.stores import AttachmentStores
    from stateless_odoo.attachments.migration import Migration
    from stateless_odoo.testing.pg import PgCursor
    import stateless_odoo.attachments.migration as m
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    dsn, root, kind, container, environ = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], {}
    import json, os
    environ = json.loads(os.environ["MIGRATION_ENV"])
    stores = AttachmentStores(kind, "migr", environ)
    put = m.Migration._put

    def slow_put(self, *args):  # a slow store: the kill lands inside a batch
        time.sleep(0.05)
        return put(self, *args)

    m.Migration._put = slow_put
    Migration(functools.partial(PgCursor, dsn), target="store", stores=stores,
              filestore=root, batch_size=5, threads=2).run()
    """
)


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_killed_migration_runs_again_and_loses_nothing(kind, services, make_fresh_store, filestore):
    import json

    container = make_fresh_store(kind)
    environ = environ_for(kind, services, container.container)
    stores = AttachmentStores(kind, DB, environ)
    contents = {}
    for i in range(60):
        data = os.urandom(200_000 + i)
        contents[filestore.add_file(data)] = data
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", KILLED_RUN, filestore.dsn, filestore.root, kind, ""],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "MIGRATION_ENV": json.dumps(environ), "PYTHONPATH": str(ROOT)},
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "15/60 looked at" in line:  # three batches committed, the fourth under way
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(lines)

    # killed: every row points at content that exists, no local file went early
    rows = filestore.rows()
    moved = [a for a, (fname, _d, _c) in rows.items() if "://" in fname]
    assert 15 <= len(moved) < 60
    for att_id, (fname, _d, _c) in rows.items():
        if "://" in fname:
            assert filestore.content(stores, att_id) == contents[att_id]
        else:
            assert os.path.exists(os.path.join(filestore.root, fname))

    time.sleep(0.1)
    report = migration(filestore, "store", stores).run()  # the lock died with the process
    assert report.ok
    assert {a: filestore.content(stores, a) for a in contents} == contents
    assert len(list(container.list(f"{DB}/"))) == 60
    with PgCursor(filestore.dsn) as cr:  # uploads of the killed batch are sorted out
        assert collection.collect(cr, stores).deleted == 0


# -- garbage collection -------------------------------------------------------------


@pytest.fixture
def gc_env(services, make_fresh_store, filestore):
    container = make_fresh_store("swift")
    stores = AttachmentStores("swift", DB, environ_for("swift", services, container.container))
    with PgCursor(filestore.dsn) as cr:
        collection.ensure_table(cr)

    def put(data):
        store, key, url = stores.place(sha1(data))
        store.put(key, data)
        return url

    def exists(url):
        store, key = stores.locate(url)
        return store.exists(key)

    return stores, filestore, put, exists


def collect(dsn, stores, **kw):
    with PgCursor(dsn) as cr:
        return collection.collect(cr, stores, **kw)


def test_collect_deletes_only_unreferenced_own_objects(gc_env):
    stores, fs, put, exists = gc_env
    orphan, used = put(b"orphan"), put(b"used")
    foreign = f"swift://{stores.container}/otherdb/aa/{'a' * 40}"
    fs._insert("used", used, None, sha1(b"used"), "text/plain", 4)
    with PgCursor(fs.dsn) as cr:
        collection.mark(cr, [orphan, used, foreign, "ab/local-path"])
    seen = []
    sink = events.subscribe(lambda event, fields: seen.append((event, fields)))
    try:
        result = collect(fs.dsn, stores)
    finally:
        events.unsubscribe(sink)
    assert (result.deleted, result.kept, result.foreign) == (1, 1, 1)
    # what the metrics count (a collection that stops succeeding pages someone)
    ran = [fields for event, fields in seen if event == "collection"]
    assert ran == [{"scope": "full", "outcome": "ok", "deleted": 1, "kept": 1, "busy": 0}]
    assert not exists(orphan) and exists(used)
    with PgCursor(fs.dsn) as cr:
        cr.execute(f"SELECT count(*) FROM {collection.TABLE}")
        assert cr.fetchone()[0] == 0


def test_unnamespaced_objects_of_the_older_addons_only_when_allowed(gc_env, services):
    stores, fs, _put, exists = gc_env
    # the older addons wrote s3://<bucket>/<sha1>, in no database's namespace
    unused, used = b"older, unused", b"older, used"
    legacy = {}
    for data in (unused, used):
        url = f"swift://{stores.container}/{sha1(data)}"
        store, key = stores.locate(url)
        store.put(key, data)
        legacy[data] = url
    fs._insert("older", legacy[used], None, sha1(used), "text/plain", len(used))
    other_db = f"swift://{stores.container}/otherdb/aa/{'a' * 40}"
    not_a_checksum = f"swift://{stores.container}/notes.txt"

    def mark_all():
        with PgCursor(fs.dsn) as cr:
            collection.mark(cr, [*legacy.values(), other_db, not_a_checksum])

    mark_all()
    result = collect(fs.dsn, stores)  # by default: left untouched, never deleted
    assert (result.deleted, result.kept, result.foreign) == (0, 1, 3)
    assert exists(legacy[unused])
    allowed = AttachmentStores(
        "swift", DB, environ_for("swift", services, stores.container), gc_unnamespaced=True
    )
    assert allowed.owns(legacy[unused]) and not allowed.owns(other_db)
    assert not allowed.owns(not_a_checksum)
    mark_all()
    result = collect(fs.dsn, allowed)
    assert (result.deleted, result.kept, result.foreign) == (1, 1, 2)
    assert not exists(legacy[unused]) and exists(legacy[used])


def test_rollback_after_unlink_keeps_the_object(gc_env):
    stores, fs, put, exists = gc_env
    url = put(b"kept")
    att = fs._insert("kept", url, None, sha1(b"kept"), "text/plain", 4)
    cr = PgCursor(fs.dsn)
    cr.execute("DELETE FROM ir_attachment WHERE id = %s", (att,))
    collection.mark(cr, [url])
    cr.rollback()
    cr.close()
    assert collect(fs.dsn, stores).deleted == 0
    assert exists(url)


def test_a_writer_reusing_an_object_is_not_robbed(gc_env):
    stores, fs, put, exists = gc_env
    url = put(b"shared")
    with PgCursor(fs.dsn) as cr:
        collection.mark(cr, [url])  # its last row was unlinked and committed
    writer = PgCursor(fs.dsn)
    collection.lock_objects(writer, [url])  # decides to reuse the object
    try:
        result = collect(fs.dsn, stores)
        assert (result.deleted, result.busy) == (0, 1)
        writer.execute(
            "INSERT INTO ir_attachment (store_fname, checksum) VALUES (%s, %s)",
            (url, sha1(b"shared")),
        )
        # the writer's uncommitted row: collection cannot have the SHARE lock, and
        # does not queue for it (that would hold back every other writer)
        assert collect(fs.dsn, stores, attempts=2).lock_timeout
        writer.commit()
    finally:
        writer.close()
    result = collect(fs.dsn, stores)
    assert (result.deleted, result.kept) == (0, 1)
    assert exists(url)


# -- the retention: a backup taken before the unlink still finds its objects -----------


def _age_unnamed(dsn, url, seconds):
    with PgCursor(dsn) as cr:
        cr.execute(
            f"UPDATE {collection.TABLE} SET unnamed_at = unnamed_at - make_interval(secs => %s)"
            " WHERE store_fname = %s",
            (seconds, url),
        )


def test_an_unnamed_object_waits_out_the_retention(gc_env):
    stores, fs, put, exists = gc_env
    url = put(b"unlinked yesterday")
    with PgCursor(fs.dsn) as cr:
        collection.mark(cr, [url])
    result = collect(fs.dsn, stores, retention=3600)
    assert (result.deleted, result.waiting) == (0, 1)
    assert exists(url)
    _age_unnamed(fs.dsn, url, 3000)
    assert collect(fs.dsn, stores, retention=3600).deleted == 0
    _age_unnamed(fs.dsn, url, 601)
    result = collect(fs.dsn, stores, retention=3600)
    assert (result.deleted, result.waiting) == (1, 0)
    assert not exists(url)


def test_an_object_named_again_starts_its_retention_again(gc_env):
    stores, fs, put, exists = gc_env
    url = put(b"named, unnamed, named again")
    with PgCursor(fs.dsn) as cr:
        collection.mark(cr, [url])
    collect(fs.dsn, stores, retention=3600)
    _age_unnamed(fs.dsn, url, 3000)
    # a writer reuses the object (its row is then unlinked before any collection ran):
    # a backup taken in between names it, so its 50 minutes do not count
    with PgCursor(fs.dsn) as cr:
        collection.record_writes(cr, [url])
    _age_unnamed(fs.dsn, url, 0)
    assert collect(fs.dsn, stores, retention=3600).waiting == 1
    _age_unnamed(fs.dsn, url, 700)
    assert collect(fs.dsn, stores, retention=3600).deleted == 0
    assert exists(url)


def test_identical_uploads_at_once_are_both_recorded(gc_env):
    """Two writers record the same object at once: at REPEATABLE READ the second one
    failed ('could not serialize access due to concurrent update', an ERROR line)."""
    _stores, fs, put, _exists = gc_env
    url = put(b"uploaded twice at once")
    first = PgCursor(fs.dsn)  # the first writer's record, not committed yet
    collection.record_writes(first, [url])
    errors = []

    def second_writer():
        try:
            with PgCursor(fs.dsn) as cr:
                collection.record_writes(cr, [url], lock_timeout=10)
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=second_writer)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()  # waits for the first writer's row
    first.commit()
    first.close()
    thread.join(10)
    assert not errors
    with PgCursor(fs.dsn) as cr:
        cr.execute(f"SELECT unnamed_at FROM {collection.TABLE} WHERE store_fname = %s", (url,))
        assert cr.fetchall() == [(None,)]


def test_a_transaction_writing_twenty_thousand_objects_holds_a_bounded_number_of_locks(
    gc_env,
):
    """One lock per object exhausted PostgreSQL's shared lock table ('out of shared
    memory', for every session of the server) from about 6,400 objects."""
    stores, fs, _put, _exists = gc_env
    urls = [stores.place(sha1(b"%d" % i)).store_fname for i in range(20_000)]
    writer = PgCursor(fs.dsn)
    try:
        collection.lock_objects(writer, urls)
        writer.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND pid = pg_backend_pid() AND classid = %s",
            (collection.OBJECT_LOCK_NAMESPACE,),
        )
        assert writer.fetchone()[0] <= collection.OBJECT_LOCK_SLOTS
        # a collection meanwhile leaves those objects to a later one
        with PgCursor(fs.dsn) as cr:
            collection.mark(cr, urls[:10])
        assert collect(fs.dsn, stores).busy == 10
    finally:
        writer.close()


# -- a slow store holds back no writer ---------------------------------------------------


@pytest.fixture
def held_deletes(monkeypatch):
    """The real store's deletes, each held until the test lets it go: the store is
    slow on demand (a real server cannot be made slow for one call). ``reached`` is set
    when a collection is inside the store call."""
    from stateless_odoo.storage.swift import SwiftStore

    reached, go = threading.Event(), threading.Event()
    original = SwiftStore.delete_many

    def delete_many(self, keys):
        reached.set()
        assert go.wait(30)
        return original(self, keys)

    monkeypatch.setattr(SwiftStore, "delete_many", delete_many)
    return reached, go


def _collect_in_thread(dsn, stores):
    results = []
    thread = threading.Thread(target=lambda: results.append(collect(dsn, stores)))
    thread.start()
    return thread, results


def test_writers_are_not_held_back_while_the_store_deletes(gc_env, held_deletes):
    """The collection held the SHARE lock on ir_attachment while it called the store:
    every insert, update and delete of attachments waited behind a slow store."""
    stores, fs, put, exists = gc_env
    reached, go = held_deletes
    urls = [put(b"unlinked %d" % i) for i in range(20)]
    with PgCursor(fs.dsn) as cr:
        collection.mark(cr, urls)
    thread, results = _collect_in_thread(fs.dsn, stores)
    try:
        assert reached.wait(30)
        # the store call under way: a user's upload of other content, and a writer
        # of an object in one of the collection's lock slots, go through at once
        other = stores.place(sha1(b"another user's file")).store_fname
        with PgCursor(fs.dsn) as cr:
            cr.execute("SET lock_timeout = '1s'")
            collection.lock_objects(cr, [other, *(u + "x" for u in urls)])
            collection.record_writes(cr, [other], fresh=False)
            cr.execute(
                "INSERT INTO ir_attachment (store_fname, checksum) VALUES (%s, %s)",
                (other, sha1(b"another user's file")),
            )
            cr.execute("DELETE FROM ir_attachment WHERE store_fname = %s", (other,))
    finally:
        go.set()
        thread.join(30)
    assert results[0].deleted == 20
    assert not any(exists(u) for u in urls)


def test_a_writer_of_an_object_being_deleted_waits_then_uploads_it(gc_env, held_deletes):
    stores, fs, put, exists = gc_env
    reached, go = held_deletes
    data = b"deleted, then uploaded again"
    url = put(data)
    with PgCursor(fs.dsn) as cr:
        collection.mark(cr, [url])
    thread, results = _collect_in_thread(fs.dsn, stores)
    writer = PgCursor(fs.dsn)
    try:
        assert reached.wait(30)
        collection.lock_objects(writer, [url])  # the writer's lock: not held back
        side = PgCursor(fs.dsn)
        recorded = threading.Thread(
            target=lambda: (collection.record_writes(side, [url]), side.commit())
        )
        recorded.start()
        time.sleep(0.5)
        assert recorded.is_alive()  # its record waits for the deletion's commit
        go.set()
        thread.join(30)
        recorded.join(30)
        side.close()
        # as _file_write: the object is gone, so it is uploaded again, and kept
        assert not exists(url)
        store, key = stores.locate(url)
        store.put(key, data)
        writer.execute(
            "INSERT INTO ir_attachment (store_fname, checksum) VALUES (%s, %s)", (url, sha1(data))
        )
        writer.commit()
    finally:
        go.set()
        writer.close()
    assert results[0].deleted == 1
    result = collect(fs.dsn, stores)
    assert (result.deleted, result.kept) == (0, 1)
    assert exists(url)


def test_a_writer_that_recorded_after_the_decision_keeps_the_object(gc_env):
    stores, fs, put, exists = gc_env
    url = put(b"decided, then reused")
    with PgCursor(fs.dsn) as cr:
        collection.mark(cr, [url])
    with PgCursor(fs.dsn) as cr:
        result, chosen = collection.decide(cr, stores)
    assert chosen == [url]
    with PgCursor(fs.dsn) as cr:  # a writer decides to reuse it, in between
        collection.record_writes(cr, [url])
    with PgCursor(fs.dsn) as cr:
        collection.delete(cr, stores, chosen, result)
    assert (result.deleted, result.busy) == (0, 1)
    assert exists(url)


def test_a_collection_the_store_refuses_is_counted_as_an_error(services, filestore):
    """The store down while a collection deletes: the candidates stay, and the event
    the metrics count says ``error`` (the alert on a collection that stopped
    succeeding). The store is a closed port: a real connection refused."""
    from stateless_odoo.testing import free_port

    stores = AttachmentStores(
        "s3", DB, s3_environ(services, "gc-down", AWS_HOST=f"http://127.0.0.1:{free_port()}")
    )
    url = f"s3://gc-down/{DB}/ab/{'b' * 40}"
    with PgCursor(filestore.dsn) as cr:
        collection.ensure_table(cr)
        collection.mark(cr, [url])
    seen = []
    sink = events.subscribe(lambda event, fields: seen.append((event, fields)))
    try:
        with pytest.raises(Exception):  # noqa: B017 - the store's own error
            collect(filestore.dsn, stores)
    finally:
        events.unsubscribe(sink)
    ran = [fields for event, fields in seen if event == "collection"]
    assert ran == [{"scope": "full", "outcome": "error", "deleted": 0, "kept": 0, "busy": 0}]
    with PgCursor(filestore.dsn) as cr:
        cr.execute(f"SELECT count(*) FROM {collection.TABLE} WHERE store_fname = %s", [url])
        assert cr.fetchone()[0] == 1  # still a candidate
