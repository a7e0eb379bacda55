# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""cloud_platform in a real Odoo 18: the checks at database load, the songs (anthem
0.15), the ``odoo cloud_platform`` commands and real servers that start or refuse.

The in-process tests read the database of the test run. The others work on a database
of their own (cloud_platform and both store addons installed, its own data dir),
created once for the class, and on a bucket and a container of the local Swift."""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import odoo
import requests
from odoo.addons.cloud_platform.models import cloud_platform as cp_module
from odoo.exceptions import UserError
from odoo.tests import BaseCase, TransactionCase, tagged

from stateless_odoo import testing
from stateless_odoo.errors import ConfigError
from stateless_odoo.platform import checks
from stateless_odoo.storage import build_store

#: variables of the contract: never inherited by what a test starts or checks
CONTRACT = ("AWS_", "SWIFT_", "ODOO_", "STATSD_", "RUNNING_ENV", "PROMETHEUS_", "SERVER_ENV")


def contract_free(environ):
    return {k: v for k, v in environ.items() if not k.startswith(CONTRACT)}


def store_variables(kind, container):
    if kind == "s3":
        return {
            "AWS_HOST": os.environ["TEST_S3_ENDPOINT"],
            "AWS_REGION": os.environ["TEST_S3_REGION"],
            "AWS_ACCESS_KEY_ID": os.environ["TEST_S3_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": os.environ["TEST_S3_SECRET_KEY"],
            "AWS_BUCKETNAME": container,
        }
    return {
        "SWIFT_AUTH_URL": os.environ["TEST_SWIFT_AUTH_URL"],
        "SWIFT_ACCOUNT": os.environ["TEST_SWIFT_ACCOUNT"],
        "SWIFT_PASSWORD": os.environ["TEST_SWIFT_PASSWORD"],
        "SWIFT_WRITE_CONTAINER": container,
    }


def good(env, client, kind="s3"):
    """The older addons' variables for ``env`` on the local services: sessions in Redis, the
    ``kind`` store, and the other store's credentials too (to read what is there)."""
    container = f"{client}-odoo-{env}"
    other = "swift" if kind == "s3" else "s3"
    return {
        **store_variables(other, container),
        **store_variables(kind, container),
        "RUNNING_ENV": env,
        "ODOO_SESSION_REDIS": "1",
        "ODOO_SESSION_REDIS_URL": os.environ["TEST_REDIS_URL"],
        "ODOO_SESSION_REDIS_PREFIX": f"{client}-odoo-{env}",
    }


def changed(variables, **changes):
    result = dict(variables)
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


class _Environ:
    """The process environment with only ``variables`` of the contract."""

    def __init__(self, variables):
        self.patch = mock.patch.dict(os.environ, variables)
        self.variables = variables

    def __enter__(self):
        self.patch.start()
        for name in [n for n in os.environ if n.startswith(CONTRACT)]:
            if name not in self.variables:
                del os.environ[name]

    def __exit__(self, *exc):
        self.patch.stop()


@tagged("post_install", "-at_install")
class TestChecksInProcess(TransactionCase):
    """The model's checks over this database's settings (nothing committed)."""

    def setUp(self):
        super().setUp()
        self.client = "acme"
        self.params = self.env["ir.config_parameter"].sudo()
        self.platform = self.env["cloud.platform"]
        # as if both store addons were installed, whatever this test run installed
        kinds = mock.patch.object(
            type(self.env["ir.attachment"]),
            "_object_storage_kinds",
            lambda _self: ["s3", "swift"],
        )
        kinds.start()
        self.addCleanup(kinds.stop)

    def problems(self, variables, location, platform=None):
        platform = platform or ("ovh" if location == "swift" else "exoscale")
        self.params.set_param("ir_attachment.location", location)
        self.params.set_param("cloud.platform.kind", platform)
        with _Environ(variables):
            return [p.variable for p in self.platform._problems(probes=False)]

    def test_matrix(self):
        prod, test = good("prod", "acme"), good("test", "acme")
        cases = [
            (prod, "s3", []),
            (test, "db", []),
            (good("integration", "acme", "swift"), "swift", []),
            (good("dev", "acme"), "file", []),
            (
                changed(good("dev", "acme"), AWS_BUCKETNAME="acme-odoo-prod"),
                "s3",
                ["AWS_BUCKETNAME"],
            ),
            (
                changed(good("integration", "acme"), AWS_BUCKETNAME="acme-odoo-prod"),
                "s3",
                ["AWS_BUCKETNAME"],
            ),
            (prod, "file", ["ir_attachment.location"]),
            (test, "s3", ["ir_attachment.location"]),
            (changed(prod, AWS_SECRET_ACCESS_KEY=None), "s3", ["AWS_SECRET_ACCESS_KEY"]),
            (changed(prod, AWS_BUCKETNAME="acme-odoo-test"), "s3", ["AWS_BUCKETNAME"]),
            (changed(prod, ODOO_SESSION_REDIS="maybe"), "s3", ["ODOO_SESSION_REDIS"]),
            (changed(prod, RUNNING_ENV=None), "s3", ["RUNNING_ENV"]),
            (changed(prod, RUNNING_ENV="Production "), "s3", []),  # prod's other name
            (changed(prod, RUNNING_ENV="staging"), "s3", ["RUNNING_ENV"]),  # not listed
            (
                changed(prod, RUNNING_ENV="staging", ODOO_CLOUD_PLATFORM_ENVIRONMENTS="staging"),
                "s3",
                ["ODOO_SESSION_REDIS_PREFIX", "AWS_BUCKETNAME"],
            ),
            (
                changed(test, ODOO_SESSION_REDIS_PREFIX="acme-odoo-prod"),
                "db",
                ["ODOO_SESSION_REDIS_PREFIX"],
            ),
            (
                changed(prod, ODOO_SESSION_REDIS_URL=None, AWS_ACCESS_KEY_ID=None),
                "s3",
                ["ODOO_SESSION_REDIS_HOST", "AWS_ACCESS_KEY_ID"],
            ),
        ]
        for variables, location, expected in cases:
            with self.subTest(env=variables.get("RUNNING_ENV"), expected=expected):
                self.assertEqual(self.problems(variables, location), expected)
        self.assertEqual(self.problems(prod, "s3", platform="aws"), ["cloud.platform.kind"])
        # the location, not the recorded platform, says which store is checked
        no_swift = {k: v for k, v in prod.items() if not k.startswith("SWIFT_")}
        self.assertEqual(
            self.problems(no_swift, "swift", platform="exoscale"),
            ["ir_attachment.location", *checks.STORE_VARIABLES["swift"]],
        )

    def test_load_refuses_only_in_a_serving_process(self):
        variables = changed(good("prod", "acme"), AWS_BUCKETNAME="shared", AWS_REGION=None)
        self.params.set_param("ir_attachment.location", "s3")
        with _Environ(variables), mock.patch.object(cp_module, "serving", return_value=True):
            with (
                self.assertLogs(cp_module._logger, "CRITICAL") as logs,
                self.assertRaises(checks.PlatformMisconfigured) as caught,
            ):
                self.platform._check_at_load()
        self.assertEqual(caught.exception.variable, "AWS_BUCKETNAME")
        (line,) = logs.output
        self.assertIn("is not served", line)
        self.assertIn("AWS_BUCKETNAME: 'shared' is not a <client>-odoo-prod name", line)
        self.assertNotIn(os.environ["TEST_S3_SECRET_KEY"], line)
        # a script (install job, song, shell) only warns: it may be the fix
        with _Environ(variables), self.assertLogs(cp_module._logger, "WARNING") as logs:
            self.platform._check_at_load()
        self.assertIn("would not be served", logs.output[0])

    def test_unsafe(self):
        variables = changed(good("prod", "acme"), AWS_ACCESS_KEY_ID=None)
        self.params.set_param("ir_attachment.location", "s3")
        with _Environ({**variables, "ODOO_CLOUD_PLATFORM_UNSAFE": "yes"}):
            with self.assertLogs(cp_module._logger, "WARNING") as logs:
                self.assertIs(self.platform.check(), False)
        self.assertIn("ODOO_CLOUD_PLATFORM_UNSAFE is on", logs.output[0])
        self.assertIn("AWS_ACCESS_KEY_ID", logs.output[0])
        with _Environ({**good("prod", "acme"), "ODOO_CLOUD_PLATFORM_UNSAFE": "please"}):
            with self.assertRaisesRegex(ConfigError, "ODOO_CLOUD_PLATFORM_UNSAFE"):
                self.platform.check()

    def test_serving(self):
        """Where the database is loaded decides, as in each kind of Odoo process. Each
        case runs in a thread of its own: this test itself runs inside Odoo's
        preload_registries (post-install tests), which is a serving load."""
        server_module = odoo.service.server

        def serving(kind=None, target=cp_module.serving):
            seen = []
            thread = threading.Thread(target=lambda: seen.append(target()))
            if kind:
                thread.type = kind
            thread.start()
            thread.join()
            return seen[0]

        # this test run is --stop-after-init: a job
        self.assertFalse(serving())
        serving_config = {"stop_after_init": False, "test_enable": False, "test_file": False}
        with mock.patch.dict(odoo.tools.config.options, serving_config):
            with mock.patch.object(server_module, "server", None):
                self.assertFalse(serving())  # the suite's commands
            # odoo shell / anthem with workers in the configuration: a prefork server
            # object, the database loaded from the main thread after start() returned
            prefork = server_module.PreforkServer(None)
            with mock.patch.object(server_module, "server", prefork):
                self.assertFalse(serving())
                prefork.pid = os.getpid() + 1  # in a forked HTTP or cron worker
                self.assertTrue(serving())
            threaded = server_module.ThreadedServer(None)
            with mock.patch.object(server_module, "server", threaded):
                self.assertFalse(serving())  # anthem: no -d preload, its main thread
                self.assertTrue(serving("http"))  # a request thread
                self.assertTrue(serving("cron"))  # a cron thread
                # `-d db` (with or without HTTP): loaded by preload_registries
                seen = []
                fake_registry = mock.MagicMock(_assertion_report=None)
                with mock.patch.object(
                    odoo.modules.registry.Registry,
                    "new",
                    side_effect=lambda *a, **k: seen.append(cp_module.serving()) or fake_registry,
                ):
                    serving(target=lambda: server_module.preload_registries(["stateless_cp_x"]))
                self.assertEqual(seen, [True])
            with mock.patch.object(server_module, "server", server_module.GeventServer(None)):
                self.assertTrue(serving())  # the websocket process

    def test_install_refuses_bad_input_before_changing_anything(self):
        before = self.params.get_param("ir_attachment.location")
        with _Environ(good("prod", "acme")):
            with self.assertRaisesRegex(UserError, "'aws' is not one of: exoscale, ovh"):
                self.platform.install("aws")
        with _Environ({}), self.assertRaisesRegex(UserError, "RUNNING_ENV"):
            self.platform.install_ovh()
        self.params.search([("key", "=", "cloud.platform.kind")]).unlink()
        with _Environ({}), self.assertRaisesRegex(UserError, "ODOO_CLOUD_PLATFORM_KIND"):
            self.platform._platform_kind()
        with _Environ({"ODOO_CLOUD_PLATFORM_KIND": "ovh"}):
            self.assertEqual(self.platform._platform_kind(), "ovh")
        self.assertEqual(self.params.get_param("ir_attachment.location"), before)


@tagged("post_install", "-at_install")
class TestPlatformProcesses(testing.RealServicesMixin, BaseCase):
    """Songs, commands and servers on a database of their own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        config = odoo.tools.config
        cls.client = f"t{uuid.uuid4().hex[:8]}"
        cls.db = f"stateless_cp_{cls.client}"
        cls.data_dir = tempfile.mkdtemp(prefix="cloud-platform-data-")
        cls.logs = tempfile.mkdtemp(prefix="cloud-platform-logs-")
        cls.base_env = contract_free(os.environ)
        # for anthem and the commands (servers: testing.odoo_command)
        cls.addons_arg = f"--addons-path={config['addons_path']}"
        cls.connection_args = [
            f"--db_host={config['db_host'] or '127.0.0.1'}",
            f"--db_port={config['db_port'] or 5432}",
            f"--db_user={config['db_user']}",
            f"--data-dir={cls.data_dir}",
        ]
        cls.stores = []
        for env, kind in (("integration", "s3"), ("prod", "s3"), ("integration", "swift")):
            store = build_store(kind, good(env, cls.client, kind))
            store.ensure_container()
            cls.stores.append(store)
        cls.addClassCleanup(cls._cleanup)
        done = cls.odoo(
            "-d", cls.db, "-i", "cloud_platform,attachment_s3,attachment_swift,server_environment",
            "--without-demo=all", "--stop-after-init", "--http-port=0", env={}, name="create",
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:]

    @classmethod
    def _cleanup(cls):
        subprocess.run(
            [shutil.which("dropdb"), "--if-exists", "--force", *cls._pg_args(), cls.db],
            check=False,
            capture_output=True,
        )
        for store in cls.stores:
            with contextlib.suppress(Exception):  # cleanup must not hide the result
                testing.remove_container(store)
        shutil.rmtree(cls.data_dir, ignore_errors=True)
        shutil.rmtree(cls.logs, ignore_errors=True)

    @classmethod
    def _pg_args(cls):
        config = odoo.tools.config
        return [
            "-h", config["db_host"] or "127.0.0.1",
            "-p", str(config["db_port"] or 5432),
            "-U", config["db_user"],
        ]  # fmt: skip

    @classmethod
    def odoo(cls, *args, env, name):
        """Odoo with ``args`` and this class's data dir, ``env`` as the contract's
        variables."""
        command = testing.odoo_command(odoo, *args, f"--data-dir={cls.data_dir}")
        return cls._run(command, env, name)

    @classmethod
    def _run(cls, command, env, name):
        done = subprocess.run(
            command,
            env={**cls.base_env, **env},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        done.stdout = done.stdout + done.stderr
        with open(os.path.join(cls.logs, f"{name}.log"), "w") as log:
            log.write(done.stdout)
        return done

    def sing(self, song, env, name):
        anthem = os.path.join(os.path.dirname(sys.executable), "anthem")
        self.assertTrue(os.path.isfile(anthem), "anthem is not installed next to Odoo")
        command = [anthem, f"odoo.addons.cloud_platform.songs::{song}", "--"]
        command += ["-d", self.db, self.addons_arg, *self.connection_args]
        return self._run(command, env, name)

    def command(self, *args, env, name):
        """``odoo cloud_platform <args>``: Odoo finds an addon's command only when the
        addons path comes first."""
        launcher = testing.odoo_launcher(odoo)
        command = [*launcher, self.addons_arg, "cloud_platform", *args, *self.connection_args]
        return self._run(command, env, name)

    def status(self):
        done = self.command("status", "-d", self.db, "--json", env={}, name="status")
        self.assertEqual(done.returncode, 0, done.stdout)
        return json.loads(done.stdout[done.stdout.index("{") :])

    def snapshot(self):
        """Every row a song may touch, with its write date."""
        query = (
            "SELECT 'param', key, value, write_date::text FROM ir_config_parameter"
            " UNION ALL SELECT 'attachment', id::text, coalesce(store_fname, 'db'),"
            " write_date::text FROM ir_attachment ORDER BY 1, 2"
        )
        done = subprocess.run(
            [shutil.which("psql"), *self._pg_args(), "-d", self.db, "-AtXc", query],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def install(self, song, env, name):
        done = self.sing(song, env, name)
        self.assertEqual(done.returncode, 0, done.stdout[-3000:])
        return done

    # -- songs --------------------------------------------------------------------------

    def test_a_song_installs_the_store_addon_it_needs(self):
        """As cloud_platform_exoscale / _ovh did by depending on attachment_s3 /
        attachment_swift: a database with cloud_platform alone."""
        bare = f"{self.db}_bare"
        self.addCleanup(
            subprocess.run,
            [shutil.which("dropdb"), "--if-exists", "--force", *self._pg_args(), bare],
            check=False,
            capture_output=True,
        )
        done = self.odoo(
            "-d", bare, "-i", "cloud_platform", "--without-demo=all", "--stop-after-init",
            "--http-port=0", env={}, name="create-bare",
        )  # fmt: skip
        self.assertEqual(done.returncode, 0, done.stdout[-3000:])
        anthem = os.path.join(os.path.dirname(sys.executable), "anthem")
        command = [anthem, "odoo.addons.cloud_platform.songs::install_exoscale", "--"]
        command += ["-d", bare, self.addons_arg, *self.connection_args]
        done = self._run(command, good("integration", self.client), "bare-exoscale")
        self.assertEqual(done.returncode, 0, done.stdout[-3000:])
        status = self.command("status", "-d", bare, "--json", env={}, name="bare-status")
        settings = json.loads(status.stdout)["settings"]
        self.assertEqual((settings["location"], settings["installed_kinds"]), ("s3", ["s3"]))

    def test_songs_configure_once_and_change_nothing_the_second_time(self):
        integration = good("integration", self.client)
        self.install("install_exoscale", integration, "exoscale-1")
        status = self.status()
        self.assertEqual(status["settings"]["platform"], "exoscale")
        self.assertEqual(status["settings"]["location"], "s3")
        self.assertEqual(status["to_move"], 0)
        self.assertNotIn("file", status["places"])
        self.assertGreater(status["places"]["s3"]["count"], 0)
        before = self.snapshot()
        self.install("install_exoscale", integration, "exoscale-2")
        self.assertEqual(self.snapshot(), before)

        # a misconfigured environment: the song fails naming every problem, nothing moves
        prod_wrong = changed(
            good("prod", self.client),
            AWS_BUCKETNAME=f"{self.client}-odoo-integration",
            ODOO_SESSION_REDIS_PREFIX=None,
        )
        done = self.sing("install_exoscale", prod_wrong, "exoscale-bad")
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("AWS_BUCKETNAME", done.stdout)
        self.assertIn("ODOO_SESSION_REDIS_PREFIX: is not set", done.stdout)
        self.assertNotIn(os.environ["TEST_S3_SECRET_KEY"], done.stdout)
        self.assertEqual(self.snapshot(), before)
        # one that would move everything to the database (test): refused before that
        test_wrong = changed(good("test", self.client), ODOO_SESSION_REDIS_PREFIX="shared")
        done = self.sing("install_exoscale", test_wrong, "exoscale-bad-test")
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("ODOO_SESSION_REDIS_PREFIX: 'shared' is not <client>-odoo-test", done.stdout)
        self.assertEqual(self.snapshot(), before)

        # OVH in test: attachments come back to the database; then `install` by variable
        self.install("install_ovh", good("test", self.client), "ovh-test")
        status = self.status()
        self.assertEqual(status["settings"]["location"], "db")
        self.assertEqual(set(status["places"]), {"db"})
        before = self.snapshot()
        self.install("install_ovh", good("test", self.client), "ovh-test-2")
        self.assertEqual(self.snapshot(), before)
        swift = {**good("integration", self.client, "swift"), "ODOO_CLOUD_PLATFORM_KIND": "ovh"}
        self.install("install", swift, "install-by-variable")
        status = self.status()
        self.assertEqual(status["settings"]["location"], "swift")
        self.assertGreater(status["places"]["swift"]["count"], 0)
        self.assertEqual(status["to_move"], 0)
        # the platform from server_environment's [cloud_platform] kind
        by_files = {**integration, "SERVER_ENV_CONFIG": "[cloud_platform]\nkind = exoscale\n"}
        self.install("install", by_files, "install-by-server-environment")
        status = self.status()
        self.assertEqual(status["settings"]["platform"], "exoscale")
        self.assertEqual(status["settings"]["location"], "s3")
        self.assertEqual(status["to_move"], 0, status)
        self.assertNotIn("swift", status["places"])  # the provider switch moved them

    # -- commands -----------------------------------------------------------------------

    def test_commands(self):
        integration = good("integration", self.client)
        self.install("install_exoscale", integration, "cli-setup")
        checks = {
            "good": (integration, 0, None),
            "good-probed": ({**integration, "ODOO_CLOUD_PLATFORM_PROBES": "1"}, 0, None),
            "bad-prefix": (
                changed(integration, ODOO_SESSION_REDIS_PREFIX="x-odoo-prod"),
                1,
                "ODOO_SESSION_REDIS_PREFIX: 'x-odoo-prod' is not <client>-odoo-integration",
            ),
            "bucket-missing": (
                {
                    **changed(integration, AWS_BUCKETNAME=f"{self.client}-nope"),
                    "ODOO_CLOUD_PLATFORM_PROBES": "1",
                },
                1,
                "AWS_BUCKETNAME: the s3 store does not answer",
            ),
            "redis-down": (
                {
                    **changed(integration, ODOO_SESSION_REDIS_URL="redis://127.0.0.1:9/0"),
                    "ODOO_CLOUD_PLATFORM_PROBES": "yes",
                },
                1,
                "Redis redis://127.0.0.1:9/0 does not answer",
            ),
            "unsafe": (
                changed(integration, AWS_ACCESS_KEY_ID=None, ODOO_CLOUD_PLATFORM_UNSAFE="1"),
                0,
                "ODOO_CLOUD_PLATFORM_UNSAFE is on",
            ),
            "unsafe-garbage": (
                {**integration, "ODOO_CLOUD_PLATFORM_UNSAFE": "perhaps"},
                1,
                "ODOO_CLOUD_PLATFORM_UNSAFE",
            ),
        }

        def run(item):
            name, (variables, _code, _text) = item
            return name, self.command("check", "-d", self.db, env=variables, name=name)

        with ThreadPoolExecutor(4) as pool:
            results = dict(pool.map(run, checks.items()))
        for name, (_variables, code, text) in checks.items():
            with self.subTest(case=name):
                self.assertEqual(results[name].returncode, code, results[name].stdout)
                if text:
                    self.assertIn(text, results[name].stdout)
        # the database of a configuration file's db_name
        conf = os.path.join(self.logs, "odoo.conf")
        with open(conf, "w") as handle:
            handle.write(f"[options]\ndb_name = {self.db}\n")
        done = self.command("check", "-c", conf, env=integration, name="check-conf")
        self.assertEqual(done.returncode, 0, done.stdout)
        self.assertIn(f"(database {self.db})", done.stdout)
        # no database: the environment alone; an unknown one: exit 3 naming it
        done = self.command("check", env=good("test", self.client), name="check-no-db")
        self.assertEqual(done.returncode, 0, done.stdout)
        done = self.command("status", "-d", f"{self.db}_missing", env={}, name="status-missing")
        self.assertEqual(done.returncode, 3, done.stdout)
        self.assertIn(f"{self.db}_missing", done.stdout)
        done = self.command("frobnicate", env={}, name="usage")
        self.assertEqual(done.returncode, 2)
        self.assertIn("unknown subcommand 'frobnicate'", done.stdout)

        # migrate back to the database and to the store again, resumable and idempotent
        for location, place in (("db", "db"), ("s3", "s3")):
            done = self.command(
                "migrate", "-d", self.db, f"--location={location}", env=integration,
                name=f"migrate-{location}",
            )  # fmt: skip
            self.assertEqual(done.returncode, 0, done.stdout[-3000:])
            status = self.status()
            self.assertEqual(status["settings"]["location"], location)
            self.assertEqual(status["to_move"], 0)
            self.assertIn(place, status["places"])
        self.assertIn("to store done", done.stdout)

    # -- servers ------------------------------------------------------------------------

    def test_servers_start_or_refuse(self):
        integration = good("integration", self.client)
        self.install("install_exoscale", integration, "servers-setup")
        cases = {
            "good": (integration, None),
            "unsafe": (
                changed(
                    integration, AWS_BUCKETNAME="shared-odoo-prod", ODOO_CLOUD_PLATFORM_UNSAFE="1"
                ),
                None,
            ),
            "one-mistake": (
                changed(integration, ODOO_SESSION_REDIS="0"),
                ["ODOO_SESSION_REDIS: must be on in integration"],
            ),
            "several": (
                changed(
                    integration,
                    RUNNING_ENV="prod",
                    AWS_SECRET_ACCESS_KEY=None,
                ),
                [
                    "ODOO_SESSION_REDIS_PREFIX: '",
                    "AWS_SECRET_ACCESS_KEY: is not set",
                    f"AWS_BUCKETNAME: '{self.client}-odoo-integration' is not a"
                    " <client>-odoo-prod name",
                ],
            ),
            "garbage": (
                changed(integration, ODOO_CLOUD_PLATFORM_UNSAFE="maybe"),
                ["ODOO_CLOUD_PLATFORM_UNSAFE"],
            ),
            # a store slower than limit_time_real matters where workers enforce it
            "timing-threaded": (changed(integration, AWS_READ_TIMEOUT="30"), None),
            "timing-prefork": (
                changed(integration, AWS_READ_TIMEOUT="30"),
                [
                    "AWS_READ_TIMEOUT: with AWS_CONNECT_TIMEOUT=5, AWS_READ_TIMEOUT=30 and"
                    " AWS_MAX_ATTEMPTS=3, a slow store can hold an attachment write for"
                    " 216 s, not less than Odoo's limit_time_real of 120 s"
                ],
                "--workers=2",
                "--limit-time-real=120",
            ),
            "good-prefork": (integration, None, "--workers=2", "--limit-time-real=120"),
        }

        def serve(item):
            name, (variables, _expected, *args) = item
            log_path = os.path.join(self.logs, f"server-{name}.log")
            command = testing.odoo_command(
                odoo,
                "-d",
                self.db,
                f"--db-filter=^{self.db}$",
                f"--data-dir={self.data_dir}",
                *args,
            )
            with testing.OdooServer(
                command,
                {**self.base_env, **variables},
                log_path=log_path,
                ready_statuses=(200, 500),
            ) as server:
                health = requests.get(f"{server.url}/web/health", timeout=60)
                response = requests.get(f"{server.url}/web/login", timeout=60)
            # the only database is refused: even the health route fails (a load
            # balancer takes the process out)
            self.assertEqual(health.status_code, response.status_code, name)
            with open(log_path, encoding="utf-8", errors="replace") as log:
                return name, (response.status_code, log.read())

        with ThreadPoolExecutor(len(cases)) as pool:
            results = dict(pool.map(serve, cases.items()))
        for name, (_variables, expected, *_args) in cases.items():
            status, log = results[name]
            with self.subTest(case=name):
                if expected is None:
                    self.assertEqual(status, 200, log[-3000:])
                    self.assertNotIn("is not served", log)
                else:
                    self.assertEqual(status, 500, log[-3000:])
                    refusals = [line for line in log.splitlines() if "is not served" in line]
                    self.assertTrue(refusals, log[-3000:])
                    message = log[log.index(refusals[0]) :]
                    for text in expected:
                        self.assertIn(text, message)
                    self.assertNotIn(os.environ["TEST_S3_SECRET_KEY"], log)
        self.assertIn("ODOO_CLOUD_PLATFORM_UNSAFE is on", results["unsafe"][1])
