# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""A database's whole life with its objects: Odoo's own dump, restore, duplicate,
rename and drop (``odoo.service.db``, which the database manager and ``odoo db`` call),
each followed by what the objects need. The logic is in
:mod:`stateless_odoo.attachments.backup` and :mod:`~stateless_odoo.attachments.lifecycle`.

- dump (zip): the zip Odoo writes, with every object's content under ``filestore/`` and
  the rows naming their files: it restores into plain Odoo as well;
- restore: the zip is checked before anything is created; then the files go to the
  target's store (the migration of local files) and nothing is left on local disk; rows
  that name another database's objects (pg_dump's format) get copies of their own. A
  failure drops the new database: a restore is whole or not at all;
- duplicate: the copy gets its own objects (server-side copies);
- rename: the same under the new name; the old name's objects go after the retention;
- drop: the database's objects go after the retention (a marker in its container).

Installed when this addon is imported: ``odoo db`` imports every addon that has
commands, a server imports it with ``--load=attachment_s3`` (or ``_swift``) or when a
database's registry loads.
"""

import contextlib
import functools
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile

import odoo
import psycopg2
from odoo import SUPERUSER_ID, api
from odoo.service import db as service_db
from odoo.tools import SQL

from stateless_odoo.attachments import backup, lifecycle
from stateless_odoo.attachments.settings import AttachmentSettings
from stateless_odoo.errors import ConfigError
from stateless_odoo.platform import backups
from stateless_odoo.storage import KINDS, parse_object_url

_logger = logging.getLogger(__name__)

MODULE = "base_attachment_object_storage"

#: Odoo's functions, by name, as they were before :func:`install`
original = {}

#: the report of this process's last zip dump (``odoo cloud_platform backup`` reads it)
last_dump = {}

#: ir.config_parameter of a database whose restore must still finish (its files)
PENDING_PARAM = "base_attachment_object_storage.restore_pending"


def _stores(kind, db_name, settings):
    from .models.ir_attachment import attachment_stores

    return attachment_stores(kind, db_name, settings)


def configured_stores(db_name, settings):
    """The stores of ``db_name`` of every kind whose variables are set here."""
    stores = []
    for kind in KINDS:
        with contextlib.suppress(ConfigError):
            stores.append(_stores(kind, db_name, settings))
    return stores


def _open_object(db_name, settings, store_fname):
    kind = parse_object_url(store_fname)[0]
    try:
        stores = _stores(kind, db_name, settings)
    except ConfigError as exc:
        raise backup.BackupError(
            f"{db_name} names {kind} objects ({store_fname}) but this server cannot read"
            f" them: {exc}"
        ) from exc
    store, key = stores.locate(store_fname)
    return store.open(key)


def dump_db(db_name, stream, backup_format="zip"):
    if backup_format != "zip":
        return original["dump_db"](db_name, stream, backup_format)
    settings = AttachmentSettings.from_env()
    with tempfile.TemporaryFile() as odoo_zip:
        original["dump_db"](db_name, odoo_zip, "zip")
        odoo_zip.seek(0)
        out = stream if stream is not None else tempfile.TemporaryFile()
        report = backup.complete_zip(
            odoo_zip,
            out,
            functools.partial(_open_object, db_name, settings),
            threads=settings.migration_threads,
        )
    last_dump[db_name] = report
    _logger.info(
        "DUMP DB: %s: %d objects (%.1f MB) added from the store in %.1f s%s",
        db_name,
        report.objects,
        report.bytes / 1e6,
        report.seconds,
        "" if report.complete else " (INCOMPLETE: see the errors above)",
    )
    if stream is None:
        out.seek(0)
        return out
    return None


@contextlib.contextmanager
def _attachments(db_name):
    """``ir.attachment`` of ``db_name`` when this addon is installed there, else None."""
    registry = odoo.modules.registry.Registry(db_name)
    with registry.cursor() as cr:
        model = api.Environment(cr, SUPERUSER_ID, {})["ir.attachment"]
        yield model if hasattr(model, "_object_storage_kind") else None


def _move_local_files(db_name):
    with _attachments(db_name) as model:
        if model is None or not model._object_storage_kind():
            return
        migration = model._object_storage_migration(files_only=True)
    report = migration.run()  # a store that fails raises: the restore is undone
    _logger.info("RESTORE DB: %s: %d files moved to the object store", db_name, report.moved)
    if not report.ok:
        # files the backup did not carry: restored as plain Odoo restores them, named
        _logger.warning(
            "RESTORE DB: %s: %d attachments have no file in the backup (named above)",
            db_name,
            report.skipped_rows,
        )


def _undo(what, db_name, undo):
    """Run ``undo`` after ``what`` failed half-way; its own failure is logged."""
    _logger.error("%s of %s failed: undone", what, db_name)
    try:
        undo()
    except Exception:
        _logger.exception("%s of %s: could not be undone", what, db_name)


def restore_db(db, dump_file, copy=False, neutralize_database=False):
    with_files = zipfile.is_zipfile(dump_file)
    if with_files:
        backup.check_zip(dump_file)
    original["restore_db"](db, dump_file, copy, neutralize_database)
    try:
        if with_files:
            _move_local_files(db)
        # rows that still name another database's objects (pg_dump's format): copies of
        # its own, so that the other database's collection never takes them away
        _adopt(db)
    except BaseException:
        _undo("RESTORE DB", db, lambda: drop_new_database(db))
        raise


def _adopt(db_name):
    """The copy's own objects; the stores it used (none when the addon is not there)."""
    settings = AttachmentSettings.from_env()
    with _attachments(db_name) as model:
        if model is None or settings.disabled:
            return []
        cursor = model.env.registry.cursor
    stores = configured_stores(db_name, settings)
    for each in stores:
        report = lifecycle.adopt(cursor, each, threads=settings.migration_threads)
        if report.copied or report.rows:
            _logger.info(
                "%s: %d objects copied into its own namespace, %d rows",
                db_name,
                report.copied,
                report.rows,
            )
    return stores


def exp_duplicate_database(db_original_name, db_name, neutralize_database=False):
    result = original["exp_duplicate_database"](db_original_name, db_name, neutralize_database)
    try:
        _adopt(db_name)
    except BaseException:
        _undo("DUPLICATE DB", db_name, lambda: drop_new_database(db_name))
        raise
    return result


def exp_rename(old_name, new_name):
    result = original["exp_rename"](old_name, new_name)
    try:
        stores = _adopt(new_name)
    except BaseException:
        _undo("RENAME DB", new_name, lambda: original["exp_rename"](new_name, old_name))
        raise
    _schedule_drop(old_name, stores)
    return result


def _uses_object_storage(db_name):
    """Whether ``db_name`` exists and has this addon installed (plain SQL: a database
    about to be dropped is not loaded)."""
    try:
        with contextlib.closing(odoo.sql_db.db_connect(db_name).cursor()) as cr:
            cr.execute(
                "SELECT 1 FROM ir_module_module WHERE name = %s AND state = 'installed'",
                (MODULE,),
            )
            return bool(cr.fetchone())
    except psycopg2.Error:  # not a database, not an Odoo database
        return False
    finally:
        odoo.sql_db.close_db(db_name)


def _schedule_drop(db_name, stores):
    for each in stores:
        try:
            lifecycle.schedule_drop(each, db_name)
        except Exception:
            _logger.exception(
                "%s is gone but its objects in %s could not be scheduled for deletion:"
                " delete the namespace %s/ there once no backup needs it",
                db_name,
                each.container,
                db_name,
            )


def _drop(db_name, drop):
    """``drop()`` the database; when it did and this addon was installed there, its
    objects are scheduled for deletion after the retention."""
    settings = AttachmentSettings.from_env()
    stores = configured_stores(db_name, settings) if _uses_object_storage(db_name) else []
    dropped = drop()
    if dropped and not settings.disabled:
        _schedule_drop(db_name, stores)
    return dropped


def drop_new_database(db_name):
    """Drop a database this module just made (a restore or a duplicate that failed, a
    restore's staging database), whatever the list of databases this process exposes
    (Odoo's ``exp_drop`` only drops those of ``list_dbs``, which is ``db_name`` alone on
    a server started with ``-d``)."""

    def drop():
        odoo.modules.registry.Registry.delete(db_name)
        odoo.sql_db.close_db(db_name)
        with contextlib.closing(odoo.sql_db.db_connect("postgres").cursor()) as cr:
            cr._cnx.autocommit = True  # DROP DATABASE cannot run in a transaction
            service_db._drop_conn(cr, db_name)
            name = service_db.database_identifier(cr, db_name)
            cr.execute(SQL("DROP DATABASE IF EXISTS %s", name))
        shutil.rmtree(odoo.tools.config.filestore(db_name), ignore_errors=True)
        _logger.info("DROP DB: %s", db_name)
        return True

    _drop(db_name, drop)


def exp_drop(db_name):
    return _drop(db_name, lambda: original["exp_drop"](db_name))


WRAPPERS = {
    "dump_db": dump_db,
    "restore_db": restore_db,
    "exp_duplicate_database": exp_duplicate_database,
    "exp_rename": exp_rename,
    "exp_drop": exp_drop,
}


def install():
    """Put the wrappers in place of Odoo's functions, in ``odoo.service.db`` and in the
    modules that imported them by name (``odoo.cli.db``); once per process."""
    for name, wrapper in WRAPPERS.items():
        current = getattr(service_db, name)
        if current is wrapper:
            continue
        original[name] = current
        setattr(service_db, name, wrapper)
        cli = sys.modules.get("odoo.cli.db")
        if cli is not None and getattr(cli, name, None) is current:
            setattr(cli, name, wrapper)


# -- backups to and from an object store (odoo cloud_platform backup|restore) -----------


def _plain_sql(db_name, stream):
    """pg_dump's plain SQL, without owners, as Odoo's zip holds it."""
    command = [service_db.find_pg_tool("pg_dump"), "--no-owner", db_name]
    environ = service_db.exec_pg_environ()
    with subprocess.Popen(command, env=environ, stdout=subprocess.PIPE) as dump:  # noqa: S603
        shutil.copyfileobj(dump.stdout, stream, backup.COPY_CHUNK)
    if dump.returncode:
        raise backup.BackupError(f"pg_dump of {db_name} failed (exit {dump.returncode})")


def backup_to(db_name, url, backup_format="zip", *, overwrite=False):
    """Stream a backup of ``db_name`` into ``url`` (``s3://bucket/key``...); returns
    ``(object info, dump report or None)``."""
    store, key = backups.backup_store(url)
    last_dump.pop(db_name, None)

    def write(stream):
        if backup_format == "sql":
            _plain_sql(db_name, stream)
        else:
            service_db.dump_db(db_name, stream, backup_format)

    info = backups.upload(store, key, write, overwrite=overwrite)
    return info, last_dump.get(db_name)


def _pending(db_name):
    with contextlib.closing(odoo.sql_db.db_connect(db_name).cursor()) as cr:
        cr.execute("SELECT value FROM ir_config_parameter WHERE key = %s", (PENDING_PARAM,))
        row = cr.fetchone()
    odoo.sql_db.close_db(db_name)
    return row[0] if row else None


def _set_pending(db_name, value):
    with contextlib.closing(odoo.sql_db.db_connect(db_name).cursor()) as cr:
        if value:
            cr.execute(
                "INSERT INTO ir_config_parameter (key, value) VALUES (%s, %s)",
                (PENDING_PARAM, value),
            )
        else:
            cr.execute("DELETE FROM ir_config_parameter WHERE key = %s", (PENDING_PARAM,))
        cr.commit()  # pylint: disable=invalid-commit  # its own cursor, on a database just restored
    odoo.modules.registry.Registry.delete(db_name)
    odoo.sql_db.close_db(db_name)


def restore_from(db_name, dump_file, *, neutralize=False):
    """Restore ``dump_file`` (a zip or pg_dump's format) as ``db_name`` so that a
    restore killed at any point can be run again: Odoo's restore goes to
    ``<db_name>-restoring`` (dropped first when a killed run left it), which is renamed
    to ``db_name`` once whole and marked as pending; then its files go to the store.
    Run again, a pending ``db_name`` only finishes. Returns ``"restored"`` or
    ``"resumed"``; raises BackupError when ``db_name`` exists and is not pending."""
    if service_db.exp_db_exist(db_name):
        kind = _pending(db_name)
        if not kind:
            raise backup.TargetExists(f"database {db_name!r} exists: restore into a new name")
        _finish_restore(db_name, kind)
        return "resumed"
    staging = f"{db_name[:50]}-restoring"
    if service_db.exp_db_exist(staging):
        _logger.info("RESTORE DB: %s: dropping %s, left by a stopped restore", db_name, staging)
        drop_new_database(staging)
    kind = "zip" if zipfile.is_zipfile(dump_file) else "dump"
    if kind == "zip":
        backup.check_zip(dump_file)
    original["restore_db"](staging, dump_file, True, neutralize)
    _set_pending(staging, kind)
    original["exp_rename"](staging, db_name)
    _finish_restore(db_name, kind)
    return "restored"


def _finish_restore(db_name, kind):
    if kind == "zip":
        _move_local_files(db_name)
    _adopt(db_name)
    _set_pending(db_name, None)
