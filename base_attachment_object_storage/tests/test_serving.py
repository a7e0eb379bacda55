"""/web/content of attachments in the store: stream, redirect, X-Accel-Redirect."""

import os

import requests
from odoo.tests import HttpCase, tagged

from .common import ObjectStorageMixin


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
                longer = self.url_open(
                    self.url(att), headers={"Range": f"bytes=-{len(self.data) + 500}"}
                )
                self.assertEqual((longer.status_code, longer.content), (206, self.data))
                self.assertEqual(
                    longer.headers["Content-Range"],
                    f"bytes 0-{len(self.data) - 1}/{len(self.data)}",
                )
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

        noise = Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3))
        buffer = io.BytesIO()
        noise.save(buffer, "PNG")
        self.use_location(self.env, "s3")
        att = self.env["ir.attachment"].create(
            {"name": "big.png", "raw": buffer.getvalue(), "mimetype": "image/png"}
        )
        self.assertTrue(att.store_fname.startswith("s3://"))  # above the 50 KB rule
        res = self.url_open(f"/web/image/{att.id}/64x64")
        self.assertEqual(res.status_code, 200)
        self.assertEqual(Image.open(io.BytesIO(res.content)).size, (64, 64))
