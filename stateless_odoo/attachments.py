"""Where an ``ir.attachment``'s content lives, decided without Odoo.

- :class:`AttachmentSettings`: the variables of the attachment addons;
- :class:`KeepInDatabase`: the rule that keeps small images, JS and CSS in the database;
- :func:`object_key`: content-addressed keys, namespaced per database;
- :class:`AttachmentStores`: the write store of one database and read-only views of the
  containers other environments wrote (``store_fname`` = ``s3://bucket/key``);
- :func:`find_update_module`: the caller-frame guard of ``_register_hook``.

``store_fname`` always holds the object's whole key as the store holds it (key prefix
included), so that a database copied to another environment, whatever its own prefix,
reads the same object.
"""

import ast
import collections
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field

from .config import EnvReader
from .errors import ConfigError, StatelessOdooError
from .storage import KINDS, build_store, parse_object_url

#: the default rule, as the platform's older addons had it: images up to 50 KB, every
#: JavaScript and CSS (0: whatever the size) stay in the database
DEFAULT_KEEP_IN_DATABASE = {"image/": 51200, "application/javascript": 0, "text/css": 0}

#: the ir.config_parameter of the older addons holding the rule (a dict literal)
KEEP_IN_DATABASE_PARAM = "ir_attachment.storage.force.database"

SERVING_MODES = ("stream", "redirect", "x-accel-redirect")

_DB_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_SHA1_RE = re.compile(r"[0-9a-f]{40}")


class StorageDisabled(StatelessOdooError):
    """DISABLE_ATTACHMENT_STORAGE is set: no store is written, deleted or read."""


@dataclass(frozen=True)
class KeepInDatabase:
    """Which content stays in the database although a store is configured.

    ``limits`` maps a mimetype prefix (``image/``) or a whole mimetype
    (``text/css``) to the largest size kept, in bytes; 0 keeps any size.
    """

    limits: dict = field(default_factory=lambda: dict(DEFAULT_KEEP_IN_DATABASE))

    @classmethod
    def parse(cls, text, *, source=KEEP_IN_DATABASE_PARAM):
        """Parse the rule from JSON or a Python dict literal (the older addons' form)."""
        if not text or not str(text).strip():
            return cls()
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ConfigError(
                    source,
                    f"{text!r} is not a mapping of mimetype to size, such as "
                    '{"image/": 51200, "application/javascript": 0, "text/css": 0}',
                ) from None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in value.items()
        ):
            raise ConfigError(
                source, f"{text!r} must map mimetypes (text) to sizes (whole numbers >= 0)"
            )
        return cls(dict(value))

    def keeps(self, mimetype, size):
        """True when content of ``mimetype`` and ``size`` bytes stays in the database."""
        if not mimetype:
            return False
        for prefix, limit in self.limits.items():
            if mimetype.startswith(prefix) and (limit == 0 or size <= limit):
                return True
        return False


@dataclass(frozen=True)
class AttachmentSettings:
    """The variables of the attachment addons (the stores read their own)."""

    disabled: bool = False
    serving: str = "stream"
    url_expiration: float = 60.0
    x_accel_prefix: str = "/_object_storage/"
    keep_in_database: KeepInDatabase | None = None  # None: the database parameter
    migration_batch: int = 500
    migration_threads: int = 8
    cache_size: int = 64 * 1024 * 1024
    cache_max_object: int = 1024 * 1024
    url_cache: int = 4096
    gc_unnamespaced: bool = False

    @classmethod
    def from_env(cls, environ=None):
        env = EnvReader(environ)
        keep = env.str("ODOO_ATTACHMENT_KEEP_IN_DATABASE")
        prefix = env.str("ODOO_ATTACHMENT_X_ACCEL_PREFIX", "/_object_storage/")
        if not prefix.startswith("/"):
            raise ConfigError(
                "ODOO_ATTACHMENT_X_ACCEL_PREFIX", f"{prefix!r} must be a path starting with /"
            )
        return cls(
            disabled=env.bool("DISABLE_ATTACHMENT_STORAGE", False),
            serving=env.choice("ODOO_ATTACHMENT_SERVING", SERVING_MODES, "stream"),
            url_expiration=env.seconds("ODOO_ATTACHMENT_URL_EXPIRATION", 60.0, maximum=86400),
            x_accel_prefix=prefix if prefix.endswith("/") else prefix + "/",
            keep_in_database=None
            if keep is None
            else KeepInDatabase.parse(keep, source="ODOO_ATTACHMENT_KEEP_IN_DATABASE"),
            migration_batch=env.int("ODOO_ATTACHMENT_MIGRATION_BATCH", 500, minimum=1),
            migration_threads=env.int(
                "ODOO_ATTACHMENT_MIGRATION_THREADS", 8, minimum=1, maximum=64
            ),
            cache_size=env.size("ODOO_ATTACHMENT_CACHE_SIZE", 64 * 1024 * 1024, minimum=0),
            cache_max_object=env.size("ODOO_ATTACHMENT_CACHE_MAX_OBJECT", 1024 * 1024, minimum=0),
            url_cache=env.int("ODOO_ATTACHMENT_URL_CACHE", 4096, minimum=0),
            gc_unnamespaced=env.bool("ODOO_ATTACHMENT_GC_UNNAMESPACED", False),
        )


class ObjectCache:
    """A per-process LRU of small objects' bytes, keyed by ``store_fname``.

    Objects are content-addressed, so a cached copy is never stale: the key names the
    content. Only code that already passed Odoo's access check reads it. Bounded by
    ``max_bytes`` in total and ``max_object`` per object; 0 disables it.
    """

    def __init__(self, max_bytes, max_object):
        self.max_bytes = max_bytes
        self.max_object = min(max_object, max_bytes)
        self._items = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def accepts(self, size):
        return size is not None and 0 < size <= self.max_object

    def get(self, url):
        with self._lock:
            data = self._items.get(url)
            if data is None:
                self.misses += 1
                return None
            self._items.move_to_end(url)
            self.hits += 1
            return data

    def put(self, url, data):
        if not self.accepts(len(data)):
            return
        with self._lock:
            if url in self._items:
                return
            self._items[url] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes:
                _url, old = self._items.popitem(last=False)
                self._bytes -= len(old)

    def discard(self, url):
        with self._lock:
            data = self._items.pop(url, None)
            if data is not None:
                self._bytes -= len(data)


class PresignedUrls:
    """A per-process cache of the presigned (S3) or temporary (Swift) URLs of the
    redirect and X-Accel-Redirect modes: signing one costs about a millisecond with
    botocore, a third of what the whole 302 otherwise costs.

    A URL is handed out again while more than half of its lifetime is left, so every URL
    given stays valid for at least ``expires / 2`` seconds (less the second the stores
    round their signing time down to). It is keyed by everything it encodes (store,
    key, lifetime, file name, type, inline); it names no user. Only code that passed
    Odoo's access check for the record asks for one, and the URL then gives the object
    to whoever holds it, exactly as a fresh one would. ``max_items`` 0 disables it.
    """

    def __init__(self, max_items, clock=time.monotonic):
        self.max_items = max_items
        self._clock = clock
        self._items = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, store, key, *, expires, filename=None, content_type=None, inline=False):
        def sign():
            return store.presigned_get_url(
                key, expires=expires, filename=filename, content_type=content_type, inline=inline
            )

        if not self.max_items:
            return sign()
        cache_key = (store.name, key, expires, filename, content_type, inline)
        now = self._clock()
        with self._lock:
            entry = self._items.get(cache_key)
            if entry is not None and now < entry[1]:
                self._items.move_to_end(cache_key)
                self.hits += 1
                return entry[0]
            self.misses += 1
        url = sign()  # outside the lock: other threads are not held up by a signature
        with self._lock:
            self._items[cache_key] = (url, now + expires / 2)
            self._items.move_to_end(cache_key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return url


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
    """A key as the older addons of seed 001 wrote it: the content's SHA-1 alone, at the
    top of the container (after the key prefix), in no database's namespace."""
    return key.startswith(key_prefix) and _SHA1_RE.fullmatch(key[len(key_prefix) :]) is not None


def object_url(scheme, container, key):
    return f"{scheme}://{container}/{key}"


def is_object_url(store_fname):
    return bool(store_fname) and parse_object_url(store_fname) is not None


class AttachmentStores:
    """The stores one database uses, in one process.

    ``write_store`` is the current environment's container, ``None`` when the kind of
    storage is not an object store or when storage is disabled. Objects named by a
    ``store_fname`` in another container are read through a read-only view: a copy of
    production restored on integration reads production's objects and never writes or
    deletes there.
    """

    def __init__(self, kind, db_name, environ=None, *, disabled=False, gc_unnamespaced=False):
        if kind not in KINDS:
            raise ConfigError("ir_attachment.location", f"{kind!r} is not one of {KINDS}")
        self.kind = kind
        self.db_name = db_name
        self.disabled = disabled
        self.gc_unnamespaced = gc_unnamespaced
        base = build_store(kind, environ, db_name=db_name, read_only=disabled)
        self.key_prefix = base.key_prefix
        # keys given to these stores are whole keys (see the module's docstring)
        self._store = base.with_key_prefix("")
        self._views = {}
        self._lock = threading.Lock()

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

    def key_for(self, checksum):
        return object_key(self.db_name, checksum, self.key_prefix)

    def url_for(self, checksum):
        return object_url(self.kind, self.container, self.key_for(checksum))

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
                view = self._views[container] = view.with_key_prefix("")
        return view, key

    def owns(self, store_fname):
        """True when this database may delete ``store_fname``: this environment's
        container and this database's namespace. Anything else is read-only here.

        With ``gc_unnamespaced`` (ODOO_ATTACHMENT_GC_UNNAMESPACED), also the objects the
        older addons of seed 001 wrote at the top of this container, named by their
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
