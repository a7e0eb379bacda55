"""Deferred deletion of attachment objects, with the list of candidates in PostgreSQL.

An object is never deleted inside the transaction that stops referencing it: the
transaction only records the object as a *candidate* (:func:`mark`), and
:func:`collect` deletes candidates later, in a transaction of its own, when no
``ir_attachment`` row references them any more. The protection is the one Odoo core uses
for its filestore, plus a lock per object:

- :func:`collect` decides in a short transaction that locks ``ir_attachment`` in SHARE
  mode, which waits for every transaction that has inserted, updated or deleted
  attachment rows: their rows are committed (and seen) before anything is decided;
- a writer takes a shared per-object advisory lock (:func:`lock_objects`) before it
  decides to upload or to reuse an object, and keeps it until it commits: collect skips
  an object so locked. Then the writer records the object (:func:`record_writes`), which
  clears its ``unnamed_at``;
- collect calls the store in a second transaction, which holds no lock on
  ``ir_attachment`` nor any advisory lock, only the candidates' rows of the objects it
  deletes (``FOR UPDATE``), taken again only while they are still unnamed and due: a
  writer that recorded one since the decision keeps it, and one that records it now
  waits for the deletion to be committed, then finds the object gone and uploads it.
  A writer that reuses an existing object is therefore never robbed between its check
  and its commit, and a slow store holds back no other writer.

Objects written by a transaction that then rolls back, or by a process killed before its
commit, are candidates too: writers record them first, in a transaction committed at
once (:func:`mark` on a separate cursor).

``s3://<container>/<key>`` and ``swift://<container>/<key>`` may name one object: a Swift
that answers the S3 API too (s3api, as OVH's) shows the same containers through both.
So an object is referenced, and locked, by its container and key whatever the scheme:
it is deleted only when no row names it through either API.

Cursors are DB-API cursors with ``execute``/``fetchall`` (Odoo's ``Cursor`` or
:class:`stateless_odoo.testing.pg.PgCursor`); transactions are the caller's.
"""

import logging
import time
from dataclasses import dataclass

from ..observability import events
from ..storage import KINDS
from .stores import is_object_url

_logger = logging.getLogger(__name__)

TABLE = "stateless_attachment_gc"

#: first key of the suite's advisory locks (pg_advisory_lock(int, int))
LOCK_NAMESPACE = 0x53544F44  # "STOD"
#: second key of the migration's lock
MIGRATION_LOCK = 1
#: first key of the per-object locks (the second is the object's slot, below)
OBJECT_LOCK_NAMESPACE = LOCK_NAMESPACE + 1
#: objects share this many lock slots (hashtext(<container>/<key>) & (SLOTS - 1)): a
#: transaction that writes any number of objects holds at most this many locks, where
#: one lock per object exhausted PostgreSQL's shared lock table ("out of shared
#: memory") from about 6,400 objects on a default server, for every session of it.
#: Two objects in one slot only make a collection leave one for later.
OBJECT_LOCK_SLOTS = 1024


def _slot_sql(expression):
    return f"(hashtext({expression}) & {OBJECT_LOCK_SLOTS - 1})"


def ensure_table(cr):
    """The candidates' table: ``create_date``, when the object was first recorded;
    ``unnamed_at``, when a collection first saw no row naming it (NULL: not seen yet,
    or named again since)."""
    cr.execute(
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            store_fname varchar PRIMARY KEY,
            create_date timestamp without time zone NOT NULL
                DEFAULT (now() at time zone 'UTC'),
            unnamed_at timestamp without time zone
        )"""
    )
    cr.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS unnamed_at timestamp")


def _same_object(url):
    """``<container>/<key>`` of an object URL: what names the object across APIs."""
    return url.partition("://")[2] or url


#: SQL: :func:`_same_object` of the candidate ``g``, and its URL under every scheme
_SAME_OBJECT_SQL = "substr(g.store_fname, strpos(g.store_fname, '://') + 3)"
_ALIASES_SQL = ", ".join(f"'{kind}://' || {_SAME_OBJECT_SQL}" for kind in KINDS)


def mark(cr, store_fnames, *, writing=False):
    """Record object URLs as candidates for deletion (local paths are ignored).

    ``writing``: a writer is about to name these objects (an upload, or the reuse of an
    object already there): a retention that started while no row named them starts
    again once they are unnamed. Run it on a cursor of its own at READ COMMITTED, where
    a concurrent writer of the same candidate waits instead of failing."""
    urls = sorted({f for f in store_fnames if is_object_url(f)})
    if urls:
        conflict = "DO UPDATE SET unnamed_at = NULL" if writing else "DO NOTHING"
        cr.execute(
            f"INSERT INTO {TABLE} (store_fname) SELECT unnest(%s::varchar[])"
            f" ON CONFLICT (store_fname) {conflict}",
            (urls,),
        )
    return urls


def record_writes(cr, store_fnames, *, lock_timeout=None, fresh=True):
    """Record the objects a writer is about to name (it uploads them or reuses them) as
    candidates, on a cursor of its own whose transaction has not started; the caller
    commits at once. So an object of a transaction that never commits is collected too.

    READ COMMITTED, where a concurrent writer or collection of the same candidate is
    waited for instead of failing the statement (as it would at REPEATABLE READ);
    ``lock_timeout`` (seconds) bounds that wait. ``fresh=False``: the cursor's
    transaction may have started (Odoo's test mode gives every cursor the test's own
    transaction), its isolation stays as it is."""
    if fresh:
        cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
    if lock_timeout:
        cr.execute("SELECT set_config('lock_timeout', %s, true)", (f"{lock_timeout * 1000:.0f}",))
    return mark(cr, store_fnames, writing=True)


def lock_objects(cr, store_fnames):
    """Take the shared per-object locks of a writer, until its transaction ends."""
    urls = sorted({_same_object(f) for f in store_fnames})
    if urls:
        cr.execute(
            f"SELECT pg_advisory_xact_lock_shared(%s, slot) FROM (SELECT DISTINCT"
            f" {_slot_sql('u')} AS slot FROM unnest(%s::varchar[]) AS u) AS slots ORDER BY slot",
            (OBJECT_LOCK_NAMESPACE, urls),
        )


@dataclass
class Pending:
    """The candidates of one database, for a status: ``unseen`` not yet looked at by a
    collection, ``waiting`` unnamed for less than the retention (the first of them due
    at ``next_due``, UTC), ``due`` deletable at the next collection."""

    total: int = 0
    unseen: int = 0
    waiting: int = 0
    due: int = 0
    next_due: object = None  # datetime


def pending(cr, retention):
    """The :class:`Pending` candidates, by the ``retention`` in seconds."""
    cr.execute("SELECT to_regclass(%s)", (TABLE,))
    if not cr.fetchone()[0]:
        return Pending()
    cr.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE unnamed_at IS NULL),
                count(*) FILTER (WHERE unnamed_at > now() at time zone 'UTC'
                                  - make_interval(secs => %s)),
                min(unnamed_at + make_interval(secs => %s)) FILTER (
                    WHERE unnamed_at > now() at time zone 'UTC' - make_interval(secs => %s))
            FROM {TABLE}""",
        (retention, retention, retention),
    )
    total, unseen, waiting, next_due = cr.fetchone()
    return Pending(total, unseen, waiting, total - unseen - waiting, next_due)


@dataclass
class CollectResult:
    deleted: int = 0
    kept: int = 0  # referenced again: candidate dropped, object kept
    busy: int = 0  # a writer holds it: left for a later collection
    foreign: int = 0  # not this database's objects: never deleted here
    lock_timeout: bool = False
    waiting: int = 0  # unnamed for less than the retention: deleted later


def share_lock(cr, *, attempts=1, pause=0.2):
    """Take the SHARE lock on ``ir_attachment`` without ever queueing for it.

    A SHARE request waiting in PostgreSQL's queue holds back every later writer of
    ``ir_attachment`` (their ROW EXCLUSIVE conflicts with it) for as long as it waits:
    a collection must never stall the users' uploads. So: ``NOWAIT``, tried
    ``attempts`` times ``pause`` seconds apart. Returns whether it is held; the
    transaction stays usable either way."""
    for attempt in range(attempts):
        cr.execute("SAVEPOINT stateless_share_lock")
        try:
            # not logged as a bad query by Odoo's cursor: a busy table is an answer
            cr.execute("LOCK TABLE ir_attachment IN SHARE MODE NOWAIT", None, log_exceptions=False)
        except Exception as exc:
            if getattr(exc, "pgcode", None) != "55P03":  # lock_not_available
                raise
            cr.execute("ROLLBACK TO SAVEPOINT stateless_share_lock")
            if attempt + 1 < attempts:
                time.sleep(pause)
            continue
        cr.execute("RELEASE SAVEPOINT stateless_share_lock")
        return True
    return False


def collect(cr, stores, *, only=None, limit=1000, attempts=1, retention=0.0):
    """Delete the candidates that no attachment references; commits, twice.

    ``cr`` must be a cursor whose transaction has not started (the isolation level is set
    here). ``stores`` is an :class:`~.stores.AttachmentStores`; when
    it is ``None`` or disabled, candidates still referenced are dropped and nothing else
    is touched. ``only`` limits
    the collection to these URLs (the candidates one transaction just made).
    Objects are deleted before the candidates' rows: a failure leaves them candidates.
    ``attempts``: how many times to try the SHARE lock (see :func:`share_lock`).

    ``retention`` (seconds): an object is deleted only once a collection saw no row
    naming it at least that long ago, so that a backup, a point-in-time recovery or a
    copy of the database taken meanwhile still finds it; a collection that sees it
    unnamed for the first time records when (``unnamed_at``). 0: at once.

    The decision (:func:`decide`) is one short transaction; the store is called in
    another (:func:`delete`), as the module's documentation explains.
    """
    scope = "after_delete" if only else "full"
    try:
        result, chosen = decide(
            cr, stores, only=only, limit=limit, attempts=attempts, retention=retention
        )
        cr.commit()
        if chosen:
            delete(cr, stores, chosen, result, retention=retention)
            cr.commit()
    except Exception:
        events.emit("collection", scope=scope, outcome="error", deleted=0, kept=0, busy=0)
        raise
    events.emit(
        "collection",
        scope=scope,
        outcome="lock_timeout" if result.lock_timeout else "ok",
        deleted=result.deleted,
        kept=result.kept,
        busy=result.busy,
    )
    if result.deleted or result.foreign:
        _logger.info(
            "attachment objects: %d deleted, %d kept (referenced), %d busy, %d foreign"
            " (left untouched), %d within the retention",
            result.deleted,
            result.kept,
            result.busy,
            result.foreign,
            result.waiting,
        )
    return result


_DUE_SQL = "g.unnamed_at <= now() at time zone 'UTC' - make_interval(secs => %s)"


def decide(cr, stores, *, only=None, limit=1000, attempts=1, retention=0.0):
    """The first transaction of :func:`collect` (the caller commits): under the SHARE
    lock, drop the candidates named again, start the retention of the others, and
    choose up to ``limit`` due ones that no writer holds. Returns the
    :class:`CollectResult` so far and the chosen URLs."""
    result = CollectResult()
    cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
    if not share_lock(cr, attempts=attempts):
        # writers hold ir_attachment: the candidates wait for the next collection
        result.lock_timeout = True
        return result, []
    # candidates referenced again (through either API) are dropped at once
    only_sql, params = ("AND g.store_fname = ANY(%s)", [list(only)]) if only else ("", [])
    cr.execute(
        f"""DELETE FROM {TABLE} g WHERE EXISTS
            (SELECT 1 FROM ir_attachment a WHERE a.store_fname IN ({_ALIASES_SQL}))
            {only_sql}""",
        params,
    )
    result.kept = cr.rowcount
    # every candidate left is unnamed now: its retention starts if it has not yet
    cr.execute(
        f"UPDATE {TABLE} g SET unnamed_at = now() at time zone 'UTC'"
        f" WHERE g.unnamed_at IS NULL {only_sql}",
        params,
    )
    if stores is None or stores.disabled:
        return result, []
    # only the objects of this kind of store: the others wait for their own; the
    # advisory lock (released at this transaction's end) only tells whether a writer
    # is between its decision and its commit
    kind_sql = f"g.store_fname LIKE %s {only_sql}"
    cr.execute(
        f"""SELECT g.store_fname, pg_try_advisory_xact_lock(%s, {_slot_sql(_SAME_OBJECT_SQL)})
            FROM {TABLE} g WHERE {_DUE_SQL} AND {kind_sql}
            ORDER BY g.unnamed_at, g.store_fname LIMIT %s""",
        [OBJECT_LOCK_NAMESPACE, retention, f"{stores.kind}://%", *params, limit],
    )
    rows = cr.fetchall()
    if retention:
        cr.execute(
            f"SELECT count(*) FROM {TABLE} g WHERE NOT {_DUE_SQL} AND {kind_sql}",
            [retention, f"{stores.kind}://%", *params],
        )
        result.waiting = cr.fetchone()[0]
    free = [fname for fname, locked in rows if locked]
    result.busy = len(rows) - len(free)
    return result, free


def delete(cr, stores, chosen, result, *, retention=0.0):
    """The second transaction of :func:`collect` (the caller commits): lock the rows of
    the ``chosen`` candidates that are still unnamed and due (a writer that recorded
    one since clears its ``unnamed_at``) and that no row names, delete their objects,
    then the rows. Counts into ``result``."""
    cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
    cr.execute(
        f"""SELECT g.store_fname FROM {TABLE} g
            WHERE g.store_fname = ANY(%s) AND {_DUE_SQL}
              AND NOT EXISTS (SELECT 1 FROM ir_attachment a
                              WHERE a.store_fname IN ({_ALIASES_SQL}))
            ORDER BY g.store_fname FOR UPDATE OF g SKIP LOCKED""",
        (list(chosen), retention),
    )
    confirmed = [fname for (fname,) in cr.fetchall()]
    result.busy += len(chosen) - len(confirmed)
    by_store = {}
    forget = []
    for fname in confirmed:
        if not stores.owns(fname):
            result.foreign += 1
            forget.append(fname)
            continue
        store, key = stores.locate(fname)
        by_store.setdefault(store, []).append((fname, key))
    for store, items in by_store.items():
        store.delete_many([key for _fname, key in items])
        forget.extend(fname for fname, _key in items)
        result.deleted += len(items)
    cr.execute(f"DELETE FROM {TABLE} WHERE store_fname = ANY(%s)", (forget,))
    return result
