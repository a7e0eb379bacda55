"""What the ops commands read: a database's storage status (real PostgreSQL), the
migration's progress bar."""

import datetime
import functools
import io
import re

from stateless_odoo.attachments import collection
from stateless_odoo.attachments.migration import Migration, MigrationReport, ProgressBar
from stateless_odoo.attachments.stores import AttachmentStores
from stateless_odoo.platform.ops import storage_status
from stateless_odoo.testing.pg import PgCursor

from . import test_migration

environ_for = test_migration.environ_for
# the throwaway database with an ir_attachment table, and its filestore
pg = test_migration.pg
filestore = test_migration.filestore


def _odoo_tables(dsn, location=None, platform=None, installed=()):
    with PgCursor(dsn) as cr:
        cr.execute("CREATE TABLE ir_config_parameter (key varchar PRIMARY KEY, value text)")
        cr.execute("CREATE TABLE ir_module_module (name varchar, state varchar)")
        for key, value in (("ir_attachment.location", location), ("cloud.platform.kind", platform)):
            if value:
                cr.execute("INSERT INTO ir_config_parameter VALUES (%s, %s)", (key, value))
        for name in installed:
            cr.execute("INSERT INTO ir_module_module VALUES (%s, 'installed')", (name,))
        cr.execute("INSERT INTO ir_module_module VALUES ('attachment_swift', 'uninstalled')")


def test_status_of_a_fresh_database(filestore):
    _odoo_tables(filestore.dsn)
    filestore.add_file(b"x" * 1000)
    filestore.add_db(b"y" * 10)
    with PgCursor(filestore.dsn) as cr:
        status = storage_status(cr, "acme", "dev")
    assert status.settings.location == "file"
    assert status.settings.platform is None
    assert status.settings.installed_kinds == ()
    assert status.places == {
        "file": {"count": 1, "bytes": 1000},
        "db": {"count": 1, "bytes": 10},
    }
    assert status.to_move == 1  # location file: the database row goes to the filestore
    assert status.gc_pending == 0 and not status.migration_running
    text = status.render()
    assert "(not installed)" in text
    assert re.search(r"\n  file +1 +0\.0 MB\n", text)


def test_status_counts_what_is_left_to_move_and_a_running_migration(filestore):
    _odoo_tables(filestore.dsn, "s3", "exoscale", ("attachment_s3",))
    for i in range(3):
        filestore.add_file(b"%d" % i * 5000)
    with PgCursor(filestore.dsn) as cr:
        status = storage_status(cr, "acme", "prod")
        assert status.settings.installed_kinds == ("s3",)
        assert status.to_move == 3
        collection.ensure_table(cr)
        cr.execute(f"INSERT INTO {collection.TABLE} (store_fname) VALUES ('s3://b/k')")
    # a migration holds its lock: status sees it from another connection
    with PgCursor(filestore.dsn) as lock_cr, PgCursor(filestore.dsn) as cr:
        lock_cr.execute(
            "SELECT pg_advisory_lock(%s, %s)",
            (collection.LOCK_NAMESPACE, collection.MIGRATION_LOCK),
        )
        status = storage_status(cr, "acme", "prod")
        assert status.migration_running
        assert status.gc_pending == 1
    data = status.as_dict()
    assert data["to_move"] == 3 and data["settings"]["platform"] == "exoscale"


def test_status_shows_what_waits_for_the_retention_and_until_when(filestore):
    _odoo_tables(filestore.dsn, "s3", "exoscale", ("attachment_s3",))
    with PgCursor(filestore.dsn) as cr:
        collection.ensure_table(cr)
        cr.execute(
            f"INSERT INTO {collection.TABLE} (store_fname, unnamed_at) VALUES"
            " ('s3://b/unseen', NULL),"
            " ('s3://b/waiting', '2026-12-01 10:00:00'),"
            " ('s3://b/later', '2026-12-02 10:00:00'),"
            " ('s3://b/due', '2026-01-01 10:00:00')"
        )
        cr.execute("SELECT now() at time zone 'UTC' - '2026-12-01 10:00:00'::timestamp")
        age = cr.fetchone()[0].total_seconds()
        retention = age + 86400  # the 1 December one is due a day from now
        status = storage_status(cr, "acme", "prod", gc_retention=retention)
    assert (status.gc_pending, status.gc_unseen, status.gc_waiting) == (4, 1, 2)
    due = datetime.datetime(2026, 12, 1, 10) + datetime.timedelta(seconds=retention)
    assert status.gc_next_due[:16] == due.isoformat(sep=" ")[:16]
    text = status.render()
    assert "2 waiting (the first until " in text and "1 not looked at yet, 1 due" in text


def test_progress_bar_draws_on_a_terminal_only():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    clock = iter([0.0, 10.0, 20.0]).__next__
    out = Terminal()
    bar = ProgressBar(out, width=10, clock=clock)
    report = MigrationReport("store", moved=40, bytes=2_000_000)
    bar(50, 100, report)
    bar.close()
    assert out.getvalue() == ("\r[#####.....]  50% 50/100 looked at, 40 moved, 2.0 MB, ETA 10 s\n")
    quiet = io.StringIO()
    bar = ProgressBar(quiet)
    bar(1, 2, report)
    bar.close()
    assert quiet.getvalue() == ""


def test_migration_calls_progress_after_each_batch(services, make_fresh_store, filestore):
    store = make_fresh_store("swift")
    for i in range(5):
        filestore.add_file(b"content %d" % i * 1000)
    calls = []
    stores = AttachmentStores("swift", "migr", environ_for("swift", services, store.container))
    Migration(
        functools.partial(PgCursor, filestore.dsn),
        target="store",
        stores=stores,
        filestore=filestore.root,
        batch_size=2,
        threads=2,
        progress=lambda seen, total, report: calls.append((seen, total, report.moved)),
    ).run()
    assert calls == [(2, 5, 2), (4, 5, 4), (5, 5, 5)]
