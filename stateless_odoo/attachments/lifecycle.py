"""A database's objects across its life: a copy gets its own objects, a dropped or
renamed database's namespace goes after the retention.

- :func:`adopt`: a database that names objects in another database's namespace of its
  own container (a duplicate, a rename, a dump restored under another name) gets copies
  of them in its namespace, made inside the store, and its rows name the copies: the
  other database's collection can never take them away.
- :func:`schedule_drop` / :func:`purge_dropped`: a dropped database's namespace is
  recorded in the container (a small marker object, since the database is gone) and
  deleted once the retention has passed, unless a database of that name exists again
  (then only the marker goes).
"""

import concurrent.futures
import datetime
import json
import logging
import re
from dataclasses import dataclass, field

from ..errors import ObjectNotFound
from . import collection
from .stores import namespace

_logger = logging.getLogger(__name__)

#: where drop markers live, after the key prefix: Odoo database names start with a
#: letter or a digit, so this never is a database's namespace
MARKERS = "_stateless/dropped/"
ADOPT_BATCH = 500


@dataclass
class AdoptReport:
    copied: int = 0  # objects copied into this database's namespace
    rows: int = 0  # rows that name the copies now
    missing: list = field(default_factory=list)  # object URLs the store does not have


def _foreign_key(stores):
    """A regexp of the keys of another database's namespace in ``stores``' container."""
    return re.compile(
        re.escape(stores.key_prefix) + r"(?P<db>[A-Za-z0-9_.-]+)/[0-9a-f]{2}/(?P<sha1>[0-9a-f]{40})"
    )


def adopt(cursor_factory, stores, *, threads=8):
    """Copy every object this database names in another database's namespace of its
    own container into its namespace, and rewrite its rows (see the module's
    docstring). Idempotent: run again after a failure, it does what is left. The copies
    are recorded as collection candidates before they are made, as uploads are."""
    report = AdoptReport()
    stores.ready_for_writes()
    foreign = _foreign_key(stores)
    mine = stores.key_prefix + namespace(stores.db_name)
    with cursor_factory() as cr:
        collection.ensure_table(cr)
        cr.execute(
            "SELECT DISTINCT store_fname FROM ir_attachment WHERE store_fname LIKE %s",
            (f"{stores.kind}://{stores.container}/%",),
        )
        urls = sorted(url for (url,) in cr.fetchall())
    todo = []
    for url in urls:
        _store, key = stores.locate(url)
        match = foreign.fullmatch(key)
        if match and not key.startswith(mine):
            todo.append((url, key, stores.place(match["sha1"])))
    with concurrent.futures.ThreadPoolExecutor(threads, "stateless-adopt") as pool:
        for start in range(0, len(todo), ADOPT_BATCH):
            batch = todo[start : start + ADOPT_BATCH]
            with cursor_factory() as side:
                collection.record_writes(side, sorted({place.store_fname for *_, place in batch}))
            copied = dict(zip(batch, pool.map(_copy, batch), strict=True))
            with cursor_factory() as cr:
                for (url, _key, place), done in copied.items():
                    if done is None:
                        report.missing.append(url)
                        continue
                    report.copied += done
                    cr.execute(
                        "UPDATE ir_attachment SET store_fname = %s WHERE store_fname = %s",
                        (place.store_fname, url),
                    )
                    report.rows += cr.rowcount
                cr.commit()
    for url in report.missing:
        _logger.error(
            "%s: %s is missing from the store: its rows keep naming it", stores.db_name, url
        )
    return report


def _copy(item):
    """Copy one object to its place (content-addressed: copying over an earlier copy
    changes nothing, and costs no more than asking first); 1, or None when the source
    is missing."""
    _url, key, place = item
    try:
        place.store.copy(key, place.key)
    except ObjectNotFound:
        return None
    return 1


def _marker_key(stores, db_name):
    return f"{stores.key_prefix}{MARKERS}{db_name}"


def schedule_drop(stores, db_name, *, now=None):
    """Record in ``stores``' container that ``db_name`` was dropped: its namespace goes
    after the retention (:func:`purge_dropped`)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    marker = {"database": db_name, "dropped_at": now.isoformat(timespec="seconds")}
    stores.write_store.put(
        _marker_key(stores, db_name), json.dumps(marker).encode(), content_type="application/json"
    )
    _logger.info(
        "%s dropped: its objects in %s go after the retention", db_name, stores.write_store.name
    )


@dataclass
class PurgeReport:
    databases: list = field(default_factory=list)  # namespaces deleted
    objects: int = 0
    waiting: list = field(default_factory=list)  # (database, due) within the retention
    cancelled: list = field(default_factory=list)  # databases that exist again


def purge_dropped(stores, retention, database_exists, *, now=None):
    """Delete the namespaces of the databases dropped more than ``retention`` seconds
    ago in ``stores``' container; ``database_exists(name)`` answers whether a database
    of that name exists (then nothing of it is deleted and its marker goes)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    report = PurgeReport()
    store = stores.write_store
    for info in list(store.list(f"{stores.key_prefix}{MARKERS}")):
        try:
            marker = json.loads(store.get_bytes(info.key))
            db_name = marker["database"]
            dropped_at = datetime.datetime.fromisoformat(marker["dropped_at"])
        except (ObjectNotFound, ValueError, KeyError, TypeError) as exc:
            _logger.warning(
                "%s: unreadable drop marker %s left alone: %s", store.name, info.key, exc
            )
            continue
        if info.key != _marker_key(stores, db_name):
            _logger.warning(
                "%s: drop marker %s names %r: left alone", store.name, info.key, db_name
            )
            continue
        if database_exists(db_name):
            store.delete(info.key)
            report.cancelled.append(db_name)
            continue
        due = dropped_at + datetime.timedelta(seconds=retention)
        if now < due:
            report.waiting.append((db_name, due))
            continue
        keys = [item.key for item in store.list(stores.key_prefix + namespace(db_name))]
        store.delete_many(keys)
        store.delete(info.key)
        report.objects += len(keys)
        report.databases.append(db_name)
        _logger.info(
            "%s: %d objects of %s (dropped %s) deleted", store.name, len(keys), db_name, dropped_at
        )
    return report
