"""ir_attachment.location = swift: content in the real Swift through its native API."""

from odoo.addons.base_attachment_object_storage.tests.common import ObjectStorageMixin
from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestAttachmentSwift(ObjectStorageMixin, TransactionCase):
    kinds = ("swift",)

    def test_location_swift(self):
        self.assertIn("swift", self.env["ir.attachment"]._object_storage_kinds())
        self.use_location(self.env, "swift")
        data = self.random_pdf()
        att = self.env["ir.attachment"].create({"name": "a.pdf", "raw": data})
        self.assertTrue(att.store_fname.startswith("swift://"))
        self.assertEqual(self.object_bytes(att.store_fname), data)
        att.invalidate_recordset()
        self.assertEqual(att.raw, data)
