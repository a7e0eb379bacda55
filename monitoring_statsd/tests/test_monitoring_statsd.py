"""statsd metrics of a real Odoo 18, read from a real UDP socket.

Each server test starts its own Odoo with ``ODOO_STATSD=1`` and
``--load=base,web,monitoring_statsd`` on the test database, pointed at a UDP socket
the test reads.
"""

import os
import shutil
import socket
import tempfile
import time
from unittest.mock import patch

import odoo
import requests
from odoo.tests import TransactionCase, tagged

from stateless_odoo.observability import events
from stateless_odoo.testing import OdooServer, odoo_command


def rpc(session, url, path, params, request_id=None):
    headers = {"X-Request-ID": request_id} if request_id else {}
    return session.post(
        f"{url}{path}",
        json={"jsonrpc": "2.0", "method": "call", "params": params},
        headers=headers,
        timeout=30,
    ).json()


@tagged("post_install", "-at_install")
class TestStatsdFromOdoo(TransactionCase):
    # not an HttpCase: its transaction locks web.base.url, which an admin login on
    # the other server writes
    def setUp(self):
        super().setUp()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.addCleanup(self.udp.close)
        self.workdir = tempfile.mkdtemp(prefix="statsd-odoo-")
        self.addCleanup(shutil.rmtree, self.workdir, True)

    def _server(self, *args, **env_extra):
        env = dict(
            os.environ,
            ODOO_STATSD="1",
            STATSD_CUSTOMER="acme",
            STATSD_ENVIRONMENT="prod",
            STATSD_HOST="127.0.0.1",
            STATSD_PORT=str(self.port),
        )
        env.update(env_extra)
        command = odoo_command(
            odoo,
            "-d",
            self.env.cr.dbname,
            "--load=base,web,monitoring_statsd",
            f"--data-dir={self.workdir}",
            *args,
        )
        return OdooServer(command, env, log_path=os.path.join(self.workdir, "odoo.log"))

    def _names_until(self, expected, timeout=15):
        """Metric names received until all of ``expected`` came (or the timeout)."""
        names = set()
        self.udp.settimeout(0.5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not expected <= names:
            try:
                data, _ = self.udp.recvfrom(65535)
            except TimeoutError:
                continue
            names.update(line.split(":")[0] for line in data.decode().splitlines())
        return names

    def test_request_button_status_sql_and_memory(self):
        partner = self.env.ref("base.partner_admin")
        with self._server("--workers=2") as server:
            session = requests.Session()
            login = rpc(
                session,
                server.url,
                "/web/session/authenticate",
                {"db": self.env.cr.dbname, "login": "admin", "password": "admin"},
            )
            self.assertTrue(login["result"]["uid"])
            answer = rpc(
                session,
                server.url,
                "/web/dataset/call_button",
                {
                    "model": "res.partner",
                    "method": "open_commercial_entity",
                    "args": [[partner.id]],
                    "kwargs": {},
                },
            )
            self.assertIn("result", answer)
            # names from a request body are not trusted: no metric for these
            rpc(
                session,
                server.url,
                "/web/dataset/call_button",
                {"model": "no.such.model", "method": "x", "args": [[1]], "kwargs": {}},
            )
            # a call that fails (here on a record that does not exist) is not reported:
            # any user would otherwise choose series by calling what they may not
            refused = rpc(
                session,
                server.url,
                "/web/dataset/call_button",
                {"model": "res.partner", "method": "action_archive", "args": [[987654321]],
                 "kwargs": {}},
            )  # fmt: skip
            self.assertIn("error", refused)
            self.assertEqual(requests.get(f"{server.url}/web/nothing", timeout=30).status_code, 404)
            expected = {
                "odoo.http.request.acme.prod",
                "odoo.http.button.acme.prod.res_partner.open_commercial_entity",
                "odoo.http.status.acme.prod.2xx",
                "odoo.http.status.acme.prod.4xx",
                "odoo.http.sql.acme.prod.queries",
                "odoo.http.sql.acme.prod.time",
                "odoo.worker.acme.prod.memory",
            }
            names = self._names_until(expected)
        self.assertLessEqual(expected, names, sorted(names))
        self.assertFalse([n for n in names if "no_such" in n or "action_archive" in n])

    def test_environment_from_odoos_running_env_option(self):
        """OCA server_environment's running_env option (here in the configuration file)
        names the environment when STATSD_ENVIRONMENT is not set, before RUNNING_ENV.
        (dev: cloud_platform, when the tier installs it, reads the same option and would
        refuse this database as integration or prod.)"""
        conf = os.path.join(self.workdir, "odoo.conf")
        with open(conf, "w") as handle:
            handle.write("[options]\nrunning_env = dev\n")
        with self._server(f"--config={conf}", STATSD_ENVIRONMENT="", RUNNING_ENV="prod") as server:
            requests.get(f"{server.url}/web/login", timeout=30)
            names = self._names_until({"odoo.http.request.acme.dev"})
        self.assertIn("odoo.http.request.acme.dev", names, sorted(names))

    def test_unreachable_statsd_host_does_not_break_requests(self):
        with self._server(STATSD_HOST="statsd.invalid") as server:
            for _ in range(5):
                self.assertEqual(
                    requests.get(f"{server.url}/web/login", timeout=30).status_code, 200
                )
        log = "\n".join(server.log_lines())
        self.assertIn("STATSD_HOST 'statsd.invalid'", log)

    def test_closed_statsd_port_does_not_break_requests(self):
        self.udp.close()  # nothing listens there any more: ICMP port unreachable
        with self._server() as server:
            for _ in range(5):
                self.assertEqual(
                    requests.get(f"{server.url}/web/login", timeout=30).status_code, 200
                )


@tagged("post_install", "-at_install")
class TestCronMetrics(TransactionCase):
    def _cron(self, code):
        action = self.env["ir.actions.server"].create(
            {
                "name": "statsd test action",
                "model_id": self.env.ref("base.model_res_partner").id,
                "state": "code",
                "code": code,
            }
        )
        return self.env["ir.cron"].create(
            {"name": "statsd test cron", "ir_actions_server_id": action.id, "interval_number": 1}
        )

    def _events_of(self, fn):
        seen = []

        def sink(event, fields):
            if event == "cron":
                seen.append(fields)

        events.subscribe(sink)
        try:
            fn()
        finally:
            events.unsubscribe(sink)
        return seen

    def test_a_cron_run_is_reported_once(self):
        cron = self._cron("env['res.partner'].search([], limit=1)")
        seen = self._events_of(lambda: cron._callback(cron.cron_name, cron.ir_actions_server_id.id))
        self.assertEqual(len(seen), 1)  # both monitoring addons override ir.cron
        self.assertTrue(seen[0]["ok"])

    def test_a_failed_cron_run_is_reported_as_failed(self):
        cron = self._cron("raise UserError('cron failure for the test')")

        def run():
            # _callback rolls back its transaction on failure: here, the test's own
            with patch.object(self.env.cr, "rollback"), self.assertLogs("odoo.addons.base"):
                with self.assertRaises(odoo.exceptions.UserError):
                    cron._callback(cron.cron_name, cron.ir_actions_server_id.id)

        seen = self._events_of(run)
        self.assertEqual([fields["ok"] for fields in seen], [False])
