"""Identical uploads at the same moment, on a real Odoo server of the test database: many
requests (each its own thread and transaction) create attachments of the same contents
at once, some of them rolled back (a constraint refuses them after the content was
written), while collections run. No ERROR line (the side transaction that records a
candidate used to fail with 'could not serialize access due to concurrent update'), and
every object of the database's namespace is named by a committed row or recorded as a
candidate: none is leaked."""

import base64
import os
import shutil
import tempfile
import threading

import odoo
import requests
from odoo.tests import TransactionCase, tagged

from stateless_odoo.attachments import collection
from stateless_odoo.testing import OdooServer, odoo_command

from .common import ObjectStorageMixin

WRITERS = 12
PASSWORD = "twin-Pw-1"


@tagged("post_install", "-at_install")
class TestIdenticalUploads(ObjectStorageMixin, TransactionCase):
    kinds = ("s3",)

    def tearDown(self):
        with self.committed_env() as env:
            env["ir.attachment"].search([("name", "like", "twin-%")]).unlink()
            env["res.users"].search([("login", "=", "twin-user")]).unlink()
            self.use_location(env, "file")
        super().tearDown()

    def create_over_http(self, url, cookies, name, data, refused):
        values = {"name": name, "datas": base64.b64encode(data).decode()}
        if refused:
            # a binary attachment with a URL: refused for a non-admin by a constraint
            # at flush, after the content was written: the transaction rolls back
            values["url"] = "/twin"
        answer = requests.post(
            f"{url}/web/dataset/call_kw/ir.attachment/create",
            json={
                "jsonrpc": "2.0",
                "params": {"model": "ir.attachment", "method": "create", "args": [values],
                           "kwargs": {}},
            },
            cookies=cookies,
            timeout=120,
        )  # fmt: skip
        return answer.json()

    def test_identical_uploads_at_once_leak_nothing_and_log_no_error(self):
        with self.committed_env() as env:
            self.use_location(env, "s3")
            env["res.users"].create({"name": "Twin", "login": "twin-user", "password": PASSWORD})
        contents = [self.random_pdf(60_000) for _ in range(3)]
        workdir = tempfile.mkdtemp(prefix="twin-uploads-")
        self.addCleanup(shutil.rmtree, workdir, True)
        log = os.path.join(workdir, "odoo.log")
        command = odoo_command(
            odoo, "-d", self.env.cr.dbname, "--load=base,web", f"--data-dir={workdir}"
        )
        answers = {}
        with OdooServer(command, dict(os.environ), log_path=log) as server:
            login = requests.post(
                f"{server.url}/web/session/authenticate",
                json={
                    "jsonrpc": "2.0",
                    "params": {"db": self.env.cr.dbname, "login": "twin-user",
                               "password": PASSWORD},
                },
                timeout=60,
            )  # fmt: skip
            cookies = login.cookies
            start = threading.Barrier(WRITERS)

            def writer(i):
                start.wait(60)
                answers[i] = self.create_over_http(
                    server.url, cookies, f"twin-{i}", contents[i % 3], refused=i % 4 == 0
                )

            threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                with self.committed_env() as env:  # collections meanwhile
                    env["ir.attachment"]._object_storage_collect()
            for thread in threads:
                thread.join(60)
        refused = [i for i, answer in answers.items() if "error" in answer]
        self.assertEqual(sorted(refused), list(range(0, WRITERS, 4)), answers)
        with open(log, encoding="utf-8") as lines:
            errors = [line for line in lines if " ERROR " in line or "serialize" in line]
        self.assertFalse(errors)

        db = self.env.cr.dbname
        store = self.store_of["s3"]
        with self.committed_env() as env:
            for info in store.list(f"{db}/"):
                url = f"s3://{store.container}/{info.key}"
                env.cr.execute("SELECT 1 FROM ir_attachment WHERE store_fname = %s", (url,))
                named = bool(env.cr.fetchone())
                env.cr.execute(
                    f"SELECT 1 FROM {collection.TABLE} WHERE store_fname = %s",  # noqa: S608
                    (url,),
                )
                self.assertTrue(named or env.cr.fetchone(), f"{url} is leaked")
            env.cr.execute("SELECT count(*) FROM ir_attachment WHERE name LIKE 'twin-%%'")
            self.assertEqual(env.cr.fetchone()[0], WRITERS - len(refused))
