"""What the benchmarks share: this checkout first on the import path, the object stores
of the harness, and real Odoo 18 servers (databases, start-up, log-in, JSON-RPC load,
CPU time).

Each bench runs as ``python bench/bench_X.py`` (``./dev bench X``): its directory comes
first on the import path, where ``import common`` finds this module. Import it before
the checkout's own packages.
"""

import getpass
import hashlib
import importlib.util
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
# this checkout's packages first: tests/ (bench_e2e's stack) is not installed, and the
# core package is the one of the tree benchmarked, whatever the venv's editable install
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stateless_odoo import testing  # noqa: E402
from stateless_odoo.testing import free_port  # noqa: E402
from stateless_odoo.testing.pg import PgCursor  # noqa: E402


def _load_script(name):
    """A module of scripts/ (no package) by its path."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: the Odoo tier: how it finds an Odoo 18 and starts it, the harness's services
odoo_tier = _load_script("odoo_tier")
services_env = odoo_tier.services_env
odoo_launcher = odoo_tier.odoo_launcher


# -- the object stores of the harness ---------------------------------------------------


def store_environ(api, container, endpoint=None, services=None):
    """The variables of a store (``s3`` or ``swift``) on ``container`` of the harness's
    Swift (its ``TEST_*`` variables: ``services``, by default this environment), through
    ``endpoint`` when given."""
    e = os.environ if services is None else services
    if api == "s3":
        return {
            "AWS_HOST": endpoint or e["TEST_S3_ENDPOINT"],
            "AWS_REGION": e["TEST_S3_REGION"],
            "AWS_ACCESS_KEY_ID": e["TEST_S3_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": e["TEST_S3_SECRET_KEY"],
            "AWS_BUCKETNAME": container,
        }
    return {
        "SWIFT_AUTH_URL": endpoint or e["TEST_SWIFT_AUTH_URL"],
        "SWIFT_ACCOUNT": e["TEST_SWIFT_ACCOUNT"],
        "SWIFT_PASSWORD": e["TEST_SWIFT_PASSWORD"],
        "SWIFT_WRITE_CONTAINER": container,
    }


def empty(store):
    """Delete every object of ``store``'s container (8 threads, 100 keys a request)."""
    keys = [info.key for info in store.list()]
    batches = [keys[start : start + 100] for start in range(0, len(keys), 100)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(store.delete_many, batches))


def remove_container(store):
    """Empty ``store``'s container (in parallel: benchmarks leave many objects), then
    delete it."""
    empty(store)
    testing.remove_container(store)  # nothing left to list: deletes the container


# -- real Odoo 18 servers -----------------------------------------------------------------

#: alternating load windows per mode, per workload and round (sessions, observability)
WINDOWS = 5

#: the RPCs measured: the lightest authenticated call there is (where a session store
#: weighs most), and what a list view of 80 partners asks
WORKLOADS = {
    "tiny": {
        "model": "res.partner",
        "method": "search_read",
        "args": [[]],
        "kwargs": {"fields": ["name"], "limit": 5},
    },
    "list": {
        "model": "res.partner",
        "method": "web_search_read",
        "args": [],
        "kwargs": {
            "domain": [],
            "specification": {
                "display_name": {},
                "email": {},
                "phone": {},
                "city": {},
                "country_id": {"fields": {"display_name": {}}},
                "user_id": {"fields": {}},
            },
            "limit": 80,
            "order": "name",
        },
    },
}

#: the observability addons (observability, instructions) and their variables
ALL_LOAD = "base,web,logging_json,monitoring_statsd,monitoring_prometheus"
FEATURES = {"json": "ODOO_LOGGING_JSON", "statsd": "ODOO_STATSD", "prometheus": "ODOO_PROMETHEUS"}


def all_env(statsd_port):
    """The variables that turn the three features on (statsd to ``statsd_port``)."""
    return {
        "ODOO_LOGGING_JSON": "1",
        "ODOO_STATSD": "1",
        "STATSD_CUSTOMER": "bench",
        "STATSD_ENVIRONMENT": "bench",
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": str(statsd_port),
        "ODOO_PROMETHEUS": "1",
    }


def odoo_or_exit():
    """``(python, version, odoo_root)`` of the Odoo 18 found, with the core package's
    dependencies installed there; the bench exits when there is none."""
    python, found = odoo_tier.find_odoo()
    if python is None:
        sys.exit(f"bench: {found}")
    _major, version, odoo_root = found
    odoo_tier.ensure_core_dependencies(python)
    return python, version, odoo_root


def bench_env():
    """This environment without the suite's variables, with the core package importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(odoo_tier.CONTRACT)}
    env["PYTHONPATH"] = str(ROOT)
    return env


def pg_user():
    """PostgreSQL's role, as libpq chooses it: PGUSER, else the OS user's."""
    return os.environ.get("PGUSER") or getpass.getuser()


def odoo_options(odoo_root, db, *extra):
    """The options of an Odoo command line on ``db`` (its database, addons path, no cron
    thread), then ``extra``."""
    addons = [p for p in (odoo_root / "addons", odoo_root / "odoo" / "addons") if p.is_dir()]
    return [
        "-d", db, "--db_host", "127.0.0.1", "--db_user", pg_user(),
        "--addons-path", ",".join(map(str, [*addons, ROOT])),
        "--max-cron-threads", "0",
        *extra,
    ]  # fmt: skip


def odoo_command(python, odoo_root, db, *extra):
    return [*odoo_launcher(python, odoo_root), *odoo_options(odoo_root, db, *extra)]


def start_odoo(
    python, odoo_root, db, env, data_dir, load="base,web,session_redis", log=("--log-level", "warn")
):
    """A prefork Odoo (2 workers) on free ports, up: ``(process, url)``."""
    port = free_port()
    proc = subprocess.Popen(
        odoo_command(
            python,
            odoo_root,
            db,
            "--load",
            load,
            "--workers",
            "2",
            "--http-interface",
            "127.0.0.1",
            "--http-port",
            str(port),
            "--gevent-port",
            str(free_port()),
            "--data-dir",
            data_dir,
            *log,
        ),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(proc, url, 60)
    return proc, url


def wait_healthy(proc, url, seconds):
    """Wait until ``/web/health`` answers 200; exit the bench if it never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: Odoo exited with {proc.returncode} before it answered")
        try:
            if requests.get(f"{url}/web/health", timeout=30).status_code == 200:
                return
        except requests.exceptions.RequestException:
            pass
        time.sleep(0.25)
    proc.kill()
    sys.exit(f"bench: Odoo did not answer in {seconds:g} s")


def create_database(python, odoo_root, db, env, addons="web", *extra):
    """A fresh database with ``addons`` installed, without demo data."""
    subprocess.run(
        odoo_command(
            python, odoo_root, db, "-i", addons, "--without-demo", "all", "--stop-after-init",
            "--log-level", "warn", *extra,
        ),
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def drop_database(db):
    subprocess.run(["dropdb", "--if-exists", "-h", "127.0.0.1", "-U", pg_user(), db], check=False)


def login(url, db):
    """The session id of admin logged in to ``db``."""
    session = requests.Session()
    answer = session.post(
        f"{url}/web/session/authenticate",
        json={"jsonrpc": "2.0", "params": {"db": db, "login": "admin", "password": "admin"}},
        timeout=30,
    ).json()
    if not answer.get("result", {}).get("uid"):
        sys.exit(f"bench: login failed: {answer}")
    return session.cookies["session_id"]


def call_kw(url, sid, params, timeout=30):
    return requests.post(
        f"{url}/web/dataset/call_kw",
        json={"jsonrpc": "2.0", "method": "call", "params": params},
        cookies={"session_id": sid},
        timeout=timeout,
    ).json()


def seed_partners(url, sid, count=300):
    rows = [
        {"name": f"Partner {i:04d}", "email": f"p{i}@example.com", "city": "Lausanne"}
        for i in range(count)
    ]
    answer = call_kw(
        url, sid, {"model": "res.partner", "method": "create", "args": [rows], "kwargs": {}}, 120
    )
    if "error" in answer:
        sys.exit(f"bench: could not create partners: {answer['error']}")


def run_clients(url, sid, seconds, clients, workload):
    """``clients`` threads calling ``workload`` for ``seconds``: requests/s, count, p50
    and p95 in ms; the bench exits if a request failed."""
    payload = {"jsonrpc": "2.0", "method": "call", "params": WORKLOADS[workload]}
    latencies, errors = [], []
    deadline = time.monotonic() + seconds

    def client():
        http = requests.Session()
        http.cookies.set("session_id", sid)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            answer = http.post(f"{url}/web/dataset/call_kw", json=payload, timeout=30)
            latencies.append(time.perf_counter() - started)
            if answer.status_code != 200 or "error" in answer.json():
                errors.append(answer.text[:200])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if errors:
        sys.exit(f"bench: {len(errors)} requests failed, first: {errors[0]}")
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "count": len(latencies),
        "p50": latencies[len(latencies) // 2] * 1000,
        "p95": latencies[int(len(latencies) * 0.95)] * 1000,
    }


TICK = os.sysconf("SC_CLK_TCK")


def _process_table():
    """{pid: (parent pid, CPU ticks: user, system, and of reaped children)} of every
    process, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime (fields 14-17 of stat)
        table[int(entry)] = (int(fields[1]), sum(int(value) for value in fields[11:15]))
    return table


def tree(root_pid, table=None):
    """``root_pid`` and its live descendants."""
    table = table if table is not None else _process_table()
    found = []
    for pid in table:
        ancestor = pid
        while ancestor not in (root_pid, 0, 1) and ancestor in table:
            ancestor = table[ancestor][0]
        if ancestor == root_pid:
            found.append(pid)
    return found


def tree_cpu(root_pid):
    """CPU seconds (user + system) of ``root_pid``, its live descendants, and the
    children it has reaped (Odoo recycles workers)."""
    table = _process_table()
    return sum(table[pid][1] for pid in tree(root_pid, table)) / TICK


# -- a generated filestore and its rows (migration, lifecycle) ---------------------------

#: (share of files, smallest, largest) in bytes, sizes log-uniform within a class
SIZE_CLASSES = [
    (0.70, 1024, 64 * 1024),
    (0.25, 64 * 1024, 1024 * 1024),
    (0.045, 1024 * 1024, 5 * 1024 * 1024),
    (0.005, 5 * 1024 * 1024, 20 * 1024 * 1024),
]


def pg_base():
    e = os.environ
    return f"host={e['TEST_PG_HOST']} port={e['TEST_PG_PORT']} user={e['TEST_PG_USER']}"


# -- the generated filestore -----------------------------------------------------------


def sizes(count, rng):
    out = []
    for share, low, high in SIZE_CLASSES:
        n = max(1, round(count * share))
        out += [int(math.exp(rng.uniform(math.log(low), math.log(high)))) for _ in range(n)]
    rng.shuffle(out)
    return out[:count]


def generate(root, count, seed=42):
    """Files as Odoo's filestore holds them; returns [(fname, checksum, size)] per row."""
    rng = random.Random(seed)
    rows = []
    distinct = []
    for size in sizes(count, rng):
        if distinct and rng.random() < 0.05:  # a duplicate: another row, same file
            rows.append(rng.choice(distinct))
            continue
        data = rng.randbytes(size)
        checksum = hashlib.sha1(data).hexdigest()  # noqa: S324 - Odoo's checksum
        fname = f"{checksum[:2]}/{checksum}"
        os.makedirs(os.path.join(root, checksum[:2]), exist_ok=True)
        with open(os.path.join(root, fname), "wb") as out:
            out.write(data)
        distinct.append((fname, checksum, size))
        rows.append(distinct[-1])
    return rows


def make_attachment_database(rows):
    """A throwaway database whose ir_attachment rows name ``rows`` ((fname, checksum,
    size) as :func:`generate` gives them)."""
    import psycopg2

    name = f"stateless_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(pg_base() + " dbname=postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    admin.close()
    with PgCursor(f"{pg_base()} dbname={name}") as cr:
        cr.execute(
            """CREATE TABLE ir_attachment (
                id serial PRIMARY KEY, name varchar, type varchar DEFAULT 'binary',
                store_fname varchar, db_datas bytea, checksum varchar(40),
                mimetype varchar, file_size integer)"""
        )
        cr.execute("CREATE INDEX ON ir_attachment (store_fname)")
        cr.execute(
            "INSERT INTO ir_attachment (name, store_fname, checksum, mimetype, file_size)"
            " SELECT 'f', f, c, 'application/octet-stream', s"
            " FROM unnest(%s::varchar[], %s::varchar[], %s::int[]) AS t(f, c, s)",
            ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]),
        )
    return name


def drop_attachment_database(name):
    import psycopg2

    admin = psycopg2.connect(pg_base() + " dbname=postgres")
    admin.autocommit = True
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def reset_rows(dbname, rows):
    with PgCursor(f"{pg_base()} dbname={dbname}") as cr:
        cr.execute("TRUNCATE ir_attachment RESTART IDENTITY")
        cr.execute(
            "INSERT INTO ir_attachment (name, store_fname, checksum, mimetype, file_size)"
            " SELECT 'f', f, c, 'application/octet-stream', s"
            " FROM unnest(%s::varchar[], %s::varchar[], %s::int[]) AS t(f, c, s)",
            ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]),
        )


def run_phase_process(what, command, store_env):
    """Run a benchmark's phase in a process of its own (its own peak RSS), the store's
    variables in ``BENCH_STORE_ENV``; ``(seconds it printed, peak RSS in MB)``."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, "BENCH_STORE_ENV": store_env}
    )
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    if status:
        sys.exit(f"{what} failed (status {status})")
    return json.loads(out.strip().splitlines()[-1])["seconds"], usage.ru_maxrss / 1024


# -- an application server's share of the CPUs -------------------------------------------


class CpuQuota:
    """A CPU cgroup capping the processes put in it at ``cpus`` CPUs (``0.5``: half of
    one), as a host of that size would: the processes benchmarked get their share and
    the servers beside them (PostgreSQL, Redis, the store, nginx, the clients) the rest
    of the machine, so that a row's requests/s is what the capped process can serve and
    not what the whole machine can. cgroup v2 (``cpu.max``) or v1 (``cpu.cfs_quota_us``);
    needs root. Children inherit it (Odoo's workers, the ones it forks later)."""

    PERIOD_US = 20_000  # short periods: a throttled worker waits at most this long

    def __init__(self, cpus):
        if not 0 < cpus <= os.cpu_count():
            raise SystemExit(f"--odoo-cpus: {cpus} is not between 0 and {os.cpu_count()}")
        quota = int(cpus * self.PERIOD_US)
        name = f"stateless-bench-{os.getpid()}"
        v2, v1 = Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/cpu")
        try:
            if (v2 / "cgroup.controllers").exists():
                self.path = v2 / name
                self.path.mkdir()
                (self.path / "cpu.max").write_text(f"{quota} {self.PERIOD_US}")
            else:
                self.path = v1 / name
                self.path.mkdir()
                (self.path / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError as exc:
            raise SystemExit(
                f"--odoo-cpus needs a writable CPU cgroup (root, cgroup v1 cpu or v2 with"
                f" the cpu controller): {exc}"
            ) from None

    def add(self, root_pid):
        """Move ``root_pid`` and its live descendants into the cgroup."""
        for pid in tree(root_pid):
            try:
                (self.path / "cgroup.procs").write_text(str(pid))
            except OSError:  # gone meanwhile
                continue

    def throttling(self):
        """(throttled periods, periods) so far."""
        stat = dict(
            line.split() for line in (self.path / "cpu.stat").read_text().splitlines() if line
        )
        return int(stat.get("nr_throttled", 0)), int(stat.get("nr_periods", 0))

    def close(self):
        """Move what is left back to the root cgroup and remove this one."""
        root = self.path.parent / "cgroup.procs"
        for pid in (self.path / "cgroup.procs").read_text().split():
            try:
                root.write_text(pid)
            except OSError:
                continue
        try:
            self.path.rmdir()
        except OSError:
            time.sleep(0.5)
            self.path.rmdir()
