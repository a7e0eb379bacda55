"""``odoo attachment_storage_migrate``: killed halfway and run again, and run twice; a
``--location`` it cannot use changes nothing."""

import os
import re
import signal
import subprocess
import sys

from odoo.modules import get_module_path
from odoo.tests import TransactionCase, tagged
from odoo.tools import config

from stateless_odoo.attachments import collection

from .common import ObjectStorageMixin


@tagged("post_install", "-at_install")
class TestMigrateCommand(ObjectStorageMixin, TransactionCase):
    def command(self, *extra, command=("attachment_storage_migrate",)):
        """Odoo's ``odoo`` script; the addons path first, for the command's discovery."""
        odoo = os.path.join(os.path.dirname(sys.executable), "odoo")
        args = [odoo, f"--addons-path={config['addons_path']}", *command]
        args += ["-d", self.env.cr.dbname, f"--data-dir={config['data_dir']}"]
        for option in ("db_host", "db_port", "db_user"):
            if config.get(option):
                args += [f"--{option}", str(config[option])]
        return [*args, *extra]

    def run_command(self, *extra, env=None, command=("attachment_storage_migrate",)):
        """Run the command; ``env`` adds variables, or removes those given None."""
        environ = {**os.environ, **(env or {})}
        return subprocess.run(
            self.command(*extra, command=command),
            capture_output=True,
            text=True,
            timeout=300,
            env={name: value for name, value in environ.items() if value is not None},
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
                (collection.LOCK_NAMESPACE, collection.MIGRATION_LOCK),
            )
            try:
                second = self.run_command("--location", "s3")
            finally:
                holder.execute(
                    "SELECT pg_advisory_unlock(%s, %s)",
                    (collection.LOCK_NAMESPACE, collection.MIGRATION_LOCK),
                )
        self.assertEqual(second.returncode, 3, second.stderr[-2000:])
        self.assertIn("another attachment migration", second.stderr)

    # -- a --location it cannot use -------------------------------------------------------

    def stored_location(self):
        """ir_attachment.location as committed (SQL: this process caches get_param)."""
        with self.committed_env() as env:
            env.cr.execute(
                "SELECT value FROM ir_config_parameter WHERE key = 'ir_attachment.location'"
            )
            row = env.cr.fetchone()
            return row and row[0]

    def assert_refused(self, done, code, *texts):
        self.assertEqual(done.returncode, code, done.stderr[-2000:])
        for text in texts:
            self.assertIn(text, done.stderr)
        self.assertNotIn("ir_attachment.location set to", done.stderr)
        self.assertNotIn("Traceback", done.stderr)

    def test_location_not_usable_changes_nothing(self):
        """A typo or a store whose addon is not installed: Odoo would write every new
        file to the local filestore, which these hosts forget. Exit 2, one line naming
        the value and the accepted ones; the location stays, nothing is announced."""
        with self.committed_env() as env:
            self.use_location(env, "db")
        signaled = self.cache_signaling()
        cases = {
            "S3": "not a location (they are lower case: 's3'); use one of: db, file, s3, swift",
            "ftp": "not a location; use one of: db, file, s3, swift",
            "": "not a location; use one of: db, file, s3, swift",
        }
        for value, reason in cases.items():
            with self.subTest(location=value):
                done = self.run_command("--location", value)
                self.assert_refused(
                    done,
                    2,
                    f"attachment_storage_migrate: error: --location {value!r} cannot be used"
                    f" in database {self.env.cr.dbname}: {reason} (nothing changed)",
                )
                self.assertEqual(self.stored_location(), "db")
        self.assertEqual(self.cache_signaling(), signaled)

    def test_location_of_a_store_addon_not_installed(self):
        # the tier installs both store addons: the command's process loads the database
        # as if attachment_swift were not installed (the module's state, restored after)
        with self.committed_env() as env:
            self.use_location(env, "db")
            env.cr.execute(
                "UPDATE ir_module_module SET state = 'uninstalled' WHERE name = 'attachment_swift'"
            )
        try:
            done = self.run_command("--location", "swift")
        finally:
            with self.committed_env() as env:
                env.cr.execute(
                    "UPDATE ir_module_module SET state = 'installed'"
                    " WHERE name = 'attachment_swift'"
                )
        self.assert_refused(
            done,
            2,
            f"--location 'swift' cannot be used in database {self.env.cr.dbname}: the addon"
            " attachment_swift is not installed in this database; use one of: db, file, s3"
            " (nothing changed)",
        )
        self.assertEqual(self.stored_location(), "db")

    def test_location_whose_store_is_not_configured_changes_nothing(self):
        """The store's configuration is built before the switch: a missing variable is
        named, exit 1, the location stays."""
        with self.committed_env() as env:
            self.use_location(env, "db")
        signaled = self.cache_signaling()
        done = self.run_command("--location", "s3", env={"AWS_BUCKETNAME": None})
        self.assert_refused(
            done,
            1,
            "attachment migration not started: The attachment storage is misconfigured:"
            " AWS_BUCKETNAME: is not set",
            "ir_attachment.location is left as it was, not set to 's3'",
        )
        self.assertEqual(self.stored_location(), "db")
        self.assertEqual(self.cache_signaling(), signaled)

    def test_cloud_platform_migrate_checks_the_location_too(self):
        if not get_module_path("cloud_platform", display_warning=False):
            self.skipTest("cloud_platform is not in the addons path")
        with self.committed_env() as env:
            self.use_location(env, "db")
        done = self.run_command("--location", "S3", command=("cloud_platform", "migrate"))
        self.assert_refused(
            done, 2, "cloud_platform migrate: error: --location 'S3' cannot be used in database"
        )
        self.assertEqual(self.stored_location(), "db")
