"""A database's whole life with its objects, through Odoo's own ``odoo db`` commands (the
database manager calls the same functions): a zip dump that restores into plain Odoo
with every attachment, a restore with the suite that leaves nothing on local disk, a
duplicate with objects of its own, a rename, a drop whose objects go after the retention
and never a neighbour's; a pg_dump restored after an unlink still reads its objects
within the retention."""

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile

import odoo
from odoo.modules.registry import Registry
from odoo.tests import TransactionCase, tagged
from odoo.tools import config

from stateless_odoo.attachments import collection, lifecycle
from stateless_odoo.storage import parse_object_url

from .. import lifecycle as odoo_lifecycle
from .common import ObjectStorageMixin


def sha1(data):
    return hashlib.sha1(data).hexdigest()  # noqa: S324 - Odoo's attachment checksum


@tagged("post_install", "-at_install")
class TestDatabaseLife(ObjectStorageMixin, TransactionCase):
    kinds = ("s3",)

    @property
    def kind(self):
        return self.kinds[0]

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="stateless-life-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.databases = []
        self.addCleanup(lambda: self.drop_databases(self.databases))
        with self.committed_env() as env:
            self.use_location(env, self.kind)
            self.contents = {
                "life-pdf-1": self.random_pdf(200_000),
                "life-pdf-2": self.random_pdf(3_000_000),
            }
            self.ids = {
                name: env["ir.attachment"].create({"name": name, "raw": data}).id
                for name, data in self.contents.items()
            }
            small = b"GIF89a" + os.urandom(100)  # kept in the database by the rule
            self.contents["life-small"] = small
            self.ids["life-small"] = (
                env["ir.attachment"]
                .create({"name": "life-small", "raw": small, "mimetype": "image/gif"})
                .id
            )

    def tearDown(self):
        with self.committed_env() as env:
            env["ir.attachment"].browse(list(self.ids.values())).exists().unlink()
            self.use_location(env, "file")
        super().tearDown()

    # -- helpers ----------------------------------------------------------------------------

    def odoo_db(self, *args, suite=True, env=None):
        """``odoo db ...``: with the suite's addons path first (its commands' discovery
        imports the addons, which put the lifecycle in place), or plain Odoo."""
        odoo_bin = os.path.join(os.path.dirname(sys.executable), "odoo")
        command = [odoo_bin]
        if suite:
            command.append(f"--addons-path={config['addons_path']}")
        command += ["db", "--data-dir", self.data_dir(suite)]
        for option in ("db_host", "db_port", "db_user"):
            if config.get(option):
                command += [f"--{option}", str(config[option])]
        result = subprocess.run(
            [*command, *args],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, **(env or {})},
            check=False,
        )
        self.assertEqual(result.returncode, 0, f"odoo db {args}: {result.stdout}{result.stderr}")
        return result

    def data_dir(self, suite):
        return config["data_dir"] if suite else os.path.join(self.tmp, "plain-data")

    def new_name(self, what):
        name = f"{self.env.cr.dbname}_{what}_{uuid.uuid4().hex[:6]}"
        self.databases.append(name)
        return name

    def rows(self, db_name):
        with odoo.sql_db.db_connect(db_name).cursor() as cr:
            cr.execute(
                "SELECT name, store_fname, checksum FROM ir_attachment WHERE name LIKE 'life-%'"
            )
            rows = {name: (fname, checksum) for name, fname, checksum in cr.fetchall()}
        odoo.sql_db.close_db(db_name)
        return rows

    def read_through_the_suite(self, db_name):
        """The SHA-1 of every attachment's content, read by the suite in ``db_name``."""
        with Registry(db_name).cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
            found = env["ir.attachment"].search([("name", "like", "life-%")])
            return {att.name: sha1(att.raw) for att in found}

    @property
    def checksums(self):
        return {name: sha1(data) for name, data in self.contents.items()}

    def forget(self, db_name):
        """Close this process's registry and connections of ``db_name`` (another
        process is about to rename or drop it)."""
        Registry.delete(db_name)
        odoo.sql_db.close_db(db_name)

    def object_keys(self, namespace):
        """The keys of this test's objects in ``namespace`` (the database's own, made
        while its modules were installed, are there too)."""
        store = self.store_of[self.kind]
        ours = {sha1(self.contents[name]) for name in ("life-pdf-1", "life-pdf-2")}
        return {
            info.key for info in store.list(f"{namespace}/") if info.key.rpartition("/")[2] in ours
        }

    # -- the life -------------------------------------------------------------------------------

    def test_a_database_life_keeps_every_attachment(self):
        db = self.env.cr.dbname
        backup = os.path.join(self.tmp, "backup.zip")
        self.odoo_db("dump", db, backup)
        # the database manager's and XML-RPC's db.dump: the same zip
        managed = io.BytesIO(base64.b64decode(odoo.service.db.exp_dump(db, "zip")))
        for archive in (zipfile.ZipFile(backup), zipfile.ZipFile(managed)):
            with archive:
                for name in ("life-pdf-1", "life-pdf-2"):
                    data = self.contents[name]
                    entry = f"filestore/{sha1(data)[:2]}/{sha1(data)}"
                    self.assertEqual(archive.read(entry), data)
                self.assertEqual(json.loads(archive.read("manifest.json"))["db_name"], db)

        # plain Odoo (no suite on its addons path, none loaded) restores it whole
        plain = self.new_name("plain")
        self.odoo_db("load", plain, backup, suite=False)
        filestore = os.path.join(self.data_dir(False), "filestore", plain)
        for name, (fname, checksum) in self.rows(plain).items():
            if name == "life-small":
                self.assertFalse(fname)  # in the database, as in the source
                continue
            self.assertEqual(fname, f"{checksum[:2]}/{checksum}")
            with open(os.path.join(filestore, fname), "rb") as content:
                self.assertEqual(content.read(), self.contents[name])

        # with the suite: the files go to the target's namespace, none stays local
        restored = self.new_name("restored")
        self.odoo_db("load", restored, backup)
        for name, (fname, checksum) in self.rows(restored).items():
            if name != "life-small":
                self.assertEqual(
                    parse_object_url(fname)[2], f"{restored}/{checksum[:2]}/{checksum}"
                )
        local = os.path.join(config["data_dir"], "filestore", restored)
        self.assertFalse([files for _d, _s, files in os.walk(local) if files])
        self.assertEqual(self.read_through_the_suite(restored), self.checksums)

        # a duplicate has objects of its own: the source's collection cannot take them
        copy = self.new_name("copy")
        self.forget(restored)
        self.odoo_db("duplicate", restored, copy)
        for name, (fname, _c) in self.rows(copy).items():
            if name != "life-small":
                self.assertIn(f"/{copy}/", fname)
        with Registry(restored).cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
            env["ir.attachment"].search([("name", "like", "life-%")]).unlink()
        with Registry(restored).cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
            env["ir.attachment"]._gc_object_storage()  # retention 0 in the tier
        self.assertFalse(self.object_keys(restored))
        self.assertEqual(self.read_through_the_suite(copy), self.checksums)

        # a rename keeps every attachment readable, under the new name's namespace
        renamed = self.new_name("renamed")
        self.forget(copy)
        self.odoo_db("rename", copy, renamed)
        self.assertEqual(self.read_through_the_suite(renamed), self.checksums)
        for name, (fname, _c) in self.rows(renamed).items():
            if name != "life-small":
                self.assertIn(f"/{renamed}/", fname)
        store = self.store_of[self.kind]
        self.assertTrue(store.exists(f"{lifecycle.MARKERS}{copy}"))

        # a drop: its objects go after the retention, a neighbour's never
        self.forget(renamed)
        self.odoo_db("drop", renamed)
        self.assertTrue(store.exists(f"{lifecycle.MARKERS}{renamed}"))
        self.assertEqual(len(self.object_keys(renamed)), 2)
        with self.environ(ODOO_ATTACHMENT_GC_RETENTION="1d"):
            self.env["ir.attachment"]._object_storage_purge_dropped()
            self.assertEqual(len(self.object_keys(renamed)), 2)  # within the retention
        self.env["ir.attachment"]._object_storage_purge_dropped()  # retention 0
        self.assertFalse(self.object_keys(renamed))
        self.assertFalse(self.object_keys(copy))
        self.assertFalse(store.exists(f"{lifecycle.MARKERS}{renamed}"))
        for name in ("life-pdf-1", "life-pdf-2"):  # this database's own, untouched
            data = self.contents[name]
            self.assertTrue(store.exists(f"{db}/{sha1(data)[:2]}/{sha1(data)}"))

    def test_a_backup_restored_after_an_unlink_reads_its_objects_within_the_retention(self):
        db = self.env.cr.dbname
        dump = os.path.join(self.tmp, "before-unlink.dump")
        with open(dump, "wb") as out:
            odoo.service.db.dump_db(db, out, "dump")  # pg_dump's own format
        with self.environ(ODOO_ATTACHMENT_GC_RETENTION="1h"), self.committed_env() as env:
            env["ir.attachment"].browse(self.ids["life-pdf-1"]).unlink()
            env.cr.commit()
            env["ir.attachment"]._gc_object_storage()
        restored = self.new_name("pitr")
        odoo.service.db.restore_db(restored, dump)
        self.assertEqual(self.read_through_the_suite(restored), self.checksums)
        # and it has copies of its own: the source's collection cannot take them away
        for name, (fname, _c) in self.rows(restored).items():
            if name != "life-small":
                self.assertIn(f"/{restored}/", fname)
        # past the retention the object goes: the backup is older than the retention
        with self.committed_env() as env:
            env.cr.execute(
                f"UPDATE {collection.TABLE} SET unnamed_at = unnamed_at - interval '2 hours'"  # noqa: S608
            )
        with self.environ(ODOO_ATTACHMENT_GC_RETENTION="1h"), self.committed_env() as env:
            env["ir.attachment"]._gc_object_storage()
        data = self.contents["life-pdf-1"]
        self.assertFalse(self.store_of[self.kind].exists(f"{db}/{sha1(data)[:2]}/{sha1(data)}"))
        del self.ids["life-pdf-1"]

    def test_a_zip_that_odoo_would_restore_wrongly_creates_nothing(self):
        bad = os.path.join(self.tmp, "outside.zip")
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("dump.sql", "SELECT 1;")
            archive.writestr("manifest.json", "{}")
            archive.writestr("../../escape", "x")
        target = self.new_name("refused")
        with self.assertRaisesRegex(Exception, "outside filestore/"):
            odoo.service.db.restore_db(target, bad)
        self.assertFalse(odoo.service.db.exp_db_exist(target))

    def test_a_restore_whose_store_fails_leaves_no_database(self):
        backup = os.path.join(self.tmp, "backup.zip")
        with open(backup, "wb") as out:
            odoo.service.db.dump_db(self.env.cr.dbname, out, "zip")
        target = self.new_name("storedown")
        down = {
            "AWS_HOST": "http://127.0.0.1:9",
            "AWS_MAX_ATTEMPTS": "1",
            "SWIFT_AUTH_URL": "http://127.0.0.1:9/auth/v1.0",
            "SWIFT_MAX_ATTEMPTS": "1",
        }
        with self.environ(**down), self.assertLogs(level="ERROR") as logs:
            with self.assertRaises(Exception):  # noqa: B017 - the store's error, as it is
                odoo.service.db.restore_db(target, backup)
        self.assertFalse(odoo.service.db.exp_db_exist(target), logs.output)
        self.assertIn(f"RESTORE DB of {target} failed: undone", "\n".join(logs.output))

    def test_the_lifecycle_is_in_place_in_this_process_and_in_odoo_db(self):
        for name, wrapper in odoo_lifecycle.WRAPPERS.items():
            self.assertIs(getattr(odoo.service.db, name), wrapper)
            self.assertIs(getattr(odoo.cli.db, name), wrapper)


@tagged("post_install", "-at_install")
class TestDatabaseLifeSwift(TestDatabaseLife):
    """The same life through Swift's own API."""

    kinds = ("swift",)
    allow_inherited_tests_method = True  # Odoo runs only a class's own test methods
