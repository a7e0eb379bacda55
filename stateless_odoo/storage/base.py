"""The object store interface shared by the S3 and Swift implementations."""

import abc
import functools
import io
import time
from dataclasses import dataclass
from urllib.parse import quote

from ..config import EnvSettings
from ..errors import ObjectNotFound, ReadOnlyStore, StoreUnavailable
from ..observability import events

#: default size of the chunks a streamed read yields
CHUNK_SIZE = 1024 * 1024


class StoreSettings(EnvSettings):
    """A store's settings (:class:`~stateless_odoo.config.EnvSettings`). They have
    ``connect_timeout``, ``read_timeout`` and ``max_attempts``, and say how long their
    client sleeps before a retry (``backoff_seconds``): from them,
    :meth:`worst_write_seconds` is the longest a slow store can hold a request that
    stores one attachment.
    """

    #: the variables of the timeouts and attempts, named in the checks' problems
    timing_variables = ()

    def backoff_seconds(self, retry):
        """The longest sleep before retry number ``retry`` (1, 2, ...)."""
        raise NotImplementedError

    def auth_seconds(self):
        """The longest an authentication takes before it fails (0: no separate one)."""
        return 0.0

    def worst_call_seconds(self):
        """The longest one store call takes when every attempt waits out its connect
        and read timeouts, with the client's back-off between attempts."""
        attempts = self.max_attempts
        return attempts * (self.connect_timeout + self.read_timeout) + sum(
            self.backoff_seconds(retry) for retry in range(1, attempts)
        )

    def worst_write_seconds(self):
        """The longest an attachment write holds a request: the deduplication HEAD
        and the PUT (below the multipart threshold), each answered just before its
        timeouts, plus one authentication. A store that hangs fails at the first
        call instead, after :meth:`worst_call_seconds`."""
        return 2 * self.worst_call_seconds() + self.auth_seconds()


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object, without its content."""

    key: str
    size: int
    etag: str | None = None
    content_type: str | None = None
    last_modified: object = None  # datetime when the store gives one


@dataclass(frozen=True)
class DeleteResult:
    deleted: int
    not_found: int


class ObjectReader(io.RawIOBase):
    """A streamed object: a read-only file object that can also be iterated by chunks.

    The reader counts what it hands out: when the chunks end before the size the store
    announced, it raises the store's error. Client libraries do not all check that
    (urllib3 1.26, which Odoo 18 pins, does not by default), and a short read must
    never pass for the end of the object.
    """

    def __init__(self, info, chunks, close, *, store, guard, read_all=None):
        """``chunks``: the client's iterator of the body; ``guard(read)`` calls ``read``
        and translates the client's errors into the store's; ``read_all``, when given,
        reads the whole body at once (cheaper than joining chunks); ``store`` names the
        store in errors."""
        super().__init__()
        self.info = info
        self._store = store
        self._guard = guard
        self._chunks = self._counted(iter(chunks))
        self._close = close
        self._read_all = read_all
        self._started = False
        self._buffer = b""

    def _check_size(self, received):
        if self.info.size is not None and received != self.info.size:
            raise StoreUnavailable(
                f"get: the store sent {received} of {self.info.size} bytes",
                store=self._store,
                key=self.info.key,
            )

    def _counted(self, iterator):
        received = 0
        while chunk := self._guard(lambda: next(iterator, b"")):
            received += len(chunk)
            yield chunk
        self._check_size(received)

    def readable(self):
        return True

    def __iter__(self):
        self._started = True
        if self._buffer:
            chunk, self._buffer = self._buffer, b""
            yield chunk
        yield from self._chunks
        self.close()

    def readinto(self, target):
        self._started = True
        wanted = len(target)
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(wanted, len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size

    def readall(self):
        if not self._started and self._read_all is not None:
            self._started = True
            data = self._guard(self._read_all)
            self._check_size(len(data))
            return data
        self._started = True
        parts = [self._buffer]
        self._buffer = b""
        parts.extend(self._chunks)
        return b"".join(parts)

    def close(self):
        if not self.closed:
            try:
                self._close()
            finally:
                super().close()


def range_header(byte_range):
    """The HTTP Range header value of ``(start, stop)`` (stop excluded)."""
    start, stop = byte_range
    if not 0 <= start < stop:
        raise ValueError(f"{byte_range!r} is not a byte range")
    return f"bytes={start}-{stop - 1}"


def _seekable(stream):
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


class FullReads:
    """A stream whose ``read(n)`` returns ``n`` bytes unless the stream has ended.

    Raw streams (pipes, sockets, unbuffered files) may return less than asked; upload
    code that sizes parts by what one read returns then takes a short read for the end
    of the data (s3transfer reads the rest of the stream into memory at once).
    """

    def __init__(self, stream):
        self._stream = stream

    def read(self, size=-1):
        if size is None or size < 0:
            return self._stream.read()
        parts = []
        left = size
        while left > 0:
            chunk = self._stream.read(left)
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)


class ObjectStore(abc.ABC):
    """One container (S3 bucket, Swift container) of an object store.

    Keys are given without the configured key prefix, which the store adds itself.
    A store opened with ``read_only=True`` refuses every write and delete: that is how
    a database restored from another environment reads its objects without touching
    them.
    """

    #: URL scheme of the store's objects (``s3``, ``swift``)
    scheme = None
    #: the :class:`StoreSettings` class of the store's variables
    settings_class = None

    #: the operations reported as ``store`` events (see :mod:`stateless_odoo.observability.events`)
    _instrumented = {
        "put": "put",
        "open": "get",
        "head": "head",
        "delete_many": "delete",
        "copy": "copy",
    }

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for method, op in cls._instrumented.items():
            if method in cls.__dict__:
                setattr(cls, method, _instrument(cls.__dict__[method], op))

    def __init__(self, settings, container, *, read_only=False, key_prefix=None):
        """``key_prefix``: what the store puts before every key it is given (default:
        the settings' prefix; ``""`` when the caller gives whole keys)."""
        self.settings = settings
        self.container = container
        self.key_prefix = settings.key_prefix if key_prefix is None else key_prefix
        self.read_only = read_only

    @classmethod
    def from_env(cls, environ=None, *, db_name=None, read_only=False, key_prefix=None):
        """The store ``environ``'s variables configure (``{db}`` is ``db_name``)."""
        settings = cls.settings_class.from_env(environ)
        return cls(
            settings, settings.container(db_name), read_only=read_only, key_prefix=key_prefix
        )

    @property
    def name(self):
        return f"{self.scheme}://{self.container}"

    def __repr__(self):
        mode = ", read-only" if self.read_only else ""
        return f"<{type(self).__name__} {self.name}{mode}>"

    def _full_key(self, key):
        return f"{self.key_prefix}{key}"

    def _short_key(self, full_key):
        if self.key_prefix and full_key.startswith(self.key_prefix):
            return full_key[len(self.key_prefix) :]
        return full_key

    def _check_writable(self, key=None):
        if self.read_only:
            raise ReadOnlyStore(
                "this store is read-only here: it belongs to another environment",
                store=self.name,
                key=key,
            )

    # -- the interface --------------------------------------------------------------

    @abc.abstractmethod
    def put(self, key, data, *, content_type=None, size=None):
        """Store ``data`` (bytes, or a binary file object read to its end) under ``key``.

        A file object is streamed: it is never read whole into memory. ``size``, when
        known, avoids a chunked upload. Returns the object's :class:`ObjectInfo`.
        """

    @abc.abstractmethod
    def open(self, key, *, chunk_size=CHUNK_SIZE, byte_range=None):
        """Return an :class:`ObjectReader` streaming the object's content.

        ``byte_range``, ``(start, stop)`` with ``stop`` excluded, asks for that part
        only; the reader's ``info.size`` is then the part's length.
        """

    @abc.abstractmethod
    def head(self, key, *, newest=False):
        """Return the :class:`ObjectInfo` of ``key``; raise ObjectNotFound if absent.

        ``newest``: the answer must reflect the latest write or delete, on a store
        whose reads may be served by a stale replica (Swift); the deduplication of
        writes asks for it, so that content deleted a moment ago is not taken as
        present."""

    @abc.abstractmethod
    def copy(self, source_key, key, *, source=None):
        """Copy the object ``source_key`` of ``source`` (a store of the same account and
        client, default this one; it may be read-only) to ``key`` in this store, inside
        the store (no download). Returns the new object's :class:`ObjectInfo`; raises
        ObjectNotFound when the source is missing."""

    @abc.abstractmethod
    def delete_many(self, keys):
        """Delete ``keys``; keys already absent count as ``not_found``, not as errors."""

    @abc.abstractmethod
    def presigned_get_url(
        self, key, *, expires=300, filename=None, content_type=None, inline=False
    ):
        """A URL that lets anyone holding it GET the object for ``expires`` seconds.

        ``filename`` and ``inline`` set the Content-Disposition of the answer;
        ``content_type`` its Content-Type where the store supports overriding it.
        """

    @abc.abstractmethod
    def list(self, prefix=""):
        """Iterate over the :class:`ObjectInfo` of the objects whose key starts with
        ``prefix``, in key order."""

    @abc.abstractmethod
    def ensure_container(self):
        """Create the container if it does not exist (never for a read-only store)."""

    @abc.abstractmethod
    def readonly_view(self, container):
        """A read-only store on another container of the same account and client."""

    # -- conveniences built on the interface ---------------------------------------------

    def get_bytes(self, key):
        with self.open(key) as reader:
            return reader.readall()

    def exists(self, key, *, newest=False):
        try:
            self.head(key, newest=newest)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key):
        return self.delete_many([key])


def _instrument(method, op):
    """Report each call of ``method`` as a ``store`` event; a missing object is an
    answer, not a store error."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not events.active():
            return method(self, *args, **kwargs)
        start = time.perf_counter()
        ok = False
        try:
            result = method(self, *args, **kwargs)
            ok = True
            return result
        except ObjectNotFound:
            ok = True
            raise
        finally:
            events.emit(
                "store", kind=self.scheme, op=op, seconds=time.perf_counter() - start, ok=ok
            )

    return wrapper


def content_disposition(filename, inline=False):
    """A Content-Disposition value that keeps non-ASCII file names (RFC 6266)."""
    kind = "inline" if inline else "attachment"
    ascii_name = "".join(c for c in filename.encode("ascii", "replace").decode() if c.isprintable())
    ascii_name = ascii_name.replace('"', "").replace("\\", "")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
