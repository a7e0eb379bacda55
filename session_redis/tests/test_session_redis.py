"""Sessions in Redis inside a real Odoo 18 (started with --load=...,session_redis).

The runner (scripts/odoo_tier.py) gives Odoo ODOO_SESSION_REDIS=1 and the harness's
Redis; these tests go through Odoo's HTTP server, as a browser would.
"""

import os
import shutil
import subprocess
import tempfile
import time

import odoo
import redis
import requests
from odoo import http
from odoo.tests import HttpCase, tagged
from odoo.tools import config

from stateless_odoo.sessions.settings import RedisSessionSettings
from stateless_odoo.sessions.store import RedisSessionStore
from stateless_odoo.testing import (
    free_port,
    odoo_command,
    odoo_launcher,
    ws_close_code,
    ws_open,
    ws_send,
)

from ..http import RedisUnavailable


@tagged("post_install", "-at_install")
class TestSessionRedis(HttpCase):
    @property
    def store(self):
        return http.root.session_store

    def session_info(self):
        return self.make_jsonrpc_request("/web/session/get_session_info")

    def test_store_is_redis_and_nothing_is_on_disk(self):
        self.assertIsInstance(self.store, RedisSessionStore)
        self.assertIs(self.store.unavailable, RedisUnavailable)
        self.authenticate("admin", "admin")
        self.assertEqual(self.session_info()["uid"], self.env.ref("base.user_admin").id)
        self.assertTrue(self.store.client.exists(self.store._key(self.session.sid)))
        session_dir = os.path.join(config["data_dir"], "sessions")
        self.assertFalse(os.path.isdir(session_dir) and os.listdir(session_dir))

    def test_time_to_live_follows_odoo_max_inactivity(self):
        self.env["ir.config_parameter"].sudo().set_param("sessions.max_inactivity_seconds", "4000")
        self.authenticate("admin", "admin")  # saved outside a request: Odoo's default
        key = self.store._key(self.session.sid)
        self.assertGreater(self.store.client.ttl(key), 4000)
        self.session_info()  # a request of the user records its trace and saves
        self.assertTrue(3900 < self.store.client.ttl(key) <= 4000)

    def test_logout_rotates_the_session(self):
        self.authenticate("admin", "admin")
        old_key = self.store._key(self.session.sid)
        response = self.url_open("/web/session/logout", allow_redirects=False)
        self.assertFalse(self.store.client.exists(old_key))
        cookie = response.cookies.get("session_id")
        self.assertTrue(cookie and cookie != self.session.sid)
        self.assertFalse(self.store.get(cookie).get("uid"))

    def test_a_forged_cookie_cannot_destroy_another_users_session(self):
        """The first half of a session id is logged by Odoo and kept in res_device_log:
        a cookie of that half and any other characters must neither overwrite nor
        log out the session it names (with Odoo's file store it cannot happen)."""
        self.authenticate("admin", "admin")
        self.session_info()
        victim = self.session.sid
        forged = victim[:42] + "F" * 42
        self.opener.cookies.set("session_id", forged)
        self.url_open("/web/login")  # a new session, saved under the forged id
        self.url_open("/web/session/logout", allow_redirects=False)
        self.opener.cookies.set("session_id", victim)
        self.assertEqual(self.session_info()["uid"], self.env.ref("base.user_admin").id)

    def test_revoked_device_ends_the_session(self):
        self.authenticate("admin", "admin")
        self.session_info()  # records the device
        devices = (
            self.env["res.device"]
            .sudo()
            .search([("session_identifier", "=", self.session.sid[:42])])
        )
        self.assertTrue(devices)
        devices._revoke()
        self.assertFalse(self.store.client.exists(self.store._key(self.session.sid)))
        response = self.url_open("/odoo", allow_redirects=False)
        self.assertIn("/web/login", response.headers.get("Location", ""))

    def test_redis_down_is_a_503_naming_redis_then_back(self):
        """A Redis of the test's own, stopped and restarted on the same port."""
        port = free_port()
        workdir = os.path.join(config["data_dir"], f"redis-{port}")
        os.makedirs(workdir, exist_ok=True)

        def start():
            proc = subprocess.Popen(
                [
                    shutil.which("redis-server"),
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    workdir,
                ],
                stdout=subprocess.DEVNULL,
            )
            probe = redis.Redis(port=port, socket_connect_timeout=0.2)
            for _ in range(100):
                try:
                    probe.ping()
                    return proc
                except redis.exceptions.ConnectionError:
                    time.sleep(0.05)
            raise AssertionError("redis-server did not start")

        proc = start()
        original = http.root.session_store
        settings = RedisSessionSettings.from_env(
            {
                "ODOO_SESSION_REDIS": "1",
                "ODOO_SESSION_REDIS_URL": f"redis://127.0.0.1:{port}/0",
                "ODOO_SESSION_REDIS_CONNECT_TIMEOUT": "1",
                "ODOO_SESSION_REDIS_READ_TIMEOUT": "1",
            }
        )
        try:
            http.root.session_store = RedisSessionStore(
                settings,
                http.Session,
                on_rotate=original.on_rotate,
                unavailable=RedisUnavailable,
            )
            self.authenticate("admin", "admin")
            self.assertTrue(self.session_info()["uid"])
            proc.terminate()
            proc.wait(10)
            with self.assertLogs("odoo.http", "ERROR") as logs:
                response = self.url_open("/web/session/check")
            self.assertEqual(response.status_code, 503)
            self.assertIn(f"127.0.0.1:{port}", response.text)
            self.assertNotIn(self.session.sid[:20], "\n".join(logs.output))
            proc = start()
            self.authenticate("admin", "admin")  # this Redis kept nothing: log in again
            self.assertTrue(self.session_info()["uid"])
        finally:
            http.root.session_store = original
            proc.kill()
            proc.wait()


def _odoo_command(*args):
    """A command line of this Odoo with the test's addons path, plus ``args``."""
    return [*odoo_launcher(odoo), f"--addons-path={config['addons_path']}", *args]


@tagged("post_install", "-at_install")
class TestSessionsAcrossProcesses(HttpCase):
    """What session_redis is for: a session made by one Odoo process serves another
    (prefork, 2 workers), which has its own, empty data_dir."""

    def _start_second_odoo(self, data_dir):
        port, self.gevent_port = free_port(), free_port()
        proc = subprocess.Popen(
            odoo_command(
                odoo,
                "-d",
                self.env.cr.dbname,
                "--load=base,web,session_redis",
                f"--data-dir={data_dir}",
                f"--http-port={port}",
                f"--gevent-port={self.gevent_port}",
                "--http-interface=127.0.0.1",
                "--workers=2",  # prefork, as in production
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                if requests.get(f"{url}/web/health", timeout=1).status_code == 200:
                    return proc, url
            except requests.exceptions.ConnectionError:  # pylint: disable=except-pass
                pass  # not listening yet
            time.sleep(0.25)
        proc.kill()
        raise AssertionError("the second Odoo did not start")

    def test_login_on_one_process_work_on_another_then_revoke(self):
        data_dir = tempfile.mkdtemp(prefix="second-odoo-")
        proc, url = self._start_second_odoo(data_dir)
        try:
            self.authenticate("admin", "admin")  # this process writes the session
            answer = requests.post(
                f"{url}/web/session/get_session_info",
                json={"jsonrpc": "2.0", "method": "call", "params": {}},
                cookies={"session_id": self.session.sid},
                timeout=30,
            ).json()
            self.assertEqual(answer["result"]["uid"], self.env.ref("base.user_admin").id)
            # revoked here, refused there
            self.store_delete_device(self.session.sid)
            response = requests.get(
                f"{url}/odoo",
                cookies={"session_id": self.session.sid},
                allow_redirects=False,
                timeout=30,
            )
            self.assertIn("/web/login", response.headers.get("Location", ""))
            session_dir = os.path.join(data_dir, "sessions")
            self.assertFalse(os.path.isdir(session_dir) and os.listdir(session_dir))
        finally:
            proc.terminate()
            proc.wait(30)
            shutil.rmtree(data_dir, ignore_errors=True)

    def test_websocket_process_reads_sessions_from_redis(self):
        """The websocket (gevent) process of a prefork Odoo is a fresh exec: the store
        must be in force there too. It rereads the session on each message and closes
        with 4001 (SESSION_EXPIRED) when the session is gone."""
        data_dir = tempfile.mkdtemp(prefix="second-odoo-")
        proc, _url = self._start_second_odoo(data_dir)
        try:
            self.authenticate("admin", "admin")
            sock = ws_open(self.gevent_port, self.session.sid)
            subscribe = {"event_name": "subscribe", "data": {"channels": [], "last": 0}}
            ws_send(sock, subscribe)
            # found in Redis: the connection stays open (a file store in this process's
            # empty data_dir would not know the session and close with 4001)
            self.assertIsNone(ws_close_code(sock, timeout=3))
            self.store_delete_device(self.session.sid)
            ws_send(sock, subscribe)
            self.assertEqual(ws_close_code(sock, timeout=30), 4001)
            sock.close()
        finally:
            proc.terminate()
            proc.wait(30)
            shutil.rmtree(data_dir, ignore_errors=True)

    def store_delete_device(self, sid):
        http.root.session_store.delete_from_identifiers([sid[:42]])

    def test_file_sessions_imported_keep_users_logged_in(self):
        """Sessions written by Odoo's own file store, imported by the CLI command."""
        self.authenticate("admin", "admin")
        data = dict(self.session)
        http.root.session_store.delete(self.session)
        folder = tempfile.mkdtemp(prefix="file-sessions-")
        try:
            file_store = http.FilesystemSessionStore(folder, session_class=http.Session)
            session = http.Session(data, self.session.sid)
            file_store.save(session)
            done = subprocess.run(
                _odoo_command("session_redis_import", "--path", folder),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("1 imported, 0 skipped", done.stdout)
            self.assertEqual(self.session_info()["uid"], self.env.ref("base.user_admin").id)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def session_info(self):
        return self.make_jsonrpc_request("/web/session/get_session_info")
