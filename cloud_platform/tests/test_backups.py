"""``odoo cloud_platform backup|restore`` against the real store: a backup streamed into
an S3 key, killed in the middle (no object that looks complete) and run again; an
existing key refused; a restore from that key, killed in the middle and run again, with
every attachment in the target's store."""

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import odoo
from odoo.addons.base_attachment_object_storage import lifecycle
from odoo.addons.base_attachment_object_storage.tests.common import ObjectStorageMixin
from odoo.modules.registry import Registry
from odoo.tests import TransactionCase, tagged
from odoo.tools import config


def sha1(data):
    return hashlib.sha1(data).hexdigest()  # noqa: S324 - Odoo's attachment checksum


@tagged("post_install", "-at_install")
class TestBackupCommands(ObjectStorageMixin, TransactionCase):
    kinds = ("s3",)

    def setUp(self):
        super().setUp()
        self.databases = []
        self.addCleanup(lambda: self.drop_databases(self.databases))
        with self.committed_env() as env:
            self.use_location(env, "s3")
            # large enough that the upload and the restore take a moment to kill
            self.contents = {f"backup-{i}": os.urandom(40 * 1024 * 1024) for i in range(2)}
            self.contents["backup-small"] = self.random_pdf(50_000)
            self.ids = [
                env["ir.attachment"].create({"name": name, "raw": data}).id
                for name, data in self.contents.items()
            ]
        self.store = self.store_of["s3"]
        self.key = f"backups/{uuid.uuid4().hex}.zip"
        self.url = f"s3://{self.store.container}/{self.key}"
        self.addCleanup(self.store.delete, self.key)

    def tearDown(self):
        with self.committed_env() as env:
            env["ir.attachment"].browse(self.ids).exists().unlink()
            self.use_location(env, "file")
        super().tearDown()

    def command(self, action, *args, database=None):
        odoo_bin = os.path.join(os.path.dirname(sys.executable), "odoo")
        command = [odoo_bin, f"--addons-path={config['addons_path']}", "cloud_platform", action]
        command += ["-d", database or self.env.cr.dbname, f"--data-dir={config['data_dir']}"]
        for option in ("db_host", "db_port", "db_user"):
            if config.get(option):
                command += [f"--{option}", str(config[option])]
        return [*command, *args]

    def run_command(self, action, *args, database=None):
        return subprocess.run(
            self.command(action, *args, database=database),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def kill_when(self, action, args, database, ready):
        """Start the command, SIGKILL it once ``ready()``; fails if it ended first."""
        proc = subprocess.Popen(
            self.command(action, *args, database=database),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 300
            while proc.poll() is None and time.monotonic() < deadline:
                if ready():
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.02)
        finally:
            proc.wait(60)
        self.assertEqual(proc.returncode, -signal.SIGKILL, f"{action} ended before the kill")

    def uploading(self):
        answer = self.store.client.list_multipart_uploads(Bucket=self.store.container)
        return any(upload["Key"] == self.key for upload in answer.get("Uploads", []))

    def checksums(self, db_name):
        with Registry(db_name).cursor() as cr:
            env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
            found = env["ir.attachment"].search([("name", "like", "backup-%")])
            result = {att.name: (sha1(att.raw), att.store_fname) for att in found}
        Registry.delete(db_name)
        odoo.sql_db.close_db(db_name)
        return result

    def test_backup_to_a_key_and_restore_from_it_killed_and_run_again(self):
        self.kill_when("backup", ["--to", self.url], None, self.uploading)
        self.assertFalse(self.store.exists(self.key, newest=True))

        done = self.run_command("backup", "--to", self.url)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn(f"-> {self.url}", done.stdout)
        self.assertTrue(self.store.exists(self.key))
        again = self.run_command("backup", "--to", self.url)
        self.assertEqual(again.returncode, 2, again.stderr)
        self.assertIn("exists", again.stderr)

        target = f"{self.env.cr.dbname}_fromkey"
        self.databases += [target, f"{target}-restoring"]

        def staging():
            return odoo.service.db.exp_db_exist(f"{target}-restoring")

        self.kill_when("restore", ["--from", self.url], target, staging)
        done = self.run_command("restore", "--from", self.url, database=target)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertFalse(odoo.service.db.exp_db_exist(f"{target}-restoring"))
        found = self.checksums(target)
        for name, data in self.contents.items():
            checksum, fname = found[name]
            self.assertEqual(checksum, sha1(data))
            self.assertTrue(fname.startswith(f"s3://{self.store.container}/{target}/"))
        local = os.path.join(config["data_dir"], "filestore", target)
        self.assertFalse([files for _d, _s, files in os.walk(local) if files])

        refused = self.run_command("restore", "--from", self.url, database=target)
        self.assertEqual(refused.returncode, 2)
        self.assertIn("exists", refused.stderr)

    def test_a_restore_stopped_after_its_rename_finishes_when_run_again(self):
        target = f"{self.env.cr.dbname}_pending"
        self.databases += [target, f"{target}-restoring"]
        with tempfile.NamedTemporaryFile(suffix=".zip") as backup:
            odoo.service.db.dump_db(self.env.cr.dbname, backup, "zip")
            backup.flush()
            self.assertEqual(lifecycle.restore_from(target, backup.name), "restored")
            lifecycle._set_pending(target, "zip")  # as a restore killed after its rename
            self.assertEqual(lifecycle.restore_from(target, backup.name), "resumed")
            self.assertIsNone(lifecycle._pending(target))
