"""What the ops commands read and show: a database's platform settings, where its
attachments are.

Plain SQL over a DB-API cursor (Odoo's or :class:`stateless_odoo.testing.pg.PgCursor`): the
commands answer without loading Odoo's registry, so they also work on a database that
the startup checks refuse to serve.
"""

from dataclasses import asdict, dataclass, field

from ..attachments import collection
from ..storage import KINDS

#: where an attachment's content is, from its row: a store kind, file, db or empty
PLACE_SQL = (
    "CASE "
    + " ".join(f"WHEN store_fname LIKE '{kind}://%%' THEN '{kind}'" for kind in KINDS)
    + " WHEN store_fname IS NOT NULL THEN 'file'"
    " WHEN db_datas IS NOT NULL THEN 'db' ELSE 'empty' END"
)


@dataclass
class DatabaseSettings:
    platform: str | None  # cloud.platform.kind
    location: str  # ir_attachment.location
    installed_kinds: tuple  # store kinds whose addon is installed


def database_settings(cr):
    """The platform settings recorded in a database."""
    cr.execute(
        "SELECT key, value FROM ir_config_parameter"
        " WHERE key IN ('cloud.platform.kind', 'ir_attachment.location')"
    )
    params = dict(cr.fetchall())
    cr.execute(
        "SELECT name FROM ir_module_module WHERE state = 'installed' AND name IN %s",
        (tuple(f"attachment_{kind}" for kind in KINDS),),
    )
    installed = tuple(sorted(name.removeprefix("attachment_") for (name,) in cr.fetchall()))
    return DatabaseSettings(
        platform=params.get("cloud.platform.kind") or None,
        location=params.get("ir_attachment.location") or "file",
        installed_kinds=installed,
    )


@dataclass
class StorageStatus:
    database: str
    running_env: str | None
    settings: DatabaseSettings
    #: place (s3, swift, db, file, empty) -> {"count": n, "bytes": n}
    places: dict = field(default_factory=dict)
    gc_pending: int = 0  # objects waiting for the garbage collection
    gc_retention: float = 0.0  # seconds (ODOO_ATTACHMENT_GC_RETENTION)
    gc_unseen: int = 0  # not looked at by a collection yet
    gc_waiting: int = 0  # unnamed for less than the retention
    gc_next_due: str | None = None  # when the first of those can go (UTC, ISO 8601)
    migration_running: bool = False

    @property
    def to_move(self):
        """Rows the migration would move: local files and objects of the other store
        kind when the location is an object store (database rows are checked against
        the keep rule, not counted), anything not in the database or the filestore when
        the location is ``db`` or ``file``."""
        location = self.settings.location
        if location in KINDS:
            misplaced = ["file", *(k for k in KINDS if k != location)]
        elif location == "db":
            misplaced = ["file", *KINDS]
        else:
            misplaced = ["db", *KINDS]
        return sum(self.places.get(p, {}).get("count", 0) for p in misplaced)

    def as_dict(self):
        data = asdict(self)
        data["to_move"] = self.to_move
        return data

    def render(self):
        s = self.settings
        lines = [
            f"database           {self.database}",
            f"running env        {self.running_env or '(not set)'}",
            f"platform           {s.platform or '(not installed)'}  (cloud.platform.kind)",
            f"location           {s.location}  (ir_attachment.location)",
            f"store addons       {', '.join(s.installed_kinds) or '(none installed)'}",
            "attachments        count          size",
        ]
        for place in ("s3", "swift", "db", "file", "empty"):
            if place in self.places:
                entry = self.places[place]
                lines.append(f"  {place:<16} {entry['count']:>7,} {entry['bytes'] / 1e6:>10.1f} MB")
        lines.append(f"to move            {self.to_move:,}")
        lines.append(f"pending object GC  {self.gc_pending:,}")
        if self.gc_pending:
            lines.append(
                f"  retention        {_duration(self.gc_retention)}:"
                f" {self.gc_waiting:,} waiting"
                + (f" (the first until {self.gc_next_due} UTC)" if self.gc_next_due else "")
                + f", {self.gc_unseen:,} not looked at yet,"
                f" {self.gc_pending - self.gc_waiting - self.gc_unseen:,} due"
            )
        lines.append(f"migration running  {'yes' if self.migration_running else 'no'}")
        return "\n".join(lines)


def _duration(seconds):
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def storage_status(cr, database, running_env=None, *, gc_retention=0.0):
    status = StorageStatus(database, running_env, database_settings(cr))
    cr.execute(
        f"SELECT {PLACE_SQL} AS place, count(*), coalesce(sum(file_size), 0)"  # noqa: S608
        " FROM ir_attachment WHERE type = 'binary' GROUP BY 1"
    )
    status.places = {
        place: {"count": count, "bytes": int(size)} for place, count, size in cr.fetchall()
    }
    pending = collection.pending(cr, gc_retention)
    status.gc_pending, status.gc_retention = pending.total, gc_retention
    status.gc_unseen, status.gc_waiting = pending.unseen, pending.waiting
    if pending.next_due is not None:
        status.gc_next_due = pending.next_due.isoformat(sep=" ", timespec="seconds")
    # the migration holds a session-level advisory lock (see stateless_odoo.attachments.migration)
    cr.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
        " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
        " AND l.classid = %s AND l.objid = %s AND l.objsubid = 2",
        (collection.LOCK_NAMESPACE, collection.MIGRATION_LOCK),
    )
    status.migration_running = bool(cr.fetchone()[0])
    return status
