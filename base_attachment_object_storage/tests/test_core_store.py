"""The core package works inside a real Odoo process, against the real object store.

This is the Odoo tier's proof of wiring: the runner (scripts/odoo_tier.py) creates the
database, gives Odoo the services through the environment (AWS_* and SWIFT_*), and the
stores built from that environment talk to the real Swift through both of its APIs.
"""

import os
import uuid

from odoo.tests import TransactionCase, tagged

from stateless_odoo.errors import ObjectNotFound
from stateless_odoo.storage import build_store

from .common import RealServicesMixin


@tagged("post_install", "-at_install")
class TestCoreStoreInOdoo(RealServicesMixin, TransactionCase):
    def test_store_round_trip_through_both_apis(self):
        s3 = build_store("s3", db_name=self.env.cr.dbname)
        swift = build_store("swift", db_name=self.env.cr.dbname)
        self.assertEqual(s3.container, swift.container, "the runner shares one container")
        s3.ensure_container()
        key = f"odoo-tier/{self.env.cr.dbname}/{uuid.uuid4().hex}"
        payload = os.urandom(4096)
        s3.put(key, payload, content_type="application/pdf")
        try:
            self.assertEqual(swift.get_bytes(key), payload)
            self.assertEqual(swift.head(key).content_type, "application/pdf")
        finally:
            swift.delete(key)
        with self.assertRaises(ObjectNotFound):
            s3.get_bytes(key)
