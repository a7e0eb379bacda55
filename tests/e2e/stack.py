"""The end-to-end platform on loopback: what a hosting team runs, scaled down.

    with Stack(workdir) as stack:   # services, replica, database, Odoo processes, nginx
        requests.get(stack.url + "/web/login")

- the services harness (``scripts/services.sh``: Redis, Swift with its S3 API) and a
  streaming PostgreSQL replica of the machine's cluster (``scripts/e2e.sh``);
- a database made as a hosting team makes one: ``odoo -i
  cloud_platform,monitoring_prometheus,attachment_s3 --stop-after-init`` (its own
  throwaway data dir), then anthem's ``cloud_platform.songs::install_exoscale``
  (location ``s3`` for the environment, the files written during the install migrated
  to the store);
- ``processes`` Odoo 18 servers in prefork mode (``workers`` each, one cron thread),
  the suite in ``--load``, ``--proxy-mode``, each with its own empty data dir, all on
  the same database through the primary and the replica (``--db_replica_host`` /
  ``--db_replica_port``), configured by environment variables only, as
  ``RUNNING_ENV=integration`` of client ``e2e<hex>`` (cloud_platform's checks pass);
- nginx in front of them with the configuration of ``scripts/e2e/nginx.conf.template``;
- a UDP socket that receives their statsd packets.

``db``, ``nginx_port`` and ``statsd_port`` (a statsd server of the caller's) fix what is
otherwise made up; ``./dev up`` (scripts/local_platform.py) starts this stack with them
and leaves it running.

``stateless=False`` makes the baseline of the benchmark instead: the same database
without the suite (plain Odoo: local filestore, file sessions), the same processes with
``--load=base,web`` and none of the suite's variables; ``modules`` installs more addons
in it (the benchmark's "suite's addons installed, location file" row).

Raises ``Unavailable`` (the caller skips, loudly) when no Odoo 18 is found or when the
replica's Debian packages cannot be installed; ``StackError`` on any other failure, with
the log that tells why.
"""

import concurrent.futures
import contextlib
import getpass
import importlib.util
import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
ADDONS = Path(__file__).resolve().parent / "addons"
SERVICES_SH = ROOT / "scripts" / "services.sh"
E2E_SH = ROOT / "scripts" / "e2e.sh"
if str(ROOT) not in sys.path:  # run as a script: the core package of this checkout
    sys.path.insert(0, str(ROOT))

from stateless_odoo.storage import build_store  # noqa: E402
from stateless_odoo.testing import (  # noqa: E402
    OdooServer,
    StatsdServer,
    free_port,
    remove_container,
)


def _load(name, path):
    """A module of scripts/ by its path, under a name no package can shadow."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


odoo_tier = _load("e2e_odoo_tier", ROOT / "scripts" / "odoo_tier.py")
nginx = _load("e2e_nginx", ROOT / "scripts" / "e2e" / "nginx.py")

#: the --load line of the stateless processes (the older addons', plus Prometheus); logging_json
#: first, so that the lines the other addons log while they load are JSON already
SERVER_WIDE = "base,web,logging_json,session_redis,monitoring_statsd,monitoring_prometheus"
#: installed in the stateless database (the store addon per kind is added)
INSTALL = "cloud_platform,monitoring_prometheus"  # installed: it counts the cron runs
STORE_ADDON = {"s3": "attachment_s3", "swift": "attachment_swift"}
SONG = {"s3": "install_exoscale", "swift": "install_ovh"}
ADMIN = ("admin", "admin")  # Odoo's own default when a database is made with -i


class Unavailable(Exception):
    """What the platform needs is not on this machine (the caller skips, and says so)."""


class StackError(RuntimeError):
    """The platform did not come up; the message says why."""


def _script_env(script, *args, timeout=600):
    """Run ``script up`` (exit 3: packages missing) and return the variables of
    ``script env``."""
    up = subprocess.run(
        [str(script), "up", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if up.returncode == 3:
        raise Unavailable(f"{script.name} up: {up.stderr.strip()}")
    if up.returncode:
        raise StackError(f"{script.name} up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
    out = subprocess.run([str(script), "env"], capture_output=True, text=True, check=True)
    return odoo_tier.parse_exports(out.stdout)


class OdooProcess(OdooServer):
    """One Odoo server of the platform (testing.OdooServer: fixed ports across
    restarts, kill() of its process group), with its own empty data dir and its
    output appended to ``<workdir>/<name>.log``."""

    error = StackError

    def __init__(self, name, command, env, workdir, *, timeout=180):
        self.data_dir = Path(workdir) / f"{name}-data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [*command, f"--data-dir={self.data_dir}"],
            env,
            log_path=Path(workdir) / f"{name}.log",
            timeout=timeout,
            name=name,
        )


class Stack:
    """The platform; see the module's docstring. Use as a context manager."""

    def __init__(
        self,
        workdir,
        *,
        processes=2,
        workers=2,
        stateless=True,
        kind="s3",
        serving="x-accel-redirect",
        modules=None,
        keep=False,
        log=print,
        db=None,
        nginx_port=None,
        statsd_port=None,
    ):
        self.workdir = Path(workdir)
        self.count = processes
        self.workers = workers
        self.stateless = stateless
        self.kind = kind
        self.serving = serving
        self.modules = modules  # of a baseline: addons installed besides base,web
        self.keep = keep
        self.log = log
        self.client = f"e2e{secrets.token_hex(3)}"
        self.db = db or f"stateless_e2e_{self.client}" + ("" if stateless else "_local")
        self.environment = "integration"
        self.container = f"{self.client}-odoo-{self.environment}"
        self.prometheus_token = secrets.token_hex(16)
        self.processes = []
        self.statsd = None
        self.nginx_prefix = self.workdir / "nginx"
        self.nginx_port = nginx_port or free_port()
        self.statsd_port = statsd_port  # a statsd server of the caller's, else one here
        self.url = f"http://127.0.0.1:{self.nginx_port}"
        self._store = None
        self._created = False

    # ------------------------------------------------------------------ up --
    def __enter__(self):
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc):
        self.down()

    def up(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)  # noqa: S103 - nginx's workers go through it
        python, found = odoo_tier.find_odoo()
        if python is None:
            raise Unavailable(found)
        self.python, (_major, self.odoo_version, self.odoo_root) = python, found
        if os.geteuid() != 0:
            raise Unavailable("the replica runs as the postgres OS user: run as root")
        odoo_tier.ensure_core_dependencies(python)
        self.log("e2e: services (Redis, Swift with S3) and the PostgreSQL replica")
        self.services = odoo_tier.services_env()
        # the replica is stopped at the end when this stack started it
        status = subprocess.run([str(E2E_SH), "status"], capture_output=True, check=False)
        self._replica_was_up = status.returncode == 0
        self.e2e_env = _script_env(E2E_SH)
        self.pg = {
            "host": self.e2e_env["E2E_PG_HOST"],
            "port": self.e2e_env["E2E_PG_PORT"],
            "user": os.environ.get("PGUSER", getpass.getuser()),
            "replica_host": self.e2e_env["E2E_PG_REPLICA_HOST"],
            "replica_port": self.e2e_env["E2E_PG_REPLICA_PORT"],
        }
        self.env = self._environment()
        if self.stateless:
            self._store = build_store(self.kind, self.env, db_name=self.db)
            self._store.ensure_container()
            if self.statsd_port is None:
                self.statsd = StatsdServer()
                self.statsd_port = self.statsd.port
            self.env.update(STATSD_PORT=str(self.statsd_port))
        self._create_database()
        self.processes = [
            OdooProcess(f"odoo{index + 1}", self._server_command(), self._process_env(index),
                        self.workdir)
            for index in range(self.count)
        ]  # fmt: skip
        self.log(f"e2e: starting {self.count} Odoo processes ({self.workers} workers each)")
        with concurrent.futures.ThreadPoolExecutor(len(self.processes)) as pool:
            list(pool.map(OdooProcess.start, self.processes))  # raises the first error
        self.route()
        self.log(f"e2e: nginx on {self.url} in front of {len(self.processes)} processes")
        return self

    def _environment(self):
        """What a deployment gives every process (and the commands) through the
        environment; never the caller's AWS_*, SWIFT_*, ODOO_* (odoo_tier's rule)."""
        env = odoo_tier.odoo_environment(self.services, self.container)
        if not self.stateless:
            env = {k: v for k, v in env.items() if not k.startswith(odoo_tier.CONTRACT)}
            if self.modules:  # cloud_platform installed: its checks want an environment
                env["RUNNING_ENV"] = "dev"
            return env
        env.update(
            {
                "RUNNING_ENV": self.environment,
                "ODOO_SESSION_REDIS_PREFIX": self.container,
                "ODOO_ATTACHMENT_SERVING": self.serving,
                "ODOO_LOGGING_JSON": "1",
                "ODOO_STATSD": "1",
                "STATSD_HOST": "127.0.0.1",
                "STATSD_CUSTOMER": self.client,
                "ODOO_PROMETHEUS": "1",
                "ODOO_PROMETHEUS_TOKEN": self.prometheus_token,
                "ODOO_PROMETHEUS_ALLOW": "127.0.0.1/32",
            }
        )
        return env

    def _process_env(self, index):
        env = dict(self.env)
        if self.stateless:
            # prometheus_client's multiprocess files: one directory per host, emptied
            # by the server at start (tmpfs in production)
            directory = self.workdir / f"odoo{index + 1}-prometheus"
            directory.mkdir(exist_ok=True)
            env["ODOO_PROMETHEUS_DIR"] = str(directory)
        return env

    def _connection_args(self, replica=True):
        args = [
            f"--db_host={self.pg['host']}",
            f"--db_port={self.pg['port']}",
            f"--db_user={self.pg['user']}",
        ]
        if replica:
            args += [
                f"--db_replica_host={self.pg['replica_host']}",
                f"--db_replica_port={self.pg['replica_port']}",
            ]
        return args

    def addons_path(self):
        roots = [self.odoo_root / "addons", self.odoo_root / "odoo" / "addons", ROOT, ADDONS]
        return ",".join(str(path) for path in roots if path.is_dir())

    def odoo_command(self, *args):
        """The Odoo command line (addons path first: Odoo finds addons' commands only
        then) with ``args``."""
        launcher = odoo_tier.odoo_launcher(self.python, self.odoo_root)
        return [*launcher, f"--addons-path={self.addons_path()}", *args]

    def _server_command(self):
        return self.odoo_command(
            "-d", self.db, f"--db-filter=^{self.db}$", *self._connection_args(),
            f"--load={SERVER_WIDE if self.stateless else 'base,web'}",
            f"--workers={self.workers}", "--max-cron-threads=1", "--proxy-mode",
            "--limit-time-real=120",
        )  # fmt: skip

    def run(self, command, name, timeout=900):
        """Run a command of the platform's (Odoo's, anthem's) with its environment; its
        output goes to ``<workdir>/<name>.log``; StackError when it fails."""
        with open(self.workdir / f"{name}.log", "wb") as log:
            done = subprocess.run(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout,
                check=False, cwd=self.workdir,
            )  # fmt: skip
        if done.returncode:
            tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-4000:]
            raise StackError(f"{name}: {command[0]} exited with {done.returncode}:\n{tail}")

    def _create_database(self):
        """As a hosting team does: install, then the provider's song."""
        init_dir = self.workdir / "setup-data"
        modules = "base,web"
        if self.stateless:
            modules += f",{INSTALL},{STORE_ADDON[self.kind]}"
        elif self.modules:
            modules += f",{self.modules}"
        self.log(f"e2e: creating database {self.db} ({modules})")
        self._created = True
        self.run(
            self.odoo_command(
                "-d", self.db, "-i", modules, "--without-demo=all", "--stop-after-init",
                "--http-port=0", "--max-cron-threads=0", *self._connection_args(replica=False),
                f"--data-dir={init_dir}",
                f"--load={SERVER_WIDE if self.stateless else 'base,web'}",
            ),
            "setup-install",
        )  # fmt: skip
        if not self.stateless:
            return
        anthem = Path(self.python).parent / "anthem"
        self.log(f"e2e: anthem cloud_platform.songs::{SONG[self.kind]}")
        self.run(
            [
                str(anthem), f"odoo.addons.cloud_platform.songs::{SONG[self.kind]}", "--",
                "-d", self.db, f"--addons-path={self.addons_path()}",
                *self._connection_args(replica=False), f"--data-dir={init_dir}",
            ],
            "setup-song",
        )  # fmt: skip

    def route(self, indices=None):
        """(Re)configure nginx in front of the processes of ``indices`` (all by
        default) and start or reload it."""
        chosen = [self.processes[i] for i in (range(len(self.processes)) if indices is None
                                              else indices)]  # fmt: skip
        self.nginx_prefix.mkdir(parents=True, exist_ok=True)
        nginx.render(
            self.nginx_prefix,
            self.nginx_port,
            [p.port for p in chosen],
            [p.gevent_port for p in chosen],
            self.nginx_prefix / "cache",
        )
        nginx.start(self.nginx_prefix)

    # ---------------------------------------------------------------- tools --
    def connect(self, replica=False, dbname=None):
        host, port = (
            (self.pg["replica_host"], self.pg["replica_port"])
            if replica
            else (self.pg["host"], self.pg["port"])
        )
        connection = psycopg2.connect(
            host=host,
            port=port,
            user=self.pg["user"],
            dbname=dbname or self.db,
            connect_timeout=10,
        )
        connection.autocommit = True
        return connection

    def sql(self, query, args=(), replica=False, dbname=None):
        with contextlib.closing(self.connect(replica, dbname)) as connection:
            with connection.cursor() as cursor:
                cursor.execute(query, args)
                return cursor.fetchall() if cursor.description else None

    def nginx_access_log(self):
        path = self.nginx_prefix / "logs" / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    # ---------------------------------------------------------------- down --
    def down(self):
        for process in self.processes:
            with contextlib.suppress(Exception):
                process.stop(timeout=20)
        with contextlib.suppress(Exception):
            nginx.stop(self.nginx_prefix)
        if self.statsd:
            self.statsd.close()
        if getattr(self, "_replica_was_up", True) is False and not self.keep:
            subprocess.run([str(E2E_SH), "down"], capture_output=True, check=False)
        if self.keep:
            self.log(f"e2e: kept database {self.db}, container {self.container}, {self.workdir}")
            return
        if self._created:
            subprocess.run(
                [
                    "dropdb", "--if-exists", "--force", "-h", self.pg["host"], "-p",
                    self.pg["port"], "-U", self.pg["user"], self.db,
                ],
                capture_output=True, check=False,
            )  # fmt: skip
        if self._store is not None:
            with contextlib.suppress(Exception):
                remove_container(self._store)
