"""JSON logs of a real Odoo 18, threaded and prefork, parsed line by line.

Each test starts its own Odoo server with ``ODOO_LOGGING_JSON=1`` and
``--load=base,web,logging_json`` on the test database, sends real requests, stops it
and reads what it wrote.
"""

import json
import os
import re
import shutil
import tempfile

import odoo
import requests
from odoo.tests import TransactionCase, tagged

from stateless_odoo.testing import OdooServer, odoo_command

SECRET = "Pw-never-in-logs-7f3a"
#: what the websocket process (a new exec) prints before Odoo's logging exists: an
#: interpreter warning at import (``file:line: SomeWarning: text`` and its source line)
PRE_LOGGING = re.compile(r"^(\S+:\d+: \w*Warning: |  \S)")


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

    def _check(self, answers, lines):
        login_page, _wrong, _token = answers
        self.assertEqual(login_page.headers.get("X-Request-ID"), "req-login-1")
        # the lines before server-wide addons load (Odoo's banner) are Odoo's own;
        # from the first JSON line on, every line is one JSON object
        first = next(i for i, line in enumerate(lines) if line.startswith("{"))
        self.assertLessEqual(first, 12, "\n".join(lines[:first]))
        not_json = [
            line
            for line in lines[first:]
            if line.strip() and not line.startswith("{") and not PRE_LOGGING.match(line)
        ]
        self.assertFalse(not_json, "lines that are not JSON")
        records = [json.loads(line) for line in lines[first:] if line.startswith("{")]
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
        self.assertGreaterEqual(line["duration_ms"], line["sql_ms"])
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
