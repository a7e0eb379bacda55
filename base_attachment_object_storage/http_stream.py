# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""Serving an attachment whose content is in the object store.

Odoo 18 serves attachments from ``ir.attachment._to_http_stream()`` without going
through ``_file_read``. :class:`ObjectStream` is built there, after Odoo's access check,
and answers in the mode ``ODOO_ATTACHMENT_SERVING`` chooses:

- ``stream``: Odoo streams the object (chunks, never whole in memory), with ETag
  (the checksum), conditional requests and byte ranges (only the part asked for is read
  from the store);
- ``redirect``: a 302 to a presigned (S3) or temporary (Swift) URL valid
  ``ODOO_ATTACHMENT_URL_EXPIRATION`` seconds, with the attachment's file name and type;
- ``x-accel-redirect``: an empty answer whose ``X-Accel-Redirect`` header hands the
  presigned URL to nginx (``ODOO_ATTACHMENT_X_ACCEL_PREFIX``; see the README).

Code that needs the bytes (image resizing) reads ``stream.data``, loaded on first use;
the answer then is Odoo's own.
"""

import logging
import time
from urllib.parse import urlsplit

import werkzeug.exceptions
import werkzeug.http
from odoo.http import STATIC_CACHE_LONG, Response, Stream, request

from stateless_odoo.errors import ObjectNotFound, StatelessOdooError
from stateless_odoo.storage import content_disposition

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
        if self._data is not None:  # transformed or read: Odoo's own answer
            return super().get_response(
                as_attachment, immutable, content_security_policy, **send_file_kwargs
            )
        if as_attachment is None:
            as_attachment = self.as_attachment
        if immutable is None:
            immutable = self.immutable
        try:
            store, key = self._locate()
            mode = self._settings.serving
            if mode == "stream":
                res = self._streamed(store, key, as_attachment, immutable)
            else:
                from .models.ir_attachment import presigned_urls

                # the store serves on its own domain without the CSP Odoo and the nginx
                # location add: the attachment's own type only (never ?mimetype=), and
                # a type a browser would run (HTML, SVG, XML, JavaScript) as a download
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
                    res = self._redirect(url)
                else:
                    res = self._x_accel(url, as_attachment)
        except ObjectNotFound as exc:
            _logger.error("%s: %s", self._attachment._object_storage_describe(), exc)
            raise werkzeug.exceptions.NotFound() from exc
        except StatelessOdooError as exc:
            _logger.error("%s: %s", self._attachment._object_storage_describe(), exc)
            raise werkzeug.exceptions.ServiceUnavailable() from exc
        res.headers["X-Content-Type-Options"] = "nosniff"
        if content_security_policy:
            res.headers["Content-Security-Policy"] = content_security_policy
        return res

    def _headers(self, as_attachment):
        name = self.download_name or "file"
        return {"Content-Disposition": content_disposition(name, inline=not as_attachment)}

    def _streamed(self, store, key, as_attachment, immutable):
        httprequest = request.httprequest
        etag = self.etag if isinstance(self.etag, str) else None
        if not werkzeug.http.is_resource_modified(
            httprequest.environ, etag=etag, last_modified=self.last_modified
        ):
            res = Response(status=304)
            if etag:
                res.set_etag(etag)
            return res
        byte_range = self._wanted_range(httprequest, etag)
        body = self._small_object(store, key)
        if body is not None:  # from the process's cache, or now in it
            reader = body[slice(*byte_range)] if byte_range else body
            size = len(reader)
        else:
            reader = store.open(key, byte_range=byte_range)
            size = reader.info.size
        res = Response(
            reader,
            status=206 if byte_range else 200,
            mimetype=self.mimetype or "application/octet-stream",
            headers=self._headers(as_attachment),
            direct_passthrough=True,
        )
        res.content_length = size
        if byte_range:
            start, stop = byte_range
            res.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{self.size}"
        res.headers["Accept-Ranges"] = "bytes"
        if etag:
            res.set_etag(etag)
        if self.last_modified:
            res.last_modified = self.last_modified
        self._cache_headers(res, immutable)
        return res

    def _cache_headers(self, res, immutable):
        """As Odoo's ``Stream.get_response``: unique URLs (``immutable``) are cached
        for a year, others for ``max_age``; public only for public streams."""
        max_age = STATIC_CACHE_LONG if immutable else self.max_age
        if max_age is not None and max_age > 0:
            res.cache_control.max_age = max_age
            res.expires = int(time.time() + max_age)
        if self.public and max_age:
            res.cache_control.public = True
        else:
            res.cache_control.private = True
        if immutable:
            res.cache_control["immutable"] = None  # None sets the directive

    def _small_object(self, store, key):
        """The bytes of a small object through the process's cache (None: stream it)."""
        from .models.ir_attachment import object_cache

        cache = object_cache(self._settings)
        url = self._attachment.store_fname
        data = cache.get(url)
        if data is None and cache.accepts(self.size):
            data = store.get_bytes(key)
            cache.put(url, data)
        return data

    def _wanted_range(self, httprequest, etag):
        """``(start, stop)`` of a single satisfiable Range, None for the whole body
        (no Range, several ranges, an If-Range that does not match, an unparsable
        header); 416 for a single range outside the object. Only that part is read
        from the store."""
        if not httprequest.headers.get("Range") or not self.size:
            return None
        ranges = httprequest.range
        if ranges is None or ranges.units != "bytes":
            return None
        if_range = httprequest.headers.get("If-Range")
        if if_range and if_range.strip('"') != etag:
            return None
        if len(ranges.ranges) != 1:
            return None
        start, stop = ranges.ranges[0]
        if stop is None and start < 0 and -start > self.size:
            return (0, self.size)  # a suffix longer than the object: all of it (RFC 9110)
        wanted = ranges.range_for_length(self.size)
        if wanted is None:
            raise werkzeug.exceptions.RequestedRangeNotSatisfiable(length=self.size)
        return wanted

    def _redirect(self, url):
        res = request.redirect(url, code=302, local=False)
        res.headers["Cache-Control"] = "no-store"
        return res

    def _x_accel(self, url, as_attachment):
        parts = urlsplit(url)
        target = f"{self._settings.x_accel_prefix}{parts.scheme}/{parts.netloc}{parts.path}"
        if parts.query:
            target += f"?{parts.query}"
        res = Response(
            status=200,
            mimetype=self.mimetype or "application/octet-stream",
            headers=self._headers(as_attachment),
        )
        res.headers["X-Accel-Redirect"] = target
        res.headers["Content-Length"] = "0"
        res.headers["Cache-Control"] = "private, no-store"
        return res
