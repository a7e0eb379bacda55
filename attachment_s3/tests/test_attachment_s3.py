"""ir_attachment.location = s3: content in the real Swift through its S3 API."""

from odoo.addons.base_attachment_object_storage.tests.common import ObjectStorageMixin
from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestAttachmentS3(ObjectStorageMixin, TransactionCase):
    kinds = ("s3",)

    def test_location_s3(self):
        self.assertIn("s3", self.env["ir.attachment"]._object_storage_kinds())
        self.use_location(self.env, "s3")
        data = self.random_pdf()
        att = self.env["ir.attachment"].create({"name": "a.pdf", "raw": data})
        self.assertTrue(att.store_fname.startswith("s3://"))
        self.assertEqual(self.object_bytes(att.store_fname), data)
        att.invalidate_recordset()
        self.assertEqual(att.raw, data)
