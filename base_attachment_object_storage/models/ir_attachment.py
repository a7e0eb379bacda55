# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""ir.attachment content in an object store: the Odoo glue of stateless_odoo.

The decisions (where content goes, keys, garbage collection, migration) live in the
core package; this file wires them to Odoo's extension points.
"""

import logging
import os
import re
import threading

import psycopg2
import psycopg2.errors
from odoo import api, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import config

from stateless_odoo.attachments import collection, lifecycle
from stateless_odoo.attachments.caches import ObjectCache, PresignedUrls
from stateless_odoo.attachments.migration import Migration, MigrationRunning, find_update_module
from stateless_odoo.attachments.rule import KEEP_IN_DATABASE_PARAM, KeepInDatabase
from stateless_odoo.attachments.settings import AttachmentSettings
from stateless_odoo.attachments.stores import OBJECT_FNAME_SQL, AttachmentStores, is_object_url
from stateless_odoo.errors import ConfigError, ObjectNotFound, StatelessOdooError
from stateless_odoo.storage import KINDS, parse_object_url

from ..exceptions import ObjectStoreUnavailable

_logger = logging.getLogger(__name__)

#: the daily collection: at most GC_CHUNKS transactions of GC_CHUNK objects, each
#: trying the SHARE lock GC_LOCK_ATTEMPTS times, 0.2 s apart (never queued)
GC_CHUNK = 1000
GC_CHUNKS = 100
GC_LOCK_ATTEMPTS = 25
#: seconds a writer waits for a collection that is deleting the object it writes
RECORD_LOCK_TIMEOUT = 10

#: the columns Odoo's ``_to_http_stream`` reads
_STREAM_FIELDS = (
    "store_fname", "db_datas", "url", "mimetype", "name", "checksum", "public", "write_date",
    "file_size",
)  # fmt: skip

#: a filestore path as Odoo writes it: ``ab/<sha1>``
_LOCAL_FNAME = re.compile(r"[0-9a-f]{2}/([0-9a-f]{40})")

_stores = {}
_stores_lock = threading.Lock()
_caches = {}
_url_caches = {}


def attachment_stores(kind, db_name, settings):
    """The stores of ``db_name`` for ``kind``, built once per process (their clients
    are rebuilt after a fork); a configuration error is raised at each use."""
    cache_key = (
        kind,
        db_name,
        settings.disabled,
        settings.gc_unnamespaced,
        settings.create_container,
    )
    stores = _stores.get(cache_key)
    if stores is None:
        with _stores_lock:
            stores = _stores.get(cache_key)
            if stores is None:
                stores = AttachmentStores(
                    kind,
                    db_name,
                    disabled=settings.disabled,
                    gc_unnamespaced=settings.gc_unnamespaced,
                    create_container=settings.create_container,
                )
                _stores[cache_key] = stores
    return stores


def object_cache(settings):
    """The process's cache of small objects (ODOO_ATTACHMENT_CACHE_*)."""
    cache_key = (settings.cache_size, settings.cache_max_object)
    cache = _caches.get(cache_key)
    if cache is None:
        with _stores_lock:
            cache = _caches.setdefault(
                cache_key, ObjectCache(settings.cache_size, settings.cache_max_object)
            )
    return cache


def presigned_urls(settings):
    """The process's cache of presigned URLs (ODOO_ATTACHMENT_URL_CACHE)."""
    cache = _url_caches.get(settings.url_cache)
    if cache is None:
        with _stores_lock:
            cache = _url_caches.setdefault(settings.url_cache, PresignedUrls(settings.url_cache))
    return cache


class IrAttachment(models.Model):
    _inherit = "ir.attachment"

    # -- configuration ----------------------------------------------------------------

    @api.model
    def _object_storage_kinds(self):
        """The kinds of store the installed addons provide (``s3``, ``swift``)."""
        return []

    @api.model
    def _object_storage_settings(self):
        return AttachmentSettings.current()

    @api.model
    def _object_storage_kind(self):
        """The kind of store new content goes to, or None (location ``db``/``file``,
        or DISABLE_ATTACHMENT_STORAGE)."""
        location = super()._storage()  # pylint: disable=super-method-mismatch  # Odoo's own
        if location in self._object_storage_kinds():
            return location
        return None

    @api.model
    def _storage(self):
        if self.env.context.get("stateless_keep_in_db"):
            return "db"
        location = super()._storage()
        if location in self._object_storage_kinds() and (self._object_storage_settings().disabled):
            return "db"  # the kill switch: new content in the database, no store touched
        return location

    @api.model
    def _object_stores(self, kind=None):
        """The stores of this database for ``kind`` (default: the configured one)."""
        kind = kind or self._object_storage_kind()
        try:
            return attachment_stores(kind, self.env.cr.dbname, self._object_storage_settings())
        except ConfigError as exc:
            raise UserError(
                self.env._("The attachment storage is misconfigured: %(error)s", error=exc)
            ) from exc

    @api.model
    def _keep_in_database_rule(self):
        settings = self._object_storage_settings()
        if settings.keep_in_database is not None:
            return settings.keep_in_database
        text = self.env["ir.config_parameter"].sudo().get_param(KEEP_IN_DATABASE_PARAM)
        try:
            return KeepInDatabase.parse(text)
        except ConfigError as exc:
            raise UserError(str(exc)) from exc

    # -- write --------------------------------------------------------------------------

    def _get_datas_related_values(self, data, mimetype):
        attachments = self
        if (
            data
            and self._storage() in self._object_storage_kinds()
            and self._keep_in_database_rule().keeps(mimetype, len(data))
        ):
            attachments = self.with_context(stateless_keep_in_db=True)
        elif data:
            attachments = self.with_context(stateless_mimetype=mimetype)
        return super(IrAttachment, attachments)._get_datas_related_values(data, mimetype)

    @api.model
    def _file_write(self, bin_value, checksum):
        kind = self._object_storage_kind()
        if not kind or self._storage() != kind:
            return super()._file_write(bin_value, checksum)
        stores = self._object_stores(kind)
        store, key, url = stores.place(checksum)
        # a garbage collection must not delete the object between the check below and
        # this transaction's commit; and if this transaction never commits, the object
        # is a candidate for deletion (recorded in a transaction of its own)
        collection.lock_objects(self.env.cr, [url])
        if url not in self.env.cr.postcommit.data.get("stateless_gc", ()):
            self._object_storage_mark_now(url)
        try:
            stores.ready_for_writes()
            # content addressed: the same content once; newest, since a replica may
            # not know yet that a garbage collection deleted it a moment ago
            if not store.exists(key, newest=True):
                store.put(key, bin_value, content_type=self.env.context.get("stateless_mimetype"))
        except StatelessOdooError as exc:
            _logger.error("attachment content not stored: %s", exc)
            raise UserError(
                self.env._("The file could not be saved in the object store: %(error)s", error=exc)
            ) from exc
        return url

    @api.model
    def _object_storage_mark_now(self, url):
        """Record ``url`` as a deletion candidate in a transaction committed at once."""
        try:
            registry = self.env.registry
            with registry.cursor() as side_cr:
                collection.record_writes(
                    side_cr, [url], lock_timeout=RECORD_LOCK_TIMEOUT,
                    fresh=not registry.in_test_mode(),
                )  # fmt: skip
        except psycopg2.errors.LockNotAvailable as exc:
            # a collection is deleting this very object and the store has not answered
            # yet: neither reusing it nor uploading it again is safe before it commits
            _logger.warning("%s: a garbage collection deleting it holds it: %s", url, exc)
            raise ObjectStoreUnavailable(
                self.env._(
                    "The object store is deleting this content right now (%(url)s);"
                    " try again in a moment.",
                    url=url,
                )
            ) from exc
        except psycopg2.Error as exc:
            _logger.info("%s not recorded as a candidate: %s", url, exc)

    # -- read ---------------------------------------------------------------------------

    def _object_storage_describe(self):
        if len(self) == 1:
            return self.env._("attachment %(id)s (%(name)s)", id=self.id, name=self.name)
        return self.env._("attachment content")

    def _object_storage_read_error(self, exc):
        """A missing object: the user's error, and final. Anything else the store (or
        its configuration) does: not the user's, and maybe not for long."""
        if isinstance(exc, ObjectNotFound):
            return UserError(
                self.env._(
                    "The content of %(what)s is missing from the object store: %(error)s",
                    what=self._object_storage_describe(),
                    error=exc,
                )
            )
        return ObjectStoreUnavailable(
            self.env._(
                "The content of %(what)s cannot be read from the object store now: %(error)s",
                what=self._object_storage_describe(),
                error=exc,
            )
        )

    @api.model
    def _file_read(self, fname):
        parts = parse_object_url(fname or "")
        if parts is None:
            data = super()._file_read(fname)
            if data:
                return data
            # b"": an empty file, or one a migration moved after our snapshot
            moved = self._object_storage_moved_file(fname)
            return data if moved is None else moved
        cache = object_cache(self._object_storage_settings())
        data = cache.get(fname)
        if data is not None:
            return data
        try:
            store, key = self._object_stores(parts[0]).locate(fname)
            data = store.get_bytes(key)
            cache.put(fname, data)
            return data
        except (StatelessOdooError, UserError) as exc:
            _logger.error("%s: cannot read %s: %s", self._object_storage_describe(), fname, exc)
            raise self._object_storage_read_error(exc) from exc

    @api.model
    def _object_storage_moved_file(self, fname):
        """The content of a filestore file a migration moved to the store after this
        transaction's snapshot was taken (the row it read still names the file, the
        file is gone): the object has the same checksum, so the same key. None when
        the file is there, or when no store holds it either."""
        match = _LOCAL_FNAME.fullmatch(fname or "")
        kind = self._object_storage_kind()
        if not match or not kind or os.path.isfile(self._full_path(fname)):
            return None
        store, key, _url = self._object_stores(kind).place(match.group(1))
        try:
            data = store.get_bytes(key)
        except ObjectNotFound:
            return None
        except StatelessOdooError as exc:
            raise self._object_storage_read_error(exc) from exc
        _logger.info("%s: read from the store, its file %s was moved there", fname, key)
        return data

    def _to_http_stream(self):
        self.ensure_one()
        # one query for all Odoo's stream reads: db_datas (where the suite keeps small
        # images) is not prefetched with the other columns, and each fetch of an
        # attachment runs ir.attachment's access rules again (a second query cost a
        # served image about 13 % of the worker's time)
        self.fetch(_STREAM_FIELDS)
        if not is_object_url(self.store_fname):
            return super()._to_http_stream()
        from ..http_stream import ObjectStream

        return ObjectStream.from_object_attachment(self)

    # -- delete -------------------------------------------------------------------------

    @api.model
    def _file_delete(self, fname):
        if not is_object_url(fname):
            return super()._file_delete(fname)
        # never inside the transaction: a candidate, collected once it committed
        collection.mark(self.env.cr, [fname])
        pending = self.env.cr.postcommit.data.setdefault("stateless_gc", set())
        if not pending:
            registry, dbname = self.env.registry, self.env.cr.dbname

            @self.env.cr.postcommit.add
            def collect_after_commit():
                try:
                    with registry.cursor() as cr:
                        env = api.Environment(cr, api.SUPERUSER_ID, {})
                        # never waits: what concurrent writers hold back is left to
                        # the autovacuum
                        env["ir.attachment"]._object_storage_collect(only=sorted(pending))
                except Exception:
                    _logger.warning(
                        "%s: objects of deleted attachments are left for the next garbage"
                        " collection",
                        dbname,
                        exc_info=True,
                    )

        pending.add(fname)
        return None

    @api.model
    def _object_storage_collect(self, only=None, limit=1000, attempts=1):
        """Delete the objects no attachment references any more (this database's, in
        this environment's container only). Runs in its own transaction: call it on a
        fresh cursor."""
        settings = self._object_storage_settings()
        if settings.disabled:
            return None
        kinds = {parse_object_url(u)[0] for u in only} if only else set(KINDS)
        results = []
        for kind in sorted(kinds):
            try:
                stores = attachment_stores(kind, self.env.cr.dbname, settings)
            except ConfigError:
                continue  # that kind is not configured here: nothing of it is deleted
            results.append(
                collection.collect(
                    self.env.cr,
                    stores,
                    only=only,
                    limit=limit,
                    attempts=attempts,
                    retention=settings.gc_retention,
                )
            )
            self.env.cr.commit()  # pylint: disable=invalid-commit  # one kind's batch done
        return results

    @api.autovacuum
    def _gc_object_storage(self):
        """Daily: objects of deleted attachments and of aborted transactions."""
        for _chunk in range(GC_CHUNKS):
            # chunks of GC_CHUNK objects, each in a short transaction of its own
            with self.env.registry.cursor() as cr:
                results = self.env(cr=cr)["ir.attachment"]._object_storage_collect(
                    limit=GC_CHUNK, attempts=GC_LOCK_ATTEMPTS
                )
            progress = any(r.deleted + r.foreign for r in results or ())
            full = any(r.deleted + r.foreign + r.busy >= GC_CHUNK for r in results or ())
            if not (progress and full):
                break
        self._object_storage_purge_dropped()

    @api.model
    def _object_storage_purge_dropped(self):
        """The namespaces of databases dropped longer than the retention ago, in this
        environment's containers (never a database that exists)."""
        settings = self._object_storage_settings()
        if settings.disabled:
            return []

        def exists(name):
            self.env.cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return bool(self.env.cr.fetchone())

        reports = []
        for kind in KINDS:
            try:
                stores = attachment_stores(kind, self.env.cr.dbname, settings)
                reports.append(lifecycle.purge_dropped(stores, settings.gc_retention, exists))
            except ConfigError:
                continue  # that kind is not configured here
            except StatelessOdooError as exc:
                _logger.warning("dropped databases' objects in %s: %s", kind, exc)
        return reports

    # -- migrate ------------------------------------------------------------------------

    @api.model
    def _object_storage_migration(self, *, files_only=False):
        """The migration that moves every attachment where the configuration wants it."""
        settings = self._object_storage_settings()
        if settings.disabled:
            raise UserError(
                self.env._("DISABLE_ATTACHMENT_STORAGE is set: attachments are not moved.")
            )
        kind = self._object_storage_kind()
        target = "store" if kind else self._storage()
        if target not in ("store", "db", "file"):
            raise UserError(
                self.env._(
                    "ir_attachment.location is %(location)r, which no installed addon"
                    " provides (attachment_s3: s3, attachment_swift: swift).",
                    location=target,
                )
            )
        stores = self._object_stores(kind) if kind else None
        # objects are read (and, once moved, collected) through every configured kind
        read_stores = []
        for other in KINDS:
            try:
                read_stores.append(attachment_stores(other, self.env.cr.dbname, settings))
            except ConfigError:
                continue
        return Migration(
            self.env.registry.cursor,
            target=target,
            stores=stores,
            filestore=config.filestore(self.env.cr.dbname),
            rule=self._keep_in_database_rule(),
            batch_size=settings.migration_batch,
            threads=settings.migration_threads,
            files_only=files_only,
            read_stores=read_stores,
            gc_retention=settings.gc_retention,
        )

    @api.model
    def force_storage(self):
        """Move every attachment where the storage wants it (admins only)."""
        if not self.env.is_admin():
            raise AccessError(self.env._("Only administrators can execute this action."))
        location = self._storage()
        if location not in self._object_storage_kinds() and not self._has_objects():
            return super().force_storage()
        migration = self._object_storage_migration()
        self.env.flush_all()
        # the migration's own transactions must see every row
        self.env.cr.commit()  # pylint: disable=invalid-commit
        try:
            report = migration.run()
        except MigrationRunning as exc:
            raise UserError(str(exc)) from exc
        self.env.invalidate_all()
        if not report.ok:
            raise UserError(
                self.env._(
                    "%(count)s attachments could not be moved (see the server log): %(ids)s",
                    count=sum(len(ids) for ids, _s, _r in report.skipped),
                    ids=", ".join(str(i) for ids, _s, _r in report.skipped for i in ids),
                )
            )
        return True

    @api.model
    def _has_objects(self):
        query = f"SELECT 1 FROM ir_attachment WHERE {OBJECT_FNAME_SQL} LIMIT 1"  # noqa: S608
        self.env.cr.execute(query)  # pylint: disable=sql-injection  # a module constant
        return bool(self.env.cr.fetchone())

    # -- after an install or upgrade ------------------------------------------------------

    def _register_hook(self):
        super()._register_hook()
        if not self._object_storage_kind() or self._object_storage_settings().disabled:
            return
        # load_modules calls the hooks at the end of loading with a local
        # update_module, truthy after an install or upgrade: modules loaded before this
        # one may have written files to the local filestore, which this process is
        # about to forget. Nothing else tells a hook that modules were just updated.
        if not find_update_module():
            return
        self.env.flush_all()
        # pylint: disable-next=invalid-commit  # the loading's rows, before the migration
        self.env.cr.commit()
        try:
            report = self._object_storage_migration(files_only=True).run()
        except MigrationRunning:
            _logger.info(
                "local files written by the upgrade are left to the migration already running"
            )
            return
        except (StatelessOdooError, UserError) as exc:
            _logger.error(
                "local files written by the upgrade were not moved to the object store: %s;"
                " run `odoo attachment_storage_migrate -d %s` once the store answers",
                exc,
                self.env.cr.dbname,
            )
            if config.get("stop_after_init"):
                # an upgrade job (-u ... --stop-after-init): its files are on a disk
                # about to go, so the job fails and the deployment sees it
                raise
            return
        if report.moved:
            _logger.info(
                "%d attachments written to the local filestore during loading moved to"
                " the object store",
                report.moved,
            )

    def init(self):
        res = super().init()
        collection.ensure_table(self.env.cr)
        return res
