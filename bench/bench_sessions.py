"""Authenticated JSON-RPC requests per second: Redis sessions against file sessions.

One real Odoo 18 in prefork mode (2 workers) with ``--load=base,web,session_redis``,
started twice per round on the same database: once with ``ODOO_SESSION_REDIS=0`` (Odoo's
file store in its data_dir), once with ``ODOO_SESSION_REDIS=1`` (the harness's Redis).
Each run logs in, then C client threads call ``/web/dataset/call_kw`` for D seconds for
each workload of WORKLOADS (the lightest call, and a list view's read of 80 partners).
Rounds alternate the order; medians count.

    ./dev bench sessions [--seconds 10] [--clients 4] [--rounds 3]
"""

import argparse
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
    for _ in range(240):
        try:
            if requests.get(f"{url}/web/health", timeout=1).status_code == 200:
                return proc, url
        except requests.exceptions.ConnectionError:
            pass
        time.sleep(0.25)
    proc.kill()
    sys.exit("bench: Odoo did not start")


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    python, found = odoo_tier.find_odoo()
    if python is None:
        sys.exit(f"bench: {found}")
    _major, version, odoo_root = found
    odoo_tier.ensure_core_dependencies(python)
    services = odoo_tier.services_env()
    db = f"bench_sessions_{os.getpid()}"
    base_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"bench: Odoo {version}, database {db}: installing web ...", flush=True)
    subprocess.run(
        odoo_command(
            python,
            odoo_root,
            db,
            "-i",
            "web",
            "--without-demo",
            "all",
            "--stop-after-init",
            "--log-level",
            "warn",
        ),
        env=base_env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    modes = {
        "file": {"ODOO_SESSION_REDIS": "0"},
        "redis": {
            "ODOO_SESSION_REDIS": "1",
            "ODOO_SESSION_REDIS_URL": services["TEST_REDIS_URL"],
            "ODOO_SESSION_REDIS_PREFIX": db,
        },
    }
    results = {(mode, w): [] for mode in modes for w in WORKLOADS}
    seeded = False
    try:
        for round_ in range(args.rounds):
            order = list(modes) if round_ % 2 == 0 else list(reversed(modes))
            for mode in order:
                with tempfile.TemporaryDirectory(prefix="bench-odoo-") as data_dir:
                    proc, url = start_odoo(
                        python, odoo_root, db, {**base_env, **modes[mode]}, data_dir
                    )
                    try:
                        sid = login(url, db)
                        if not seeded:
                            seed_partners(url, sid)
                            seeded = True
                        for workload in WORKLOADS:
                            load(url, sid, 2, args.clients, workload)  # warm up
                            result = load(url, sid, args.seconds, args.clients, workload)
                            results[(mode, workload)].append(result)
                            print(
                                f"  round {round_ + 1} {mode:<6} {workload:<5}"
                                f" {result['rps']:7.1f} req/s  p50 {result['p50']:6.1f} ms"
                                f"  p95 {result['p95']:6.1f} ms",
                                flush=True,
                            )
                    finally:
                        proc.terminate()
                        proc.wait(30)
    finally:
        subprocess.run(
            [
                "dropdb",
                "--if-exists",
                "-h",
                "127.0.0.1",
                "-U",
                os.environ.get("PGUSER") or odoo_tier.getpass.getuser(),
                db,
            ],
            check=False,
        )

    print(
        f"\nauthenticated JSON-RPC, prefork 2 workers, {args.clients} clients,"
        f" {args.seconds:g} s x {args.rounds} rounds, medians"
    )
    print(f"{'workload':<10}{'sessions':<10}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'ratio':>8}")
    for workload in WORKLOADS:
        median = {
            mode: {
                k: statistics.median(r[k] for r in results[(mode, workload)])
                for k in ("rps", "p50", "p95")
            }
            for mode in modes
        }
        ratio = median["redis"]["rps"] / median["file"]["rps"]
        for mode, m in median.items():
            shown = f"{ratio:8.2f}" if mode == "redis" else ""
            print(
                f"{workload:<10}{mode:<10}{m['rps']:>9.1f}{m['p50']:>9.1f}{m['p95']:>9.1f}{shown}"
            )
        verdict = "met" if ratio >= GOAL else "NOT met"
        print(f"{workload}: redis/file {ratio:.2f} (goal >= {GOAL}) -> {verdict}")


if __name__ == "__main__":
    main()
