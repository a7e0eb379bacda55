"""JSON logs of a real Odoo 18, threaded, prefork and ``odoo shell``, parsed line by line.

Each test starts its own Odoo process with ``ODOO_LOGGING_JSON=1`` (and for servers
``--load=base,web,logging_json``) on the test database, sends real requests, stops it
and reads what it wrote: every line, from the process's first (the start-up hook the
core's wheel installs, ``stateless_odoo.observability.early_json``).
"""

import getpass
import json
import os
import shutil
import subprocess
import tempfile

import odoo
import requests
from odoo.tests import TransactionCase, tagged

from stateless_odoo.testing import OdooServer, odoo_command, odoo_launcher

SECRET = "Pw-never-in-logs-7f3a"


@tagged("post_install", "-at_install")
class TestJsonLogs(TransactionCase):
    # not an HttpCase: its transaction locks web.base.url, which an admin login on
    # the other server writes
    def _run_server(self, *args, requests_to_send, logfile=False):
        workdir = tempfile.mkdtemp(prefix="logging-json-")
        self.addCleanup(shutil.rmtree, workdir, True)
        env = dict(os.environ, ODOO_LOGGING_JSON="1")
        env.pop("ODOO_PY_COLORS", None)
        output = os.path.join(workdir, "stdout.log")
        if logfile:  # Odoo's file handler instead of its stream handler
            args = (*args, f"--logfile={os.path.join(workdir, 'odoo.log')}")
        command = odoo_command(
            odoo,
            "-d",
            self.env.cr.dbname,
            "--load=base,web,logging_json",
            f"--data-dir={workdir}",
            *args,
        )
        with OdooServer(command, env, log_path=output) as server:
            answers = requests_to_send(server.url)
        if logfile:
            server.log_path = os.path.join(workdir, "odoo.log")
        return answers, server.log_lines()

    @staticmethod
    def _requests(url):
        login_page = requests.get(
            f"{url}/web/login", headers={"X-Request-ID": "req-login-1"}, timeout=30
        )
        wrong = requests.post(
            f"{url}/web/session/authenticate",
            json={
                "jsonrpc": "2.0",
                "params": {"db": None, "login": "admin", "password": SECRET},
            },
            timeout=30,
        )
        token = requests.get(
            f"{url}/web/content/1?access_token={SECRET}",
            headers={"X-Request-ID": "req-token-2"},
            timeout=30,
        )
        return login_page, wrong, token

    def _all_json(self, lines):
        """Every line one JSON object, from the first; Odoo's banner (logged before the
        server-wide addons load) among them."""
        not_json = [line for line in lines if line.strip() and not line.startswith("{")]
        self.assertFalse(not_json, "lines that are not JSON")
        records = [json.loads(line) for line in lines if line.strip()]
        messages = [r["message"] for r in records]
        self.assertIn("Odoo version 18.0", messages)
        self.assertTrue(any(m.startswith("addons paths: ") for m in messages))
        return records

    def _check(self, answers, lines):
        login_page, _wrong, _token = answers
        self.assertEqual(login_page.headers.get("X-Request-ID"), "req-login-1")
        records = self._all_json(lines)
        self.assertNotIn(SECRET, "\n".join(lines))
        for record in records:
            for field in ("timestamp", "level", "severity", "logger", "message", "pid"):
                self.assertIn(field, record)
        access = [
            r for r in records if r["logger"] == "werkzeug" and r.get("request_id") == "req-login-1"
        ]
        self.assertEqual(len(access), 1, records[-20:])
        line = access[0]
        self.assertEqual(line["http_method"], "GET")
        self.assertEqual(line["http_path"], "/web/login")
        self.assertEqual(line["http_status"], 200)
        self.assertEqual(line["http_route"], "/web/login")
        self.assertIsInstance(line["sql_count"], int)
        self.assertGreater(line["sql_count"], 0)
        # not compared with each other: sql_ms is Odoo's own sum of its queries' times on
        # the wall clock (time.time), duration_ms is monotonic; a full run on a loaded
        # machine once logged sql_ms 5270 for duration_ms 212 (a clock step, by all signs)
        self.assertGreater(line["duration_ms"], 0)
        self.assertGreaterEqual(line["sql_ms"], 0)
        self.assertEqual(line["dbname"], self.env.cr.dbname)
        token_access = [r for r in records if r.get("request_id") == "req-token-2"]
        self.assertTrue(token_access)
        for record in token_access:
            self.assertNotIn("access_token", record["message"])
        # ids are not reused by lines outside the requests
        ids = [r["request_id"] for r in records if r["logger"] == "werkzeug"]
        self.assertEqual(len(ids), len(set(ids)), ids)
        return records

    def test_threaded_server_logs_json_lines_to_its_logfile(self):
        answers, lines = self._run_server(requests_to_send=self._requests, logfile=True)
        self._check(answers, lines)

    def test_prefork_server_logs_json_lines(self):
        answers, lines = self._run_server("--workers=2", requests_to_send=self._requests)
        records = self._check(answers, lines)
        pids = {r["pid"] for r in records if r["logger"] == "werkzeug"}
        self.assertTrue(pids)
        if getpass.getuser() == "root":  # Odoo's bare write to stderr, as a record
            root = [r for r in records if r["message"].startswith("Running as user 'root'")]
            self.assertTrue(root, records[:5])
            self.assertEqual({r["logger"] for r in root}, {"odoo.cli.server"})

    def test_exception_is_structured(self):
        def crash(url):
            # a JSON-RPC call to a model that does not exist: Odoo logs the error
            session = requests.Session()
            session.post(
                f"{url}/web/session/authenticate",
                json={
                    "jsonrpc": "2.0",
                    "params": {"db": self.env.cr.dbname, "login": "admin", "password": "admin"},
                },
                timeout=30,
            )
            return session.post(
                f"{url}/web/dataset/call_kw",
                json={
                    "jsonrpc": "2.0",
                    "params": {
                        "model": "res.partner",
                        "method": "read",
                        "args": [[1], ["no_such_field_x"]],
                        "kwargs": {},
                    },
                },
                headers={"X-Request-ID": "req-crash-3"},
                timeout=30,
            )

        _answer, lines = self._run_server(requests_to_send=crash)
        records = [json.loads(line) for line in lines if line.startswith("{")]
        failed = [
            r for r in records if r.get("request_id") == "req-crash-3" and r.get("exception_type")
        ]
        self.assertTrue(failed, [r for r in records if r.get("request_id") == "req-crash-3"])
        self.assertIn("Traceback", failed[0]["traceback"])
        self.assertEqual((failed[0]["level"], failed[0]["severity"]), ("ERROR", "ERROR"))
        self.assertEqual(failed[0]["exception_type"], "ValueError")

    def test_odoo_shell_logs_json_lines(self):
        # odoo shell, not a server: its configuration's logging, no server-wide addon
        env = dict(os.environ, ODOO_LOGGING_JSON="1")
        env.pop("ODOO_PY_COLORS", None)
        launcher = odoo_launcher(odoo)
        options = odoo_command(odoo, "-d", self.env.cr.dbname, "--no-http")[len(launcher) :]
        done = subprocess.run(
            [*launcher, "shell", *options],
            input="print('partners', env['res.partner'].search_count([]))\n",
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        self.assertIn("partners ", done.stdout)
        records = self._all_json(done.stderr.splitlines())
        self.assertTrue(any(r["dbname"] == self.env.cr.dbname for r in records), records)
