"""Backups to and from an object store (``odoo cloud_platform backup|restore``).

A backup is streamed into the store as it is written: a bounded in-memory :class:`Pipe`
between the writer (Odoo's dump) and the upload (an S3 multipart upload, a Swift chunked
PUT), so no local copy of the whole file is made. A writer that fails fails the upload,
which then never completes: no object that looks complete is left (a killed process
leaves an unfinished multipart upload, which S3 does not show as an object, or a Swift
PUT the proxy drops).

The destination is a URL, ``s3://<bucket>/<key>`` or ``swift://<container>/<key>``; the
store's endpoint, region and credentials are the attachment store's variables
(``AWS_*``, ``SWIFT_*``), each of which an ``ODOO_BACKUP_<NAME>`` variable overrides
(``ODOO_BACKUP_AWS_ACCESS_KEY_ID``...): backups may go to another account than the
attachments.
"""

import queue
import threading

from ..config import EnvReader
from ..errors import ConfigError, StatelessOdooError
from ..storage import CONTAINER_VARIABLE, KINDS, build_store, parse_object_url

OVERRIDE_PREFIX = "ODOO_BACKUP_"
FORMATS = ("zip", "dump", "sql")
#: what the pipe holds at most: chunks of about PIPE_CHUNK bytes
PIPE_CHUNK = 1024 * 1024
PIPE_CHUNKS = 16


class BackupLocationError(ConfigError):
    """The backup URL or its store's variables are wrong."""


def backup_store(url, environ=None):
    """``(store, key)`` of a backup URL, with the variables described in the module's
    docstring; raises :class:`ConfigError` naming what is wrong."""
    parts = parse_object_url(url or "")
    if parts is None:
        raise BackupLocationError(
            "backup URL",
            f"{url!r} is not s3://<bucket>/<key> or swift://<container>/<key>"
            f" (stores: {', '.join(KINDS)})",
        )
    kind, container, key = parts
    env = EnvReader(environ).environ
    variables = {name: value for name, value in env.items()}
    for name, value in env.items():
        if name.startswith(OVERRIDE_PREFIX) and value.strip():
            variables[name.removeprefix(OVERRIDE_PREFIX)] = value
    variables[CONTAINER_VARIABLE[kind]] = container
    for prefix_variable in ("AWS_KEY_PREFIX", "SWIFT_KEY_PREFIX"):
        variables.pop(prefix_variable, None)  # the URL's key is the whole key
    return build_store(kind, variables, key_prefix=""), key


class _EndOfData:
    pass


class _UploadStopped(StatelessOdooError):
    """The reader (the upload) failed: the writer stops."""


class Pipe:
    """A bounded pipe from a writer (``write``/``close``) to a reader (``read``), in two
    threads. ``close(error)`` makes the reader raise instead of seeing the end of the
    data: an upload that reads it then fails, and never completes. ``reader_failed``
    makes the writer's next ``write`` raise instead of waiting for a reader that is
    gone."""

    def __init__(self, chunk=PIPE_CHUNK, chunks=PIPE_CHUNKS):
        self._queue = queue.Queue(chunks)
        self._chunk = chunk
        self._pending = bytearray()
        self._buffer = b""
        self._ended = False
        self._reader_error = None
        self.written = 0

    # -- the writer's side ------------------------------------------------------------

    def writable(self):
        return True

    def _put(self, item):
        while self._reader_error is None:
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _UploadStopped(f"the upload stopped: {self._reader_error}")

    def write(self, data):
        self._pending += data
        if len(self._pending) >= self._chunk:
            self._put(bytes(self._pending))
            self._pending.clear()
        self.written += len(data)
        return len(data)

    def flush(self):
        pass

    def close(self, error=None):
        """The end of the data, or ``error`` for the reader to raise."""
        if self._reader_error is not None:
            return
        if error is None and self._pending:
            self._put(bytes(self._pending))
        self._pending.clear()
        self._put(error if error is not None else _EndOfData)

    # -- the reader's side ---------------------------------------------------------------

    def readable(self):
        return True

    def reader_failed(self, error):
        self._reader_error = error

    def read(self, size=-1):
        while not self._ended and (size is None or size < 0 or len(self._buffer) < size):
            item = self._queue.get()
            if item is _EndOfData:
                self._ended = True
            elif isinstance(item, BaseException):
                self._ended = True
                raise StatelessOdooError(f"the backup was not written whole: {item}") from item
            else:
                self._buffer += item
        if size is None or size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def upload(store, key, write, *, overwrite=False):
    """Stream what ``write(stream)`` writes into ``key`` of ``store``; returns the
    object's :class:`~stateless_odoo.storage.ObjectInfo`. An existing ``key`` is
    refused unless ``overwrite``. When ``write`` fails, the upload does not complete
    and ``write``'s error is raised; when the upload fails, its error is."""
    if not overwrite and store.exists(key, newest=True):
        raise BackupLocationError(
            "backup URL", f"{store.name}/{key} exists (give --overwrite to replace it)"
        )
    pipe = Pipe()
    result = {}

    def send():
        try:
            result["info"] = store.put(key, pipe, content_type="application/octet-stream")
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            result["error"] = exc
            pipe.reader_failed(exc)

    sender = threading.Thread(target=send, name="stateless-backup-upload", daemon=True)
    sender.start()
    try:
        write(pipe)
    except _UploadStopped:
        sender.join()
        raise result["error"] from None
    except BaseException as exc:
        pipe.close(exc)
        sender.join()
        raise
    pipe.close()
    sender.join()
    if "error" in result:
        raise result["error"]
    return result["info"]
