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
import sys
import tempfile
from pathlib import Path

from common import (
    WINDOWS,
    WORKLOADS,
    bench_env,
    create_database,
    drop_database,
    login,
    odoo_or_exit,
    run_clients,
    seed_partners,
    services_env,
    start_odoo,
    tree_cpu,
)

GOAL = 0.95


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
    services = services_env()
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
                        run_clients(url, sid, 1, args.clients, workload)  # warm up
                    # short windows, alternating: both modes see the same machine
                    for step in range(WINDOWS * 2):
                        mode = list(modes)[(step + round_) % 2]
                        proc, url, sid, _dir = servers[mode]
                        before = tree_cpu(proc.pid), tree_cpu(redis_pid)
                        result = run_clients(url, sid, window, args.clients, workload)
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
