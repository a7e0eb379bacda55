# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Serving an attachment whose content is in the object store.

Odoo 18 serves attachments from ``ir.attachment._to_http_stream()`` without going
through ``_file_read``. :class:`ObjectStream` is built there, after Odoo's access check,
and answers in the mode ``ODOO_ATTACHMENT_SERVING`` chooses:

- ``stream``: Odoo's own answer, as from its filestore (``Stream.get_response``: the
  same status and headers, conditional requests and byte ranges by werkzeug), with the
  object as its body, streamed by chunks (never whole in memory; of a range, only the
  part asked for is read from the store);
- ``redirect``: a 302 to a presigned (S3) or temporary (Swift) URL valid
  ``ODOO_ATTACHMENT_URL_EXPIRATION`` seconds, with the attachment's file name and type;
- ``x-accel-redirect``: an empty answer whose ``X-Accel-Redirect`` header hands the
  presigned URL to nginx (``ODOO_ATTACHMENT_X_ACCEL_PREFIX``; see the README).

Code that needs the bytes (image resizing) reads ``stream.data``, loaded on first use;
the answer then is Odoo's own.
"""

import io
import logging
from urllib.parse import urlsplit

import werkzeug.exceptions
import werkzeug.http
from odoo.http import Stream, request

from stateless_odoo.errors import ObjectNotFound, StatelessOdooError

_logger = logging.getLogger(__name__)


#: types a browser renders as a document that runs scripts
_ACTIVE_TYPES = ("text/html", "application/xhtml", "image/svg", "text/xml", "application/xml")


def is_active_type(mimetype):
    mimetype = (mimetype or "").split(";")[0].strip().lower()
    return (
        mimetype.startswith(_ACTIVE_TYPES)
        or mimetype.endswith("+xml")
        or "javascript" in mimetype
        or "ecmascript" in mimetype
    )


class ObjectStream(Stream):
    """A Stream of type ``data`` whose data stays in the store until asked for."""

    type = "data"

    @classmethod
    def from_object_attachment(cls, attachment):
        Attachment = attachment.env["ir.attachment"]
        stream = cls(
            mimetype=attachment.mimetype,
            download_name=attachment.name,
            etag=attachment.checksum,
            public=attachment.public,
            last_modified=attachment.write_date,
            size=attachment.file_size,
        )
        stream._attachment = attachment
        stream._settings = Attachment._object_storage_settings()
        stream._data = None
        return stream

    # the bytes, for code that transforms them (image resizing)
    @property
    def data(self):
        if self._data is None:
            self._data = self._attachment.raw
        return self._data

    @data.setter
    def data(self, value):
        self._data = value

    def _locate(self):
        attachment = self._attachment
        kind = attachment.store_fname.partition("://")[0]
        return attachment._object_stores(kind).locate(attachment.store_fname)

    def get_response(
        self,
        as_attachment=None,
        immutable=None,
        content_security_policy="default-src 'none'",
        **send_file_kwargs,
    ):
        odoo_answer = (as_attachment, immutable, content_security_policy)
        if self._data is not None:  # transformed or read: Odoo's own answer
            return super().get_response(*odoo_answer, **send_file_kwargs)
        try:
            store, key = self._locate()
            mode = self._settings.serving
            if mode == "stream":
                return self._streamed(store, key, odoo_answer, send_file_kwargs)
            from .models.ir_attachment import presigned_urls

            # the store serves on its own domain without the CSP Odoo and the nginx
            # location add: the attachment's own type only (never ?mimetype=), and a
            # type a browser would run (HTML, SVG, XML, JavaScript) as a download
            if as_attachment is None:
                as_attachment = self.as_attachment
            mimetype = self._attachment.mimetype
            url = presigned_urls(self._settings).get(
                store,
                key,
                expires=self._settings.url_expiration,
                filename=self.download_name,
                content_type=mimetype,
                inline=not as_attachment and not is_active_type(mimetype),
            )
            if mode == "redirect":
                return self._redirect(url)
            return self._x_accel(url, odoo_answer, send_file_kwargs)
        except ObjectNotFound as exc:
            _logger.error("%s: %s", self._attachment._object_storage_describe(), exc)
            raise werkzeug.exceptions.NotFound() from exc
        except StatelessOdooError as exc:
            _logger.error("%s: %s", self._attachment._object_storage_describe(), exc)
            raise self._attachment._object_storage_read_error(exc) from exc

    def _odoo_response(self, odoo_answer, send_file_kwargs):
        """Odoo's answer for this stream (``Stream.get_response``: headers, cache
        control, CSP) around an empty body, before its conditional step."""
        self._data = b""
        try:
            # pylint: disable-next=super-method-mismatch  # Odoo's answer, its body replaced
            return super().get_response(*odoo_answer, **send_file_kwargs, conditional=False)
        finally:
            self._data = None

    def _streamed(self, store, key, odoo_answer, send_file_kwargs):
        """Odoo's answer with the object as its body, then werkzeug's conditional step
        (304, 206, 416) as Odoo's ``send_file`` takes it. The store is asked for what
        the answer sends (nothing for a 304, the range of a 206) before any byte is
        sent: a missing object is a 404. A small object read whole goes to the
        process's cache."""
        from .models.ir_attachment import object_cache

        cache = object_cache(self._settings)
        cached = cache.get(self._attachment.store_fname)
        if cached is not None:
            self.data = cached
            # pylint: disable-next=super-method-mismatch  # Odoo's answer from the cache
            return super().get_response(*odoo_answer, **send_file_kwargs)
        conditional = send_file_kwargs.pop("conditional", self.conditional)
        res = self._odoo_response(odoo_answer, send_file_kwargs)
        content = ObjectBody(store, key, self.size)
        res.response = content
        res.content_length = self.size
        if conditional:
            res = res.make_conditional(
                request.httprequest.environ, accept_ranges=True, complete_length=self.size
            )
        if res.status_code == 206:
            sent = werkzeug.http.parse_content_range_header(res.headers["Content-Range"])
            content.open(sent.start, sent.stop)
        elif res.status_code == 304:
            pass
        elif cache.accepts(self.size):
            data = store.get_bytes(key)
            cache.put(self._attachment.store_fname, data)
            res.response = [data]
        else:
            content.open(0, self.size)
        return res

    def _redirect(self, url):
        res = request.redirect(url, code=302, local=False)
        res.headers["Cache-Control"] = "no-store"
        return res

    def _x_accel(self, url, odoo_answer, send_file_kwargs):
        """Odoo's headers (name, type, CSP), an empty body and the presigned URL in
        ``X-Accel-Redirect`` for nginx to fetch; nginx passes the client's Range on."""
        parts = urlsplit(url)
        target = f"{self._settings.x_accel_prefix}{parts.scheme}/{parts.netloc}{parts.path}"
        if parts.query:
            target += f"?{parts.query}"
        res = self._odoo_response(odoo_answer, send_file_kwargs)
        res.headers["X-Accel-Redirect"] = target
        res.headers["Content-Length"] = "0"
        res.headers["Cache-Control"] = "private, no-store"
        return res


class ObjectBody:
    """The body of a streamed object, by the store's chunks.

    werkzeug's range handling seeks its body to the start of the range, then reads the
    range's length: this body is opened on exactly that part (:meth:`open`, before the
    answer is sent), so the seek is to where it stands already.
    """

    def __init__(self, store, key, size):
        self._store = store
        self._key = key
        self._size = size
        self._reader = None
        self._chunks = iter(())
        self._start = 0

    def open(self, start, stop):
        whole = (start, stop) == (0, self._size) or start >= stop
        self._reader = self._store.open(self._key, byte_range=None if whole else (start, stop))
        self._chunks = iter(self._reader)
        self._start = start

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._chunks)

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        if (offset, whence) != (self._start, io.SEEK_SET):
            raise io.UnsupportedOperation(f"opened at {self._start}, not at {offset}")
        return offset

    def tell(self):
        return self._start

    def close(self):
        if self._reader is not None:
            self._reader.close()
