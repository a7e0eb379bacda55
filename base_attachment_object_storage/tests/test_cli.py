"""``odoo attachment_storage_migrate``: killed halfway and run again, and run twice."""

import os
import re
import signal
import subprocess
import sys

from odoo.tests import TransactionCase, tagged
from odoo.tools import config

from stateless_odoo import objectgc

from .common import ObjectStorageMixin


@tagged("post_install", "-at_install")
class TestMigrateCommand(ObjectStorageMixin, TransactionCase):
    def command(self, *extra):
        """Odoo's ``odoo`` script; the addons path first, for the command's discovery."""
        odoo = os.path.join(os.path.dirname(sys.executable), "odoo")
        args = [odoo, f"--addons-path={config['addons_path']}", "attachment_storage_migrate"]
        args += ["-d", self.env.cr.dbname, f"--data-dir={config['data_dir']}"]
        for option in ("db_host", "db_port", "db_user"):
            if config.get(option):
                args += [f"--{option}", str(config[option])]
        return [*args, *extra]

    def run_command(self, *extra, env=None):
        return subprocess.run(
            self.command(*extra),
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **(env or {})},
            check=False,
        )

    def tearDown(self):
        with self.committed_env() as env:
            env["ir.attachment"].search([("name", "like", "cli-test-%")]).unlink()
            self.use_location(env, "file")
        super().tearDown()

    def make_files(self, count, size):
        with self.committed_env() as env:
            self.use_location(env, "file")
            contents = {}
            for i in range(count):
                data = self.random_pdf(size)
                att = env["ir.attachment"].create({"name": f"cli-test-{i}", "raw": data})
                contents[att.id] = data
        return contents

    def cache_signaling(self):
        with self.committed_env() as env:
            env.cr.execute("SELECT last_value FROM base_cache_signaling_default")
            return env.cr.fetchone()[0]

    def test_killed_then_run_again(self):
        contents = self.make_files(30, 1_000_000)
        signaled = self.cache_signaling()
        proc = subprocess.Popen(
            self.command("--location", "swift", "--log-level", "info"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "ODOO_ATTACHMENT_MIGRATION_BATCH": "2",
                 "ODOO_ATTACHMENT_MIGRATION_THREADS": "1"},
        )  # fmt: skip
        for line in proc.stdout:
            # batches go by id: the rows of this test come last; kill after ten of them
            progress = re.search(r"(\d+)/(\d+) looked at", line)
            if progress and int(progress[1]) >= int(progress[2]) - 20:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(60)
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        # --location was announced: running processes drop their cached location
        self.assertGreater(self.cache_signaling(), signaled)
        with self.committed_env() as env:
            rows = env["ir.attachment"].browse(list(contents))
            moved = rows.filtered(lambda a: a.store_fname.startswith("swift://"))
            self.assertTrue(moved and len(moved) < len(rows), len(moved))
            for att in rows:
                if att in moved:
                    self.assertEqual(self.object_bytes(att.store_fname), contents[att.id])
                else:
                    self.assertTrue(os.path.exists(att._full_path(att.store_fname)))
        done = self.run_command()
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        with self.committed_env() as env:
            for att in env["ir.attachment"].browse(list(contents)):
                self.assertTrue(att.store_fname.startswith("swift://"))
                self.assertEqual(att.raw, contents[att.id])

    def test_second_run_at_once_says_so_and_exits(self):
        self.make_files(2, 1000)
        with self.registry.cursor() as holder:
            holder.execute(
                "SELECT pg_advisory_lock(%s, %s)",
                (objectgc.LOCK_NAMESPACE, objectgc.MIGRATION_LOCK),
            )
            try:
                second = self.run_command("--location", "s3")
            finally:
                holder.execute(
                    "SELECT pg_advisory_unlock(%s, %s)",
                    (objectgc.LOCK_NAMESPACE, objectgc.MIGRATION_LOCK),
                )
        self.assertEqual(second.returncode, 3, second.stderr[-2000:])
        self.assertIn("another attachment migration", second.stderr)
