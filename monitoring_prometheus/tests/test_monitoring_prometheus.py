"""/metrics and /web/health/deep of a real prefork Odoo 18, scraped over HTTP.

Each test starts its own Odoo (``--workers=2``: two HTTP workers, the websocket
process, the master) with ``ODOO_PROMETHEUS=1`` on the test database.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import odoo
import requests
from odoo.tests import TransactionCase, tagged
from prometheus_client.parser import text_string_to_metric_families

from stateless_odoo.storage import KINDS, build_store
from stateless_odoo.testing import (
    OdooServer,
    RealServicesMixin,
    free_port,
    odoo_command,
    websocket,
)

TOKEN = "prometheus-token-for-the-tier-2-tests"


def samples(text):
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@tagged("post_install", "-at_install")
class TestPrometheus(RealServicesMixin, TransactionCase):
    # not an HttpCase: its transaction locks web.base.url, which an admin login on
    # the other server writes
    def setUp(self):
        super().setUp()
        self.workdir = tempfile.mkdtemp(prefix="prometheus-odoo-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.metrics_dir = os.path.join(self.workdir, "metrics")

    def _server(self, load="base,web,monitoring_prometheus", wrapper=(), args=(), **env_extra):
        env = dict(
            os.environ, ODOO_PROMETHEUS="1", ODOO_PROMETHEUS_DIR=self.metrics_dir, **env_extra
        )
        command = odoo_command(
            odoo,
            "-d",
            self.env.cr.dbname,
            f"--load={load}",
            f"--data-dir={self.workdir}",
            "--workers=2",
            *args,
        )
        return OdooServer(
            command, env, log_path=os.path.join(self.workdir, "odoo.log"), wrapper=wrapper
        )

    def test_counts_of_all_workers_and_the_websocket_process_add_up(self):
        """Workers recycled every 8 requests (Odoo's --limit-request): the counts of the
        reaped workers stay in the totals, their live gauges go."""
        requests_sent = 40
        with self._server(args=("--limit-request=8",)) as server:
            for _ in range(requests_sent):
                answer = requests.post(
                    f"{server.url}/web/webclient/version_info",
                    json={"jsonrpc": "2.0", "method": "call", "params": {}},
                    timeout=30,
                )
                self.assertEqual(answer.status_code, 200)
            sock, status = websocket(server.gevent_port, f"/websocket?db={self.env.cr.dbname}")
            sock.close()
            self.assertIn(b" 101 ", status)
            scrape = requests.get(f"{server.url}/metrics", timeout=30)
            found = samples(scrape.text)
        self.assertEqual(scrape.status_code, 200, scrape.text)
        self.assertNotIn("Set-Cookie", scrape.headers)  # no session for a scrape
        json_ok = (("code", "200"), ("type", "json"))
        self.assertEqual(found[("odoo_http_requests_total", json_ok)], requests_sent)
        self.assertEqual(
            found[("odoo_http_request_duration_seconds_count", (("type", "json"),))],
            requests_sent,
        )
        upgraded = (("code", "101"), ("type", "websocket"))
        self.assertEqual(found.get(("odoo_http_requests_total", upgraded)), 1)
        # live processes only: at most 2 workers and the websocket process, although
        # about 5 workers served requests and were reaped
        self.assertIn(found[("odoo_processes", ())], (2, 3))
        # each reaped worker said why Odoo ended it
        self.assertGreaterEqual(found[("odoo_worker_recycles_total", (("reason", "requests"),))], 3)
        self.assertGreater(found[("odoo_process_resident_memory_bytes", ())], 10_000_000)
        # every label value is bounded: no path, no id
        for name, labels in found:
            for label, value in labels:
                self.assertNotIn("/", value, (name, label))

    def test_workers_ended_by_the_memory_limit_are_counted(self):
        """Odoo's ``--limit-memory-soft`` (compared with a worker's virtual memory) below
        what any worker uses: each worker ends at its first check, before it serves, and
        the master starts another. The counts they wrote are read from the metrics
        directory, as /metrics would (no worker lives long enough to serve it)."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        server = self._server(args=("--limit-memory-soft=1", "--max-cron-threads=1"))
        process = subprocess.Popen(
            server.command, env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline, found = time.monotonic() + 60, {}
            while time.monotonic() < deadline:
                time.sleep(0.5)
                if not os.path.isdir(self.metrics_dir):  # the master makes it
                    continue
                registry = CollectorRegistry()
                MultiProcessCollector(registry, path=self.metrics_dir)
                found = samples(generate_latest(registry).decode())
                if found.get(("odoo_worker_recycles_total", (("reason", "memory"),)), 0) >= 4:
                    break
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        recycled = {k[1]: v for k, v in found.items() if k[0] == "odoo_worker_recycles_total"}
        self.assertGreaterEqual(recycled.get((("reason", "memory"),), 0), 4, recycled)
        self.assertEqual(set(recycled), {(("reason", "memory"),)}, recycled)

    def test_scrape_needs_the_token(self):
        with self._server(ODOO_PROMETHEUS_TOKEN=TOKEN) as server:
            refused = requests.get(f"{server.url}/metrics", timeout=30)
            allowed = requests.get(
                f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
            )
        self.assertEqual(refused.status_code, 403)
        self.assertEqual(allowed.status_code, 200)
        self.assertNotIn(TOKEN, "\n".join(server.log_lines()))

    def test_read_only_metrics_directory_does_not_break_requests(self):
        os.makedirs(self.metrics_dir)
        # a read-only bind mount of the directory, in a mount namespace of its own
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
        wrapper = ("unshare", "-m", "sh", "-c", script, self.metrics_dir)
        with self._server(wrapper=wrapper) as server:
            for _ in range(5):
                self.assertEqual(
                    requests.get(f"{server.url}/web/login", timeout=30).status_code, 200
                )
            scrape = requests.get(f"{server.url}/metrics", timeout=30)
        self.assertEqual(scrape.status_code, 503)
        self.assertIn("ODOO_PROMETHEUS_DIR", scrape.text)

    def test_deep_health_checks_each_dependency(self):
        load = "base,web,session_redis,monitoring_prometheus"
        for kind in KINDS:  # the tier's bucket and container, made if not there yet
            build_store(kind).ensure_container()
        with self._server(load=load) as server:
            healthy = requests.get(f"{server.url}/web/health/deep", timeout=30)
        self.assertEqual(healthy.status_code, 200, healthy.text)
        report = healthy.json()
        self.assertEqual(report["status"], "pass")
        self.assertTrue(
            {"database", "redis", "object_storage_s3", "object_storage_swift"}
            <= set(report["checks"]),
            report,
        )
        self.assertNotIn("Set-Cookie", healthy.headers)
        # a quiet path: a successful probe leaves no access line
        self.assertFalse([line for line in server.log_lines() if "/web/health/deep" in line])

        closed = free_port()
        with self._server(
            load=load,
            ODOO_SESSION_REDIS_URL=f"redis://127.0.0.1:{closed}/0",
            ODOO_HEALTH_TIMEOUT="2",
        ) as server:
            sick = requests.get(f"{server.url}/web/health/deep", timeout=30)
        self.assertEqual(sick.status_code, 503)
        checks = sick.json()["checks"]
        self.assertEqual(checks["redis"]["status"], "fail")
        self.assertIn(str(closed), checks["redis"]["error"])
        self.assertEqual(checks["database"]["status"], "pass")
        self.assertTrue([line for line in server.log_lines() if "/web/health/deep" in line])
