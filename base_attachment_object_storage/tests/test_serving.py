"""/web/content of attachments in the store: stream, redirect, X-Accel-Redirect."""

import base64

import requests
from odoo.tests import HttpCase, tagged

from .common import ObjectStorageMixin, noise_png


@tagged("post_install", "-at_install")
class TestServing(ObjectStorageMixin, HttpCase):
    def setUp(self):
        super().setUp()
        self.data = self.random_pdf(300_000)
        self.attachments = {}
        for kind in self.kinds:
            self.use_location(self.env, kind)
            self.attachments[kind] = self.env["ir.attachment"].create(
                {"name": f"été {kind}.pdf", "raw": self.data, "mimetype": "application/pdf"}
            )
        self.authenticate("admin", "admin")

    def url(self, att, download=False):
        return f"/web/content/{att.id}" + ("?download=true" if download else "")

    def test_stream_mode_streams_with_ranges_and_etag(self):
        for kind, att in self.attachments.items():
            with self.subTest(kind=kind), self.environ(ODOO_ATTACHMENT_SERVING="stream"):
                res = self.url_open(self.url(att, download=True))
                self.assertEqual(res.status_code, 200)
                self.assertEqual(res.content, self.data)
                self.assertEqual(res.headers["Content-Type"], "application/pdf")
                self.assertIn("attachment;", res.headers["Content-Disposition"])
                self.assertIn("UTF-8''%C3%A9t%C3%A9", res.headers["Content-Disposition"])
                self.assertEqual(res.headers["ETag"].strip('"'), att.checksum)
                part = self.url_open(self.url(att), headers={"Range": "bytes=1000-1999"})
                self.assertEqual(part.status_code, 206)
                self.assertEqual(part.content, self.data[1000:2000])
                self.assertEqual(part.headers["Content-Range"], f"bytes 1000-1999/{len(self.data)}")
                tail = self.url_open(self.url(att), headers={"Range": "bytes=-100"})
                self.assertEqual((tail.status_code, tail.content), (206, self.data[-100:]))
                # a suffix longer than the object: what Odoo answers from its filestore
                # (werkzeug 2.2 refuses it; TestSameAnswerAsTheFilestore compares)
                longer = self.url_open(
                    self.url(att), headers={"Range": f"bytes=-{len(self.data) + 500}"}
                )
                self.assertEqual(longer.status_code, 416)
                self.assertIn("private", res.headers["Cache-Control"])
                unique = self.url_open(f"/web/content/{att.id}?unique={att.checksum}")
                self.assertEqual(unique.status_code, 200)
                self.assertIn("immutable", unique.headers["Cache-Control"])
                self.assertIn("max-age=31536000", unique.headers["Cache-Control"])
                beyond = self.url_open(
                    self.url(att), headers={"Range": f"bytes={len(self.data) + 10}-"}
                )
                self.assertEqual(beyond.status_code, 416)
                stale = self.url_open(
                    self.url(att), headers={"Range": "bytes=0-9", "If-Range": '"other"'}
                )
                self.assertEqual((stale.status_code, stale.content), (200, self.data))
                cached = self.url_open(
                    self.url(att), headers={"If-None-Match": f'"{att.checksum}"'}
                )
                self.assertEqual(cached.status_code, 304)
                self.assertEqual(cached.content, b"")

    def test_redirect_mode_gives_a_short_lived_url_after_the_access_check(self):
        for kind, att in self.attachments.items():
            with self.subTest(kind=kind), self.environ(ODOO_ATTACHMENT_SERVING="redirect"):
                res = self.url_open(self.url(att, download=True), allow_redirects=False)
                self.assertEqual(res.status_code, 302)
                location = res.headers["Location"]
                fetched = requests.get(location, timeout=10)
                self.assertEqual(fetched.status_code, 200)
                self.assertEqual(fetched.content, self.data)
                self.assertIn("attachment", fetched.headers["Content-Disposition"])
                # the process reuses the signed URL (for half its lifetime)
                again = self.url_open(self.url(att, download=True), allow_redirects=False)
                self.assertEqual(again.headers["Location"], location)
                inline = self.url_open(self.url(att), allow_redirects=False)
                self.assertNotEqual(inline.headers["Location"], location)
        # a user who cannot read the record gets no URL, not even the one the process
        # keeps for it: the access check comes first
        private = self.attachments["s3"]
        private.write({"res_model": "res.users", "res_id": self.env.ref("base.user_admin").id})
        self.authenticate(None, None)
        with self.environ(ODOO_ATTACHMENT_SERVING="redirect"):
            res = self.url_open(self.url(private, download=True), allow_redirects=False)
        self.assertNotEqual(res.status_code, 302)
        self.assertNotIn("Location", res.headers)

    def test_redirect_mode_never_serves_an_active_type_inline_from_the_store(self):
        """The store's domain has no CSP: /web/content/<id>?mimetype=text/html made it
        serve an uploaded file inline as HTML."""
        page = b"<html><script>alert(document.domain)</script></html>"
        self.use_location(self.env, "s3")
        html = self.env["ir.attachment"].create(
            {"name": "page.html", "raw": page, "mimetype": "text/html"}
        )
        pdf = self.attachments["s3"]
        with self.environ(ODOO_ATTACHMENT_SERVING="redirect"):
            for url, disposition, content_type in (
                (f"/web/content/{html.id}", "attachment", "text/html"),
                (f"/web/content/{pdf.id}?mimetype=text/html", "inline", "application/pdf"),
            ):
                res = self.url_open(url, allow_redirects=False)
                self.assertEqual(res.status_code, 302, url)
                fetched = requests.get(res.headers["Location"], timeout=10)
                self.assertTrue(fetched.headers["Content-Disposition"].startswith(disposition))
                self.assertTrue(fetched.headers["Content-Type"].startswith(content_type))

    def test_x_accel_redirect_mode_hands_the_url_to_nginx(self):
        att = self.attachments["swift"]
        with self.environ(
            ODOO_ATTACHMENT_SERVING="x-accel-redirect",
            ODOO_ATTACHMENT_X_ACCEL_PREFIX="/_store/",
        ):
            res = self.url_open(self.url(att))
        self.assertEqual(res.status_code, 200)
        target = res.headers["X-Accel-Redirect"]
        self.assertTrue(target.startswith("/_store/http/127.0.0.1:"), target)
        self.assertEqual(res.content, b"")
        # what nginx does with it: fetch the URL it names
        scheme, _slash, rest = target[len("/_store/") :].partition("/")
        fetched = requests.get(f"{scheme}://{rest}", timeout=10)
        self.assertEqual(fetched.content, self.data)

    def test_missing_object_is_a_404_not_an_empty_200(self):
        for kind, att in self.attachments.items():
            with self.subTest(kind=kind):
                store, key = att._object_stores(kind).locate(att.store_fname)
                store.delete(key)
                with self.assertLogs(level="ERROR"):
                    res = self.url_open(self.url(att))
                self.assertEqual(res.status_code, 404)

    def test_small_objects_are_served_from_the_process_cache(self):
        att = self.attachments["s3"]
        with self.environ(ODOO_ATTACHMENT_CACHE_SIZE="1M"):
            first = self.url_open(self.url(att))
            store, key = att._object_stores("s3").locate(att.store_fname)
            store.delete(key)  # behind Odoo's back: the cached copy still serves
            again = self.url_open(self.url(att), headers={"Range": "bytes=10-19"})
            self.assertEqual((first.content, again.content), (self.data, self.data[10:20]))
        with self.environ(ODOO_ATTACHMENT_CACHE_SIZE="0"), self.assertLogs(level="ERROR"):
            self.assertEqual(self.url_open(self.url(att)).status_code, 404)

    def test_resized_image_from_the_store(self):
        import io

        from PIL import Image

        self.use_location(self.env, "s3")
        att = self.env["ir.attachment"].create(
            {"name": "big.png", "raw": noise_png(200), "mimetype": "image/png"}
        )
        self.assertTrue(att.store_fname.startswith("s3://"))  # above the 50 KB rule
        res = self.url_open(f"/web/image/{att.id}/64x64")
        self.assertEqual(res.status_code, 200)
        self.assertEqual(Image.open(io.BytesIO(res.content)).size, (64, 64))


#: headers each answer has its own of; times are compared to a few seconds
OWN_HEADERS = {"Date", "Set-Cookie"}
TIMES = {"Expires", "Last-Modified"}


@tagged("post_install", "-at_install")
class TestSameAnswerAsTheFilestore(ObjectStorageMixin, HttpCase):
    """The same attachment served by Odoo from its filestore and by the suite from the
    store, in stream mode (the default): the same status, body and headers."""

    kinds = ("s3",)

    def setUp(self):
        super().setUp()
        self.data = self.random_pdf(200_000)
        self.image = noise_png(200)
        self.pairs = {}  # name: (in the filestore, in the store)
        for name, raw, mimetype in (
            ("report.pdf", self.data, "application/pdf"),
            ("été ünï €.pdf", self.data, "application/pdf"),
            ('a "quoted";\tname\\.pdf', self.data, "application/pdf"),
            ("noise.png", self.image, "image/png"),
        ):
            pair = []
            for location in ("file", "s3"):
                self.use_location(self.env, location)
                pair.append(
                    self.env["ir.attachment"].create(
                        {"name": name, "raw": raw, "mimetype": mimetype}
                    )
                )
            self.assertFalse(pair[0].store_fname.startswith("s3://"))
            self.assertTrue(pair[1].store_fname.startswith("s3://"))
            self.pairs[name] = pair
        partners = []
        for location in ("file", "s3"):
            self.use_location(self.env, location)
            partners.append(
                self.env["res.partner"].create(
                    {"name": "noise", "image_1920": base64.b64encode(self.image)}
                )
            )
        self.partners = partners
        self.authenticate("admin", "admin")

    def assertSameAnswer(self, file_url, store_url, headers=None):
        from email.utils import parsedate_to_datetime

        answers = [self.url_open(url, headers=headers, allow_redirects=False)
                   for url in (file_url, store_url)]  # fmt: skip
        local, stored = answers
        what = f"{store_url} {headers or ''}"
        self.assertEqual(local.status_code, stored.status_code, what)
        self.assertEqual(local.content, stored.content, what)
        names = [{n for n in a.headers if n not in OWN_HEADERS} for a in answers]
        self.assertEqual(names[0], names[1], what)
        for name in names[0]:
            if name in TIMES:
                apart = parsedate_to_datetime(local.headers[name]) - parsedate_to_datetime(
                    stored.headers[name]
                )
                self.assertLess(abs(apart.total_seconds()), 120, f"{name} of {what}")
            else:
                self.assertEqual(local.headers[name], stored.headers[name], f"{name} of {what}")
        return stored

    def test_content_and_image_urls(self):
        for cache in ("0", "1M"):  # streamed from the store / from the process's cache
            with self.environ(ODOO_ATTACHMENT_SERVING="stream", ODOO_ATTACHMENT_CACHE_SIZE=cache):
                for name, (local, stored) in self.pairs.items():
                    for query in (
                        "",
                        "?download=true",
                        "?download=0",
                        f"?unique={local.checksum}",
                        "?nocache=1",
                        f"?download=true&unique={local.checksum}&nocache=1",
                    ):
                        with self.subTest(cache=cache, name=name, query=query):
                            self.assertSameAnswer(
                                f"/web/content/{local.id}{query}",
                                f"/web/content/{stored.id}{query}",
                            )
                            self.assertSameAnswer(
                                f"/web/image/{local.id}{query}", f"/web/image/{stored.id}{query}"
                            )
                local, stored = self.pairs["noise.png"]
                self.assertSameAnswer(
                    f"/web/image/{local.id}/64x64", f"/web/image/{stored.id}/64x64"
                )
                for path in ("/web/content/res.partner/%d/image_1920",
                             "/web/image/res.partner/%d/image_1920/32x32"):  # fmt: skip
                    with self.subTest(cache=cache, url=path):
                        self.assertSameAnswer(*(path % p.id for p in self.partners))

    def test_ranges_and_conditional_requests(self):
        local, stored = self.pairs["été ünï €.pdf"]
        size = len(self.data)
        for cache in ("0", "1M"):
            with self.environ(ODOO_ATTACHMENT_SERVING="stream", ODOO_ATTACHMENT_CACHE_SIZE=cache):
                for headers in (
                    {"Range": "bytes=1000-1999"},
                    {"Range": "bytes=-100"},
                    {"Range": f"bytes=-{size + 500}"},
                    {"Range": f"bytes={size - 10}-"},
                    {"Range": f"bytes={size + 10}-"},
                    {"Range": "bytes=0-9,20-29"},
                    {"Range": "bytes=0-9", "If-Range": '"other"'},
                    {"Range": "bytes=0-9", "If-Range": f'"{local.checksum}"'},
                    {"If-None-Match": f'"{local.checksum}"'},
                    {"If-None-Match": '"other"'},
                    {"If-Modified-Since": "Thu, 01 Jan 2099 00:00:00 GMT"},
                ):
                    with self.subTest(cache=cache, headers=headers):
                        for query in ("", "?download=true"):
                            self.assertSameAnswer(
                                f"/web/content/{local.id}{query}",
                                f"/web/content/{stored.id}{query}",
                                headers,
                            )


@tagged("post_install", "-at_install")
class TestStoreDownWhileReading(ObjectStorageMixin, HttpCase):
    """A store that is down is not the user's error, nor a final one."""

    kinds = ("s3",)

    def setUp(self):
        super().setUp()
        self.use_location(self.env, "s3")
        self.image = self.env["ir.attachment"].create({"name": "noise.png", "raw": noise_png(200)})
        self.assertTrue(self.image.store_fname.startswith("s3://"))
        self.authenticate("admin", "admin")

    def test_http_answers_503_never_a_cached_placeholder(self):
        image = self.image
        with self.s3_down(), self.assertLogs(level="ERROR"):
            for url in (
                # Odoo answered its placeholder here: 200, cached for a year
                f"/web/image/{image.id}/300x300?unique={image.checksum}",
                f"/web/image/{image.id}?unique={image.checksum}",
                f"/web/content/{image.id}?download=true",
            ):
                with self.subTest(url=url):
                    res = self.url_open(url)
                    self.assertEqual(res.status_code, 503)
                    self.assertEqual(res.headers.get("Retry-After"), "5")
                    cache_control = res.headers.get("Cache-Control", "")
                    self.assertNotIn("max-age", cache_control)
                    self.assertNotIn("immutable", cache_control)
        # the store back: the same URL answers the image
        res = self.url_open(f"/web/image/{image.id}/300x300?unique={image.checksum}")
        self.assertEqual(res.status_code, 200)
        self.assertEqual(res.headers["Content-Type"], "image/png")

    def test_orm_reads_raise_a_temporary_error_a_missing_object_a_user_error(self):
        from odoo.exceptions import UserError

        from ..exceptions import ObjectStoreUnavailable

        image = self.image
        with self.s3_down(), self.assertLogs(level="ERROR"):
            image.invalidate_recordset()
            with self.assertRaises(ObjectStoreUnavailable) as caught:
                image.raw  # noqa: B018
        self.assertNotIsInstance(caught.exception, UserError)
        self.assertIn(f"attachment {image.id} (noise.png)", caught.exception.description)
        store, key = image._object_stores("s3").locate(image.store_fname)
        store.delete(key)
        image.invalidate_recordset()
        with self.environ(ODOO_ATTACHMENT_CACHE_SIZE="0"), self.assertLogs(level="ERROR"):
            with self.assertRaises(UserError) as caught:
                image.raw  # noqa: B018
            self.assertIn("is missing from the object store", str(caught.exception))
            res = self.url_open(f"/web/content/{image.id}")
        self.assertEqual(res.status_code, 404)
