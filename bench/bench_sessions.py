"""Authenticated JSON-RPC requests per second: Redis sessions against file sessions.

Two real Odoo 18 servers in prefork mode (2 workers each) with
``--load=base,web,session_redis`` on the same database, running side by side: ``file``
with ``ODOO_SESSION_REDIS=0`` (Odoo's file store in its own data_dir), ``redis`` with
``ODOO_SESSION_REDIS=1`` (the harness's Redis). C client threads call
``/web/dataset/call_kw`` for each workload of WORKLOADS (the lightest authenticated call,
where a session store weighs most, and a list view's read of 80 partners), D seconds per
mode, workload and round, in short windows alternating between the two servers so that
both see the same machine. Two figures per mode: requests/s, and the CPU time spent per
request (user + system of the Odoo master, its workers and the workers it reaped, from
/proc; for ``redis``, plus the Redis server's own CPU in the same windows), which other
load on a shared machine disturbs much less. Ratios are paired within each round; the
median of the rounds counts. Goal: redis/file >= 0.95 in requests/s.

    ./dev bench sessions [--seconds 10] [--clients 4] [--rounds 3]
    BENCH_AA=1 ./dev bench sessions     # both servers with file sessions: the noise
"""

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import odoo_tier  # noqa: E402

GOAL = 0.95
#: alternating load windows per mode, per workload and round
WINDOWS = 5


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu(root_pid):
    """CPU seconds (user + system) of ``root_pid``, its live descendants, and the
    children it has reaped (Odoo recycles workers)."""
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(fields[1])
        # utime, stime, cutime, cstime (fields 14-17 of stat)
        times[pid] = [int(value) for value in fields[11:15]]
    total = 0
    for pid, (utime, stime, cutime, cstime) in times.items():
        ancestor = pid
        while ancestor not in (root_pid, 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor == root_pid:
            total += utime + stime + cutime + cstime
    return total / _TICK


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
    env = {k: v for k, v in os.environ.items() if not k.startswith(odoo_tier._CONTRACT)}
    env["PYTHONPATH"] = str(ROOT)
    return env


def odoo_command(python, odoo_root, db, *extra):
    pg_user = os.environ.get("PGUSER") or odoo_tier.getpass.getuser()
    addons = [p for p in (odoo_root / "addons", odoo_root / "odoo" / "addons") if p.is_dir()]
    return [
        *odoo_tier.odoo_launcher(python, odoo_root),
        "-d", db, "--db_host", "127.0.0.1", "--db_user", pg_user,
        "--addons-path", ",".join(map(str, [*addons, ROOT])),
        "--max-cron-threads", "0",
        *extra,
    ]  # fmt: skip


def start_odoo(
    python, odoo_root, db, env, data_dir, load="base,web,session_redis", log=("--log-level", "warn")
):
    port = odoo_tier.free_port()
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
            str(odoo_tier.free_port()),
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
    subprocess.run(
        ["dropdb", "--if-exists", "-h", "127.0.0.1", "-U",
         os.environ.get("PGUSER") or odoo_tier.getpass.getuser(), db],
        check=False,
    )  # fmt: skip


def login(url, db):
    session = requests.Session()
    answer = session.post(
        f"{url}/web/session/authenticate",
        json={"jsonrpc": "2.0", "params": {"db": db, "login": "admin", "password": "admin"}},
        timeout=30,
    ).json()
    if not answer.get("result", {}).get("uid"):
        sys.exit(f"bench: login failed: {answer}")
    return session.cookies["session_id"]


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


def load(url, sid, seconds, clients, workload):
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


def redis_server_pid(services):
    """The harness's Redis server (the one TEST_REDIS_URL names), from its pidfile."""
    pidfile = Path(services["STATELESS_SERVICES_DIR"]) / "run" / "redis.pid"
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        sys.exit(f"bench: no Redis pid in {pidfile}: is the harness up (./dev up)?")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    python, version, odoo_root = odoo_or_exit()
    services = odoo_tier.services_env()
    redis_pid = redis_server_pid(services)
    db = f"bench_sessions_{os.getpid()}"
    base_env = bench_env()
    print(f"bench: Odoo {version}, database {db}: installing web ...", flush=True)
    create_database(python, odoo_root, db, base_env)
    modes = {
        "file": {"ODOO_SESSION_REDIS": "0"},
        "redis": {
            "ODOO_SESSION_REDIS": "1",
            "ODOO_SESSION_REDIS_URL": services["TEST_REDIS_URL"],
            "ODOO_SESSION_REDIS_PREFIX": db,
        },
    }
    aa = bool(os.environ.get("BENCH_AA"))
    if aa:
        modes["redis"] = modes["file"]  # a check of the method: A/A
    results = {(mode, w): [] for mode in modes for w in WORKLOADS}
    window = args.seconds / WINDOWS
    try:
        with contextlib.ExitStack() as stack:
            servers = {}
            for mode, extra_env in modes.items():
                data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-odoo-"))
                proc, url = start_odoo(python, odoo_root, db, {**base_env, **extra_env}, data_dir)
                stack.callback(proc.wait, 30)
                stack.callback(proc.terminate)
                servers[mode] = (proc, url, login(url, db), data_dir)
            seed_partners(servers["file"][1], servers["file"][2])
            sessions_dir = Path(servers["file"][3]) / "sessions"
            if not any(sessions_dir.rglob("*")):
                sys.exit(f"bench: no session file in {sessions_dir}: are sessions on disk?")
            if not aa and any((Path(servers["redis"][3]) / "sessions").rglob("*")):
                sys.exit("bench: the redis server wrote session files: is session_redis on?")
            for round_ in range(args.rounds):
                for workload in WORKLOADS:
                    totals = {
                        mode: {"count": 0, "seconds": 0.0, "cpu": 0.0, "redis": 0.0, "p50": []}
                        for mode in modes
                    }
                    for _proc, url, sid, _dir in servers.values():
                        load(url, sid, 1, args.clients, workload)  # warm up
                    # short windows, alternating: both modes see the same machine
                    for step in range(WINDOWS * 2):
                        mode = list(modes)[(step + round_) % 2]
                        proc, url, sid, _dir = servers[mode]
                        before = tree_cpu(proc.pid), tree_cpu(redis_pid)
                        result = load(url, sid, window, args.clients, workload)
                        after = tree_cpu(proc.pid), tree_cpu(redis_pid)
                        total = totals[mode]
                        total["cpu"] += after[0] - before[0]
                        total["redis"] += after[1] - before[1]
                        total["count"] += result["count"]
                        total["seconds"] += result["count"] / result["rps"]
                        total["p50"].append(result["p50"])
                    for mode, total in totals.items():
                        odoo_ms = total["cpu"] * 1000 / total["count"]
                        redis_ms = total["redis"] * 1000 / total["count"] if mode == "redis" else 0
                        result = {
                            "rps": total["count"] / total["seconds"],
                            "p50": statistics.median(total["p50"]),
                            "odoo_ms": odoo_ms,
                            "redis_ms": redis_ms,
                            "cpu_ms": odoo_ms + redis_ms,
                        }
                        results[(mode, workload)].append(result)
                        print(
                            f"  round {round_ + 1} {mode:<6} {workload:<5}"
                            f" {result['rps']:7.1f} req/s  p50 {result['p50']:6.1f} ms"
                            f"  CPU {odoo_ms:5.2f} + Redis {redis_ms:4.2f} ms/request",
                            flush=True,
                        )
    finally:
        drop_database(db)

    print(
        f"\nauthenticated JSON-RPC, prefork 2 workers each, side by side, {args.clients}"
        f" clients, {args.seconds:g} s per mode in {WINDOWS} alternating windows x"
        f" {args.rounds} rounds, medians{'; A/A: both servers with file sessions' if aa else ''}"
    )
    print(
        f"{'workload':<10}{'sessions':<10}{'req/s':>9}{'p50 ms':>9}{'CPU ms/req':>12}"
        f"{'Redis ms':>10}{'req/s ratio':>13}{'CPU ratio':>11}"
    )
    for workload in WORKLOADS:
        file_runs, redis_runs = results[("file", workload)], results[("redis", workload)]
        median = {
            mode: {
                k: statistics.median(r[k] for r in results[(mode, workload)])
                for k in ("rps", "p50", "odoo_ms", "redis_ms", "cpu_ms")
            }
            for mode in modes
        }
        # each round measured both modes in alternating windows: compare within rounds
        rps_pairs = sorted(r["rps"] / f["rps"] for r, f in zip(redis_runs, file_runs, strict=True))
        cpu_pairs = sorted(
            f["cpu_ms"] / r["cpu_ms"] for r, f in zip(redis_runs, file_runs, strict=True)
        )
        ratio, cpu_ratio = statistics.median(rps_pairs), statistics.median(cpu_pairs)
        for mode, m in median.items():
            shown = f"{ratio:13.3f}{cpu_ratio:11.3f}" if mode == "redis" else ""
            print(
                f"{workload:<10}{mode:<10}{m['rps']:>9.1f}{m['p50']:>9.1f}"
                f"{m['odoo_ms']:>12.3f}{m['redis_ms']:>10.3f}{shown}"
            )
        verdict = "met" if ratio >= GOAL else "NOT met"
        print(
            f"{workload}: redis/file requests/s {ratio:.3f} (rounds from {rps_pairs[0]:.3f} to"
            f" {rps_pairs[-1]:.3f}; goal >= {GOAL}) -> {verdict}; CPU per request file/redis"
            f" {cpu_ratio:.3f} (Odoo + Redis server; rounds from {cpu_pairs[0]:.3f} to"
            f" {cpu_pairs[-1]:.3f})"
        )


if __name__ == "__main__":
    main()
