"""ir.attachment in a real Odoo 18 against the real Swift, through its S3 and Swift APIs.

The runner (scripts/odoo_tier.py) gives Odoo AWS_* and SWIFT_* variables naming one
container of the test Swift; every test runs once per kind of store.
"""

import hashlib
import os
import socket
import threading
import time
import uuid
from unittest.mock import patch

from odoo.exceptions import UserError
from odoo.tests import TransactionCase, tagged
from odoo.tools import config

from stateless_odoo.attachments import collection
from stateless_odoo.attachments.stores import is_object_url
from stateless_odoo.errors import StatelessOdooError

from .common import ObjectStorageMixin


@tagged("post_install", "-at_install")
class TestWriteRead(ObjectStorageMixin, TransactionCase):
    def create_pdf(self, data=None, name="report.pdf"):
        return self.env["ir.attachment"].create(
            {"name": name, "raw": data or self.random_pdf(), "mimetype": "application/pdf"}
        )

    def test_content_goes_to_the_store_namespaced_by_database(self):
        for kind in self.kinds:
            with self.subTest(kind=kind):
                self.use_location(self.env, kind)
                data = self.random_pdf()
                att = self.create_pdf(data)
                container = self.store_of[kind].container
                prefix = f"{kind}://{container}/{self.env.cr.dbname}/{att.checksum[:2]}/"
                self.assertEqual(att.store_fname, prefix + att.checksum)
                self.assertFalse(att.db_datas)
                self.assertEqual(self.object_bytes(att.store_fname), data)
                att.invalidate_recordset()
                self.assertEqual(att.raw, data)

    def test_small_images_js_and_css_stay_in_the_database(self):
        self.use_location(self.env, "s3")
        Attachment = self.env["ir.attachment"]
        small = Attachment.create({"name": "i.png", "raw": b"\x89PNG" + b"0" * 100})
        js = Attachment.create(
            {"name": "a.js", "raw": b"x" * 200_000, "mimetype": "application/javascript"}
        )
        big_image = Attachment.create(
            {"name": "big.png", "raw": b"\x89PNG" + os.urandom(60_000), "mimetype": "image/png"}
        )
        self.assertFalse(small.store_fname)
        self.assertFalse(js.store_fname)
        self.assertTrue(big_image.store_fname.startswith("s3://"))
        # the older addons' parameter changes the rule
        self.env["ir.config_parameter"].set_param(
            "ir_attachment.storage.force.database", '{"application/pdf": 0}'
        )
        self.assertFalse(self.create_pdf().store_fname)

    def test_the_same_content_is_uploaded_once(self):
        self.use_location(self.env, "swift")
        data = self.random_pdf()
        first = self.create_pdf(data)
        stores = self.env["ir.attachment"]._object_stores("swift")
        store, _key = stores.locate(first.store_fname)
        calls = []
        put = type(store).put

        def counting_put(this, *args, **kwargs):
            calls.append(args[0])
            return put(this, *args, **kwargs)

        type(store).put = counting_put
        try:
            second = self.create_pdf(data, name="copy.pdf")
        finally:
            type(store).put = put
        self.assertEqual(second.store_fname, first.store_fname)
        self.assertEqual(calls, [])

    def test_a_file_moved_by_a_migration_after_the_snapshot_is_read_from_the_store(self):
        """A transaction older than a migration batch still sees ``ab/<sha1>``, whose
        file the migration removed: the content is read from its object (same key)."""
        self.use_location(self.env, "file")
        data = self.random_pdf()
        att = self.create_pdf(data)
        fname = att.store_fname
        self.assertFalse(is_object_url(fname))
        self.use_location(self.env, "s3")
        store, key, _url = self.env["ir.attachment"]._object_stores("s3").place(att.checksum)
        store.put(key, data)  # what the migration did, then it removed the file
        os.unlink(att._full_path(fname))
        att.invalidate_recordset()
        reader = self.env["ir.attachment"]
        self.assertFalse(os.path.exists(att._full_path(fname)))
        # Odoo's own _file_read would answer b"" for the missing file
        self.assertEqual(reader._file_read(fname), data)
        self.assertEqual(att.raw, data)
        # neither file nor object: Odoo's own answer for a missing file
        store.delete(key)
        att.invalidate_recordset()
        self.assertEqual(att.raw, b"")

    def test_missing_object_is_an_error_naming_the_attachment(self):
        for kind in self.kinds:
            with self.subTest(kind=kind):
                self.use_location(self.env, kind)
                att = self.create_pdf()
                store, key = att._object_stores(kind).locate(att.store_fname)
                store.delete(key)
                att.invalidate_recordset()
                with self.assertRaises(UserError) as err, self.assertLogs(level="ERROR"):
                    att.raw  # noqa: B018
                self.assertIn(f"attachment {att.id}", str(err.exception))

    def test_store_down_during_create_fails_and_writes_nothing(self):
        self.use_location(self.env, "s3")
        count = self.env["ir.attachment"].search_count([])
        with self.s3_down():
            with self.assertRaises(UserError) as err, self.assertLogs(level="ERROR"):
                with self.env.cr.savepoint():
                    self.create_pdf()
        self.assertIn("object store", str(err.exception))
        self.assertEqual(self.env["ir.attachment"].search_count([]), count)

    def test_slow_store_is_bounded_by_the_timeout(self):
        # a store that accepts connections and never answers (a real server cannot be
        # made to hang on demand: this socket plays a stuck store)
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        self.use_location(self.env, "s3")
        started = time.monotonic()
        try:
            with self.environ(
                AWS_HOST=f"http://127.0.0.1:{server.getsockname()[1]}",
                AWS_READ_TIMEOUT="1",
                AWS_MAX_ATTEMPTS="2",
            ):
                with self.assertRaises(UserError), self.assertLogs(level="ERROR"):
                    with self.env.cr.savepoint():
                        self.create_pdf()
        finally:
            server.close()
        # well below Odoo's limit_time_real (120 s by default)
        self.assertLess(time.monotonic() - started, 30)

    def test_wrong_variable_is_named(self):
        self.use_location(self.env, "s3")
        with self.environ(AWS_READ_TIMEOUT="soon"), self.assertRaises(UserError) as err:
            self.create_pdf()
        self.assertIn("AWS_READ_TIMEOUT", str(err.exception))

    def test_the_first_attachment_creates_a_missing_bucket(self):
        """A bucket per database ({db}): a new database's first attachment finds it."""
        for kind, variable in (("s3", "AWS_BUCKETNAME"), ("swift", "SWIFT_WRITE_CONTAINER")):
            with self.subTest(kind=kind):
                name = f"first-write-{uuid.uuid4().hex[:8]}"
                self.use_location(self.env, kind)
                with self.environ(**{variable: name}):
                    store = self.env["ir.attachment"]._object_stores(kind).write_store
                    data = self.random_pdf()
                    try:
                        att = self.create_pdf(data)
                        self.assertTrue(att.store_fname.startswith(f"{kind}://{name}/"))
                        att.invalidate_recordset()
                        self.assertEqual(att.raw, data)
                    finally:
                        keys = [info.key for info in store.list()]
                        store.delete_many(keys)
                        if kind == "s3":
                            store.client.delete_bucket(Bucket=name)
                        else:
                            store.connection.delete_container(name)

    def test_objects_of_another_environment_are_read_never_deleted(self):
        self.use_location(self.env, "s3")
        data = self.random_pdf()
        url, _prod, _key = self.put_in_another_environment(data)
        att = self.env["ir.attachment"].browse(self.insert_pdf_row(self.env, "prod.pdf", url, data))
        self.assertEqual(att.raw, data)
        self.assertFalse(att._object_stores("s3").owns(url))

    def test_kill_switch_keeps_new_content_in_the_database(self):
        self.use_location(self.env, "swift")
        with self.environ(DISABLE_ATTACHMENT_STORAGE="1"):
            att = self.create_pdf()
            self.assertFalse(att.store_fname)
            self.assertTrue(att.db_datas)
            with self.assertRaises(UserError):
                self.env["ir.attachment"]._object_storage_migration()


@tagged("post_install", "-at_install")
class TestCommitted(ObjectStorageMixin, TransactionCase):
    """What needs real commits: garbage collection, migration, the upgrade hook."""

    def tearDown(self):
        with self.committed_env() as env:
            env["ir.attachment"].search([("name", "like", "committed-test-%")]).unlink()
            self.use_location(env, "file")
        super().tearDown()

    def test_unlinked_content_is_deleted_after_commit_only(self):
        data = self.random_pdf()
        with self.committed_env() as env:
            self.use_location(env, "s3")
            att_id = (
                env["ir.attachment"]
                .create({"name": "committed-test-gc", "raw": data, "mimetype": "application/pdf"})
                .id
            )
        with self.committed_env() as env:
            url = env["ir.attachment"].browse(att_id).store_fname
        self.assertTrue(self.object_exists(url))
        # rolled back: the object stays
        with self.registry.cursor() as cr:
            env = self.env(cr=cr)
            env["ir.attachment"].browse(att_id).unlink()
            self.assertTrue(self.object_exists(url), "deleted inside the transaction")
            cr.rollback()
        self.assertTrue(self.object_exists(url))
        with self.committed_env() as env:
            env["ir.attachment"]._object_storage_collect()
        self.assertTrue(self.object_exists(url))
        # committed: collected after the commit
        with self.committed_env() as env:
            env["ir.attachment"].browse(att_id).unlink()
        self.assertFalse(self.object_exists(url))

    def test_force_storage_moves_the_filestore_and_pulls_small_images_back(self):
        for kind in self.kinds:
            with self.subTest(kind=kind):
                with self.committed_env() as env:
                    self.use_location(env, "file")
                    Attachment = env["ir.attachment"]
                    pdf = Attachment.create(
                        {"name": "committed-test-pdf", "raw": self.random_pdf()}
                    )
                    # a field attachment, hidden by search(): migrated too
                    field = Attachment.create(
                        {
                            "name": "committed-test-field",
                            "raw": self.random_pdf(),
                            "res_model": "res.partner",
                            "res_field": "image_1920",
                            "res_id": 1,
                        }
                    )
                    env.cr.execute(
                        "UPDATE ir_attachment SET mimetype = 'application/pdf' WHERE id = %s",
                        (field.id,),
                    )
                    icon = Attachment.create(
                        {"name": "committed-test-icon.png", "raw": b"\x89PNG" + b"1" * 99}
                    )
                    before = {a.id: (a.raw, a.store_fname) for a in pdf | field | icon}
                for fname in (v[1] for v in before.values()):
                    self.assertTrue(os.path.exists(env["ir.attachment"]._full_path(fname)))
                with self.committed_env() as env:
                    self.use_location(env, kind)
                    env["ir.attachment"].force_storage()
                with self.committed_env() as env:
                    after = (
                        env["ir.attachment"].browse(list(before)).with_context(active_test=False)
                    )
                    for att in after:
                        self.assertEqual(att.raw, before[att.id][0])
                    by_name = {a.name: a for a in after}
                    self.assertTrue(by_name["committed-test-pdf"].store_fname.startswith(kind))
                    self.assertTrue(by_name["committed-test-field"].store_fname.startswith(kind))
                    self.assertFalse(by_name["committed-test-icon.png"].store_fname)
                for fname in (v[1] for v in before.values()):
                    self.assertFalse(os.path.exists(env["ir.attachment"]._full_path(fname)))
                with self.committed_env() as env:
                    env["ir.attachment"].browse(list(before)).unlink()

    def test_upgrade_hook_moves_what_modules_wrote_locally(self):
        with self.committed_env() as env:
            self.use_location(env, "file")
            att_id = (
                env["ir.attachment"]
                .create({"name": "committed-test-upgrade", "raw": self.random_pdf()})
                .id
            )
            self.use_location(env, "swift")

        def load_modules(env, update_module):
            # stands for Odoo's load_modules; another addon's override in between
            def other_addon_hook():
                env["ir.attachment"]._register_hook()

            other_addon_hook()

        with self.committed_env() as env:
            load_modules(env, update_module=False)
            self.assertNotIn("://", env["ir.attachment"].browse(att_id).store_fname)
        with self.committed_env() as env:
            load_modules(env, update_module={"sale": 1})
        with self.committed_env() as env:
            self.assertTrue(env["ir.attachment"].browse(att_id).store_fname.startswith("swift"))

    def test_upgrade_job_fails_when_the_store_is_down(self):
        """Files an upgrade wrote locally and could not move: a serving process logs it,
        an upgrade job (--stop-after-init) fails, since its disk is about to go."""
        with self.committed_env() as env:
            self.use_location(env, "file")
            att_id = (
                env["ir.attachment"]
                .create({"name": "committed-test-upgrade-down", "raw": self.random_pdf()})
                .id
            )
            self.use_location(env, "s3")

        def load_modules(env, update_module):
            env["ir.attachment"]._register_hook()

        try:
            with self.s3_down():
                with patch.dict(config.options, stop_after_init=False):  # a serving process
                    with self.committed_env() as env, self.assertLogs(level="ERROR") as logs:
                        load_modules(env, update_module=True)
                self.assertIn("attachment_storage_migrate", "\n".join(logs.output))
                with patch.dict(config.options, stop_after_init=True):
                    with self.committed_env() as env, self.assertLogs(level="ERROR"):
                        with self.assertRaises(StatelessOdooError):
                            load_modules(env, update_module=True)
            with self.committed_env() as env:
                self.assertNotIn("://", env["ir.attachment"].browse(att_id).store_fname)
        finally:
            with self.committed_env() as env:
                env["ir.attachment"].browse(att_id).unlink()

    def test_unlink_racing_a_create_of_the_same_content_keeps_the_object(self):
        data = self.random_pdf()
        with self.committed_env() as env:
            self.use_location(env, "swift")
            att_id = (
                env["ir.attachment"]
                .create({"name": "committed-test-race", "raw": data, "mimetype": "application/pdf"})
                .id
            )
            url = env["ir.attachment"].browse(att_id).store_fname
        creator = self.registry.cursor()  # creates the same content, commits later
        try:
            env_b = self.env(cr=creator)
            copy = env_b["ir.attachment"].create(
                {"name": "committed-test-race-2", "raw": data, "mimetype": "application/pdf"}
            )
            self.assertEqual(copy.store_fname, url)
            env_b.flush_all()
            # the last committed row goes; its collection waits for the creator (SHARE
            # lock): let the creator commit a moment later
            timer = threading.Timer(0.5, creator.commit)
            timer.start()
            with self.committed_env() as env:
                env["ir.attachment"].browse(att_id).unlink()
            timer.join()
        finally:
            creator.close()
        self.assertTrue(self.object_exists(url), "robbed by a concurrent unlink")
        with self.committed_env() as env:
            env["ir.attachment"]._object_storage_collect()
        self.assertTrue(self.object_exists(url))

    def test_a_copy_in_another_environment_deletes_nothing_there(self):
        data = self.random_pdf()
        url, prod, key = self.put_in_another_environment(data)
        with self.committed_env() as env:
            self.use_location(env, "s3")
            att_id = self.insert_pdf_row(env, "committed-test-prod", url, data)
        with self.committed_env() as env:
            env["ir.attachment"].browse(att_id).unlink()
        with self.committed_env() as env:
            env["ir.attachment"]._object_storage_collect()
        self.assertTrue(prod.exists(key))
        prod.delete(key)

    def test_objects_of_the_older_addons_are_collected_only_when_allowed(self):
        # the older addons' layout: s3://<bucket>/<sha1>, in no database's namespace
        store = self.store_of["s3"]
        urls = {}
        for allowed in ("0", "1"):
            data = self.random_pdf()
            checksum = hashlib.sha1(data).hexdigest()  # noqa: S324 - Odoo's checksum
            store.put(checksum, data)
            url = urls[allowed] = f"s3://{store.container}/{checksum}"
            with self.environ(ODOO_ATTACHMENT_GC_UNNAMESPACED=allowed):
                with self.committed_env() as env:
                    self.use_location(env, "s3")
                    att_id = self.insert_pdf_row(env, "committed-test-older", url, data)
                    att = env["ir.attachment"].browse(att_id)
                    self.assertEqual(att.raw, data)  # read as the older addons wrote it
                with self.committed_env() as env:
                    env["ir.attachment"].browse(att.id).unlink()
                with self.committed_env() as env:
                    env["ir.attachment"]._object_storage_collect()
        self.assertTrue(self.object_exists(urls["0"]), "another database may share it")
        self.assertFalse(self.object_exists(urls["1"]))
        store.delete(urls["0"].rpartition("/")[2])

    def test_two_migrations_at_once(self):
        with self.registry.cursor() as holder:
            holder.execute(
                "SELECT pg_advisory_lock(%s, %s)",
                (collection.LOCK_NAMESPACE, collection.MIGRATION_LOCK),
            )
            try:
                with self.committed_env() as env:
                    self.use_location(env, "s3")
                    with self.assertRaisesRegex(UserError, "another attachment migration"):
                        env["ir.attachment"].force_storage()
            finally:
                holder.execute(
                    "SELECT pg_advisory_unlock(%s, %s)",
                    (collection.LOCK_NAMESPACE, collection.MIGRATION_LOCK),
                )
