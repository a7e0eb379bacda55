"""Where an ``ir.attachment``'s content goes and where it is read from, without Odoo.

- :func:`object_key`: content-addressed keys, namespaced per database;
- :class:`AttachmentStores`: the write store of one database (:meth:`~AttachmentStores.place`
  answers where new content goes: store, key and ``store_fname`` in one step) and
  read-only views of the containers other environments wrote
  (``store_fname`` = ``s3://bucket/key``).

``store_fname`` always holds the object's whole key as the store holds it (key prefix
included), so that a database copied to another environment, whatever its own prefix,
reads the same object: the stores here are built with whole keys.
"""

import re
import threading
from typing import NamedTuple

from ..errors import ConfigError, StatelessOdooError
from ..storage import KINDS, build_store, parse_object_url

_DB_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_SHA1_RE = re.compile(r"[0-9a-f]{40}")

#: SQL condition: the row's content is in an object store (any kind)
OBJECT_FNAME_SQL = "(" + " OR ".join(f"store_fname LIKE '{kind}://%%'" for kind in KINDS) + ")"


class StorageDisabled(StatelessOdooError):
    """DISABLE_ATTACHMENT_STORAGE is set: no store is written, deleted or read."""


class Place(NamedTuple):
    """Where one content goes: the store, the object's whole key, the ``store_fname``."""

    store: object
    key: str
    store_fname: str


def namespace(db_name):
    """The key prefix of one database's objects: several databases share a bucket."""
    if not db_name or not _DB_NAME_RE.match(db_name):
        raise ConfigError("database name", f"{db_name!r} cannot name objects")
    return f"{db_name}/"


def object_key(db_name, checksum, key_prefix=""):
    """The whole key of content whose SHA-1 is ``checksum``, in ``db_name``'s namespace."""
    if not checksum or not re.fullmatch(r"[0-9a-f]{40}", checksum):
        raise ValueError(f"{checksum!r} is not a SHA-1 hex digest")
    return f"{key_prefix}{namespace(db_name)}{checksum[:2]}/{checksum}"


def is_unnamespaced_key(key, key_prefix=""):
    """A key as the older addons (Camptocamp's) wrote it: the content's SHA-1 alone, at the
    top of the container (after the key prefix), in no database's namespace."""
    return key.startswith(key_prefix) and _SHA1_RE.fullmatch(key[len(key_prefix) :]) is not None


def is_object_url(store_fname):
    return bool(store_fname) and parse_object_url(store_fname) is not None


class AttachmentStores:
    """The stores one database uses, in one process.

    ``write_store`` is the current environment's container (StorageDisabled when
    storage is disabled). Objects named by a
    ``store_fname`` in another container are read through a read-only view: a copy of
    production restored on integration reads production's objects and never writes or
    deletes there.
    """

    def __init__(
        self,
        kind,
        db_name,
        environ=None,
        *,
        disabled=False,
        gc_unnamespaced=False,
        create_container=True,
    ):
        if kind not in KINDS:
            raise ConfigError("ir_attachment.location", f"{kind!r} is not one of {KINDS}")
        self.kind = kind
        self.db_name = db_name
        self.disabled = disabled
        self.gc_unnamespaced = gc_unnamespaced
        # keys given to these stores are whole keys (see the module's docstring)
        self._store = build_store(kind, environ, db_name=db_name, read_only=disabled, key_prefix="")
        self.key_prefix = self._store.settings.key_prefix
        self.create_container = create_container
        self._ready = False
        self._views = {}
        self._lock = threading.Lock()

    def ready_for_writes(self):
        """Create this environment's container if it does not exist, once per process
        (``create_container``, ODOO_ATTACHMENT_CREATE_CONTAINER), as the older addons
        did on the first write: with a bucket per database (``{db}``), every new
        database's first attachment finds its bucket."""
        if self._ready or not self.create_container or self.disabled:
            return
        with self._lock:
            if not self._ready:
                self._store.ensure_container()
                self._ready = True

    @property
    def container(self):
        return self._store.container

    @property
    def write_store(self):
        if self.disabled:
            raise StorageDisabled(
                "DISABLE_ATTACHMENT_STORAGE is set: no object is written or deleted"
            )
        return self._store

    def place(self, checksum):
        """The :class:`Place` of content whose SHA-1 is ``checksum`` in this
        environment's container (read-only when storage is disabled)."""
        key = object_key(self.db_name, checksum, self.key_prefix)
        return Place(self._store, key, f"{self.kind}://{self.container}/{key}")

    def locate(self, store_fname):
        """``(store, key)`` to read ``store_fname``; the store is read-only unless it is
        this environment's container."""
        scheme, container, key = _split(store_fname)
        if scheme != self.kind:
            raise StorageDisabled(
                f"{store_fname!r} is in a {scheme} store but this server is configured"
                f" for {self.kind} (ir_attachment.location)"
            )
        if container == self.container:
            return self._store, key
        with self._lock:
            view = self._views.get(container)
            if view is None:
                view = self._views[container] = self._store.readonly_view(container)
        return view, key

    def owns(self, store_fname):
        """True when this database may delete ``store_fname``: this environment's
        container and this database's namespace. Anything else is read-only here.

        With ``gc_unnamespaced`` (ODOO_ATTACHMENT_GC_UNNAMESPACED), also the objects the
        older addons (Camptocamp's) wrote at the top of this container, named by their
        checksum alone (``<prefix><sha1>``): the team says no other database references
        them. Another database's namespaced objects are never this database's."""
        parts = parse_object_url(store_fname or "")
        if parts is None or self.disabled:
            return False
        scheme, container, key = parts
        if scheme != self.kind or container != self.container:
            return False
        if key.startswith(self.key_prefix + namespace(self.db_name)):
            return True
        return self.gc_unnamespaced and is_unnamespaced_key(key, self.key_prefix)


def _split(store_fname):
    parts = parse_object_url(store_fname or "")
    if parts is None:
        raise ValueError(f"{store_fname!r} is not an object URL")
    return parts
