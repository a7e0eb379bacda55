"""Moving attachment content between the filestore, the database and an object store.

One :class:`Migration` moves every attachment that is not where the current storage
wants it: to the object store (except what :class:`~.rule.KeepInDatabase`
keeps in the database, which comes back there; objects of the other store kind move
too, read through that kind's variables, and are collected once moved), or, for a team
leaving the platform, back to the database or the local filestore. It is safe to kill
at any moment and to run again:

- one migration at a time per database, across all processes: a session-level
  PostgreSQL advisory lock; a second one raises :class:`MigrationRunning` at once;
- batches of rows (by id), one transaction each; content is moved by a pool of threads;
  a row is updated only if it still holds the content it held when read;
- every content's SHA-1 is checked against the row's checksum before it is written
  anywhere, and every upload's size against the source;
- a local file is removed only after its batch committed and when no row references it
  any more (under the SHARE lock on ``ir_attachment``); an object only through the
  garbage collection (:mod:`.collection`);
- progress (count, MB, rate, ETA) is logged after each batch.

The cursors are DB-API cursors that also ``commit``/``rollback``/``close`` (Odoo's
``Cursor`` or :class:`stateless_odoo.testing.pg.PgCursor`), made by ``cursor_factory()``.
"""

import concurrent.futures
import contextlib
import hashlib
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field

from ..errors import StatelessOdooError
from ..observability import events
from . import collection
from .rule import KeepInDatabase
from .stores import OBJECT_FNAME_SQL, is_object_url

_logger = logging.getLogger(__name__)

TARGETS = ("store", "db", "file")

#: content up to this size is read whole (one read, hashed, sent as bytes); larger
#: content is streamed from disk or from the store and never held whole in memory
WHOLE_READ_LIMIT = 4 * 1024 * 1024
#: tries of the SHARE lock (0.2 s apart, never queued) before local files are removed
REMOVE_LOCK_ATTEMPTS = 50
#: database content fetched per query, in bytes (bounds memory)
DB_FETCH_BYTES = 64 * 1024 * 1024


class MigrationRunning(StatelessOdooError):
    """Another migration of this database holds the lock."""


class _Unreadable(Exception):
    """A content this process cannot read: its row is skipped and named."""


@dataclass
class MigrationReport:
    target: str
    moved: int = 0  # attachment rows updated
    bytes: int = 0  # bytes moved (each distinct content once)
    contents: int = 0  # distinct contents moved
    files_removed: int = 0
    batches: int = 0
    seconds: float = 0.0
    skipped: list = field(default_factory=list)  # (ids, source, reason)

    @property
    def ok(self):
        return not self.skipped

    @property
    def skipped_rows(self):
        return sum(len(ids) for ids, _source, _reason in self.skipped)


@dataclass
class _Group:
    """Rows sharing one source (same file, same object, or one database row)."""

    ids: list
    source: str | None  # store_fname, or None for content in the database
    checksum: str | None
    mimetype: str | None
    size: int
    dest: str
    new_fname: str | None = None  # object URL or filestore path
    data: bytes | None = None  # database content (source db, or dest db)
    error: str | None = None


class _Hashing:
    """A file object that computes the SHA-1 of what is read through it."""

    def __init__(self, stream):
        self._stream = stream
        self.sha1 = hashlib.sha1()  # noqa: S324 - Odoo's attachment checksum
        self.size = 0

    def read(self, size=-1):
        chunk = self._stream.read(size)
        self.sha1.update(chunk)
        self.size += len(chunk)
        return chunk


class Migration:
    def __init__(
        self,
        cursor_factory,
        *,
        target,
        stores=None,
        filestore=None,
        rule=None,
        batch_size=500,
        threads=8,
        files_only=False,
        read_stores=(),
        logger=None,
        progress=None,
        gc_retention=0.0,
    ):
        """``target``: ``store``, ``db`` or ``file``. ``stores``: the database's
        :class:`~.stores.AttachmentStores` (needed to write to a store and to read
        objects). ``read_stores``: the stores of other kinds, to read (and collect) their
        objects. ``filestore``: the database's filestore directory. ``files_only``:
        move only rows whose content is a local file (the after-upgrade pass).
        ``progress(seen, total, report)``: called after each batch (a progress bar).
        ``gc_retention``: the collection's retention, for the objects moved out of a
        store (see :func:`.collection.collect`)."""
        if target not in TARGETS:
            raise ValueError(f"target {target!r} is not one of {TARGETS}")
        if target == "store" and stores is None:
            raise ValueError("a migration to the store needs the stores")
        if target == "file" and not filestore:
            raise ValueError("a migration to the filestore needs its directory")
        self.cursor_factory = cursor_factory
        self.gc_retention = gc_retention
        self.target = target
        self.stores = stores
        self.stores_by_kind = {s.kind: s for s in read_stores}
        if stores is not None:
            self.stores_by_kind[stores.kind] = stores
        self.filestore = filestore
        self.rule = rule or KeepInDatabase()
        self.batch_size = batch_size
        self.threads = threads
        self.files_only = files_only
        self.log = logger or _logger
        self.progress = progress

    # -- selection ------------------------------------------------------------------

    def _where(self):
        if self.target == "store":
            if self.files_only:
                return f"store_fname IS NOT NULL AND NOT {OBJECT_FNAME_SQL}"
            return "(store_fname IS NOT NULL OR db_datas IS NOT NULL)"
        if self.target == "db":
            return "store_fname IS NOT NULL"
        return f"({OBJECT_FNAME_SQL} OR (store_fname IS NULL AND db_datas IS NOT NULL))"

    def _dest(self, store_fname, mimetype, size):
        """Where content belongs, or None when it is there already."""
        if self.target == "store":
            dest = "db" if self.rule.keeps(mimetype, size or 0) else "store"
        else:
            dest = self.target
        here = "db" if not store_fname else "store" if is_object_url(store_fname) else "file"
        if dest == here == "store":
            # an object of the other kind (a switch from Swift to S3, or back) moves to
            # the configured store; one of this kind stays, whatever its container (a
            # copy of another environment reads its objects where they are)
            return None if store_fname.startswith(f"{self.stores.kind}://") else dest
        if dest == here:
            return None
        return dest

    # -- the run ----------------------------------------------------------------------

    def run(self):
        lock_cr = self.cursor_factory()
        try:
            lock_cr.execute(
                "SELECT pg_try_advisory_lock(%s, %s)",
                (collection.LOCK_NAMESPACE, collection.MIGRATION_LOCK),
            )
            if not lock_cr.fetchone()[0]:
                raise MigrationRunning(
                    "another attachment migration of this database is running"
                    " (it holds the PostgreSQL advisory lock); nothing was done"
                )
            lock_cr.commit()  # the session-level lock outlives the transaction
            events.emit("migration_run", running=True)
            try:
                return self._run()
            finally:
                events.emit("migration_run", running=False)
                lock_cr.execute(
                    "SELECT pg_advisory_unlock(%s, %s)",
                    (collection.LOCK_NAMESPACE, collection.MIGRATION_LOCK),
                )
                lock_cr.commit()
        finally:
            lock_cr.close()

    def _run(self):
        report = MigrationReport(self.target)
        started = time.monotonic()
        if self.target == "store":
            self.stores.ready_for_writes()
        with self._cursor() as cr:
            collection.ensure_table(cr)
            cr.execute(
                f"SELECT count(*), coalesce(sum(file_size), 0) FROM ir_attachment"
                f" WHERE type = 'binary' AND {self._where()}"
            )
            total, total_bytes = cr.fetchone()
        self.log.info(
            "attachment migration to %s: %d attachments to look at (%.1f MB),"
            " batches of %d, %d threads",
            self.target,
            total,
            total_bytes / 1e6,
            self.batch_size,
            self.threads,
        )
        last_id = 0
        seen = 0
        with concurrent.futures.ThreadPoolExecutor(self.threads) as pool:
            while True:
                before = (report.moved, report.bytes, report.skipped_rows)
                count, last_id = self._batch_with_retries(pool, last_id, report)
                if not count:
                    break
                events.emit(
                    "migration",
                    target=self.target,
                    moved=report.moved - before[0],
                    bytes=report.bytes - before[1],
                    skipped=report.skipped_rows - before[2],
                )
                seen += count
                report.batches += 1
                elapsed = time.monotonic() - started
                rate = seen / elapsed if elapsed else 0.0
                eta = (total - seen) / rate if rate else 0.0
                self.log.info(
                    "attachment migration to %s: %d/%d looked at, %d moved (%.1f MB),"
                    " %.1f attachments/s, %.2f MB/s, ETA %.0f s",
                    self.target,
                    seen,
                    total,
                    report.moved,
                    report.bytes / 1e6,
                    rate,
                    report.bytes / 1e6 / elapsed if elapsed else 0.0,
                    max(eta, 0.0),
                )
                if self.progress is not None:
                    try:
                        self.progress(seen, total, report)
                    except Exception as exc:  # noqa: BLE001 - a display never stops a run
                        self.log.warning("progress display failed, stopped: %s", exc)
                        self.progress = None
        report.seconds = time.monotonic() - started
        level = logging.WARNING if report.skipped else logging.INFO
        self.log.log(
            level,
            "attachment migration to %s done: %d moved (%d contents, %.1f MB), %d local"
            " files removed, %d skipped, in %.1f s",
            self.target,
            report.moved,
            report.contents,
            report.bytes / 1e6,
            report.files_removed,
            sum(len(ids) for ids, _s, _r in report.skipped),
            report.seconds,
        )
        return report

    def _cursor(self):
        return _Transaction(self.cursor_factory)

    def _batch_with_retries(self, pool, last_id, report, attempts=3):
        for attempt in range(1, attempts + 1):
            counts = (report.moved, report.bytes, report.contents, len(report.skipped))
            try:
                return self._batch(pool, last_id, report)
            except Exception as exc:
                # a row changed under the batch (REPEATABLE READ): read it again
                if getattr(exc, "pgcode", None) != "40001" or attempt == attempts:
                    raise
                # the rolled back attempt counts for nothing
                report.moved, report.bytes, report.contents = counts[:3]
                del report.skipped[counts[3] :]
                self.log.info("attachment migration: batch after id %d retried", last_id)
        raise AssertionError("unreachable")

    def _batch(self, pool, last_id, report):
        to_remove = []
        to_collect = []
        with self._cursor() as cr:
            # files written below are not referenced until this transaction commits:
            # Odoo's filestore collection (SHARE lock) must wait for it
            cr.execute("LOCK TABLE ir_attachment IN ROW EXCLUSIVE MODE")
            cr.execute(
                f"""SELECT id, store_fname, checksum, mimetype, coalesce(file_size, 0)
                    FROM ir_attachment
                    WHERE type = 'binary' AND id > %s AND {self._where()}
                    ORDER BY id LIMIT %s""",
                (last_id, self.batch_size),
            )
            rows = cr.fetchall()
            if not rows:
                return 0, last_id
            groups = self._plan(rows)
            self._fetch_db_contents(cr, groups)
            self._prepare_objects(cr, groups)
            for group, error in zip(groups, pool.map(self._move_content, groups), strict=True):
                group.error = error
            for group in groups:
                if group.error:
                    report.skipped.append((group.ids, group.source, group.error))
                    self.log.error(
                        "attachment migration: ir.attachment %s (%s) not moved: %s",
                        ",".join(map(str, group.ids)),
                        group.source or "in the database",
                        group.error,
                    )
                    continue
                self._update_rows(cr, group)
                report.moved += cr.rowcount
                report.contents += 1
                report.bytes += group.size
                if group.source and is_object_url(group.source):
                    to_collect.append(group.source)
                elif group.source:
                    to_remove.append(group.source)
            collection.mark(cr, to_collect)
        # the batch is committed: local files and objects no row references can go
        if to_remove:
            report.files_removed += self._remove_files(to_remove)
        for stores in self.stores_by_kind.values():
            mine = [url for url in to_collect if url.startswith(f"{stores.kind}://")]
            if mine:
                with self._cursor() as cr:
                    collection.collect(
                        cr,
                        stores,
                        only=mine,
                        attempts=REMOVE_LOCK_ATTEMPTS,
                        retention=self.gc_retention,
                    )
        return len(rows), rows[-1][0]

    def _plan(self, rows):
        groups = {}
        for att_id, fname, checksum, mimetype, size in rows:
            dest = self._dest(fname, mimetype, size)
            if dest is None:
                continue
            # rows with the same file or object share one move; database rows do not
            group_key = (fname, dest) if fname else (None, att_id)
            group = groups.get(group_key)
            if group is None:
                groups[group_key] = _Group([att_id], fname, checksum, mimetype, size, dest)
            else:
                group.ids.append(att_id)
        return list(groups.values())

    def _fetch_db_contents(self, cr, groups):
        pending = [g for g in groups if g.source is None]
        while pending:
            chunk, budget = [], DB_FETCH_BYTES
            while pending and (not chunk or budget - pending[0].size >= 0):
                budget -= pending[0].size
                chunk.append(pending.pop(0))
            by_id = {g.ids[0]: g for g in chunk}
            cr.execute("SELECT id, db_datas FROM ir_attachment WHERE id = ANY(%s)", (list(by_id),))
            for att_id, data in cr.fetchall():
                by_id[att_id].data = bytes(data) if data is not None else b""

    def _prepare_objects(self, cr, groups):
        """Name each upload's object, lock it until commit and record it as a candidate
        (committed at once: a crash after the upload leaves no unknown object)."""
        uploads = []
        for group in groups:
            if group.dest != "store":
                continue
            if not group.checksum:
                group.checksum = self._sha1_of(group)
            if group.checksum:
                group.new_fname = self.stores.place(group.checksum).store_fname
                uploads.append(group.new_fname)
        if uploads:
            # lock, then record (as _file_write does): a collection running between
            # the two would otherwise drop the record of an object uploaded next
            collection.lock_objects(cr, uploads)
            with self._cursor() as side:
                collection.record_writes(side, uploads)

    def _sha1_of(self, group):
        try:
            with self._open_source(group) as stream:
                hashing = _Hashing(stream)
                while hashing.read(1024 * 1024):
                    pass
            return hashing.sha1.hexdigest()
        except (OSError, ValueError, StatelessOdooError, _Unreadable) as exc:  # see the move
            self.log.debug("cannot hash %s: %s", group.source, exc)
            return None

    # -- moving one content (in the pool's threads) --------------------------------

    def _open_source(self, group):
        if group.source is None:
            import io

            return io.BytesIO(group.data or b"")
        if is_object_url(group.source):
            kind = group.source.partition("://")[0]
            if kind not in self.stores_by_kind:
                raise _Unreadable(f"no {kind} store is configured here to read its object")
            store, key = self.stores_by_kind[kind].locate(group.source)
            return store.open(key)
        return open(self._local_path(group.source), "rb")

    def _local_path(self, fname):
        if not self.filestore:
            raise FileNotFoundError(f"{fname}: no filestore directory is configured")
        root = os.path.realpath(self.filestore)
        path = os.path.realpath(os.path.join(root, fname))
        if not path.startswith(root + os.sep):
            raise ValueError(f"{fname!r} is outside the filestore")
        return path

    def _move_content(self, group):
        """Move one content; return None, or the reason it was not moved."""
        try:
            if group.dest == "store" and not group.new_fname:
                return "its content could not be read to compute its checksum"
            if group.size <= WHOLE_READ_LIMIT or group.dest == "db":
                with self._open_source(group) as stream:
                    data = stream.read()
                error = self._check(group, hashlib.sha1(data).hexdigest(), len(data))  # noqa: S324
                if error:
                    return error
                if group.dest == "db":
                    group.data = data
                elif group.dest == "store":
                    self._put(group, data, len(data))
                else:
                    self._write_file(group, [data])
                return None
            # large content: checked while read, never whole in memory
            if group.dest == "store":
                with self._open_source(group) as stream:
                    hashing = _Hashing(stream)
                    while hashing.read(1024 * 1024):
                        pass
                error = self._check(group, hashing.sha1.hexdigest(), hashing.size)
                if error:
                    return error
                with self._open_source(group) as stream:
                    self._put(group, stream, hashing.size)
                return None
            with self._open_source(group) as stream:
                return self._write_file(group, iter(lambda: stream.read(1024 * 1024), b""))
        except _Unreadable as exc:
            return str(exc)
        except FileNotFoundError as exc:
            return f"its file is missing from the filestore ({exc.filename or exc})"
        except StatelessOdooError as exc:
            if type(exc).__name__ == "ObjectNotFound":
                return f"its object is missing: {exc}"
            raise
        except OSError as exc:
            return f"its file cannot be read: {exc}"
        except ValueError as exc:  # a store_fname outside the filestore
            return str(exc)

    def _check(self, group, sha1, size):
        if group.checksum and sha1 != group.checksum:
            return f"its content's SHA-1 {sha1} is not its checksum {group.checksum}"
        group.checksum = sha1
        group.size = size
        return None

    def _put(self, group, data, size):
        store, key, _fname = self.stores.place(group.checksum)
        info = store.put(key, data, content_type=group.mimetype or None, size=size)
        if info.size != size:
            raise StatelessOdooError(
                f"{group.new_fname}: the store holds {info.size} bytes, {size} were sent"
            )

    def _write_file(self, group, chunks):
        fname = f"{group.checksum[:2]}/{group.checksum}" if group.checksum else None
        directory = os.path.join(self.filestore, fname[:2]) if fname else self.filestore
        os.makedirs(directory, exist_ok=True)
        sha1 = hashlib.sha1()  # noqa: S324
        size = 0
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".migrating-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    sha1.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            error = self._check(group, sha1.hexdigest(), size)
            if error:
                return error
            fname = f"{group.checksum[:2]}/{group.checksum}"
            os.makedirs(os.path.join(self.filestore, fname[:2]), exist_ok=True)
            os.replace(tmp, os.path.join(self.filestore, fname))
            tmp = None
            group.new_fname = fname
            return None
        finally:
            if tmp:
                os.unlink(tmp)

    # -- writing the rows ---------------------------------------------------------------

    def _update_rows(self, cr, group):
        guard = "store_fname = %s" if group.source else "store_fname IS NULL"
        guard_params = [group.source] if group.source else []
        if group.dest == "db":
            cr.execute(
                f"UPDATE ir_attachment SET db_datas = %s, store_fname = NULL"
                f" WHERE id = ANY(%s) AND {guard}",
                [group.data, group.ids, *guard_params],
            )
        else:
            cr.execute(
                f"UPDATE ir_attachment SET store_fname = %s, db_datas = NULL"
                f" WHERE id = ANY(%s) AND {guard}",
                [group.new_fname, group.ids, *guard_params],
            )
        group.data = None

    def _remove_files(self, fnames):
        """Remove local files no row references, once their batch is committed."""
        removed = 0
        with self._cursor() as cr:
            cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            if not collection.share_lock(cr, attempts=REMOVE_LOCK_ATTEMPTS):
                self.log.warning(
                    "attachment migration: %d local files kept (their rows moved): writers"
                    " held ir_attachment for %.0f s; they are unreferenced and can go",
                    len(set(fnames)),
                    REMOVE_LOCK_ATTEMPTS * 0.2,
                )
                return 0
            cr.execute(
                "SELECT DISTINCT store_fname FROM ir_attachment WHERE store_fname = ANY(%s)",
                (sorted(set(fnames)),),
            )
            referenced = {row[0] for row in cr.fetchall()}
            for fname in set(fnames) - referenced:
                try:
                    os.unlink(self._local_path(fname))
                    removed += 1
                except FileNotFoundError:
                    pass
                except (OSError, ValueError) as exc:
                    self.log.warning("attachment migration: cannot remove %s: %s", fname, exc)
                    continue
                # Odoo marks every file it writes for its filestore's garbage collection
                # (checklist/<fname>); with the file gone, the mark has nothing to collect
                with contextlib.suppress(OSError, ValueError):
                    os.unlink(self._local_path(os.path.join("checklist", fname)))
        return removed


class _Transaction:
    """``with``: a new cursor, committed on success, rolled back on error, closed."""

    def __init__(self, factory):
        self._factory = factory
        self.cr = None

    def __enter__(self):
        self.cr = self._factory()
        return self.cr

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.cr.commit()
            else:
                self.cr.rollback()
        finally:
            self.cr.close()
        return False


class ProgressBar:
    """A one-line progress bar on a terminal, for :class:`~.migration.Migration`'s
    ``progress``; prints nothing when ``stream`` is not a terminal (the migration logs
    its progress after each batch anyway)."""

    def __init__(self, stream=None, width=30, clock=time.monotonic):
        self.stream = stream or sys.stderr
        self.width = width
        self.clock = clock
        self.started = clock()
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.drawn = False

    def line(self, seen, total, moved, size):
        fraction = min(seen / total, 1.0) if total else 1.0
        filled = round(fraction * self.width)
        elapsed = self.clock() - self.started
        eta = (total - seen) * elapsed / seen if seen and total > seen else 0.0
        return (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction:4.0%}"
            f" {seen:,}/{total:,} looked at, {moved:,} moved, {size / 1e6:.1f} MB,"
            f" ETA {eta:.0f} s"
        )

    def __call__(self, seen, total, report):
        if not self.enabled:
            return
        self.stream.write("\r" + self.line(seen, total, report.moved, report.bytes))
        self.stream.flush()
        self.drawn = True

    def close(self):
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def find_update_module(frame=None, *, function="load_modules", variable="update_module"):
    """The value of ``update_module`` in the nearest ``load_modules`` frame up the stack.

    Odoo's ``load_modules`` calls every model's ``_register_hook`` at the end of
    loading with a local ``update_module`` that is truthy after an install or upgrade.
    Nothing else tells a hook that modules were just installed, hence this look at the
    stack. It searches every frame up (another addon's ``_register_hook`` override may
    sit in between) and returns ``None`` when no ``load_modules`` frame is there (a
    registry built outside of module loading).
    """
    frame = sys._getframe(1) if frame is None else frame
    while frame is not None:
        code = frame.f_code
        if code.co_name == function and variable in frame.f_locals:
            return frame.f_locals[variable]
        frame = frame.f_back
    return None
