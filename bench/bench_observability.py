"""Request overhead of JSON logs + statsd + Prometheus, against none of them.

One real Odoo 18 in prefork mode (2 workers), started twice per round on the same
database, both logging at INFO to a file (access lines included, as in production):

- ``none``: ``--load=base,web``, Odoo's own log format, no metrics;
- ``all``: ``--load=base,web,logging_json,monitoring_statsd,monitoring_prometheus`` with
  ``ODOO_LOGGING_JSON=1``, ``ODOO_STATSD=1`` (to a UDP socket this program drains) and
  ``ODOO_PROMETHEUS=1``; ``/metrics`` is scraped once per second during the run, as a
  Prometheus server would (more often than the usual 15 s).

C client threads call ``/web/dataset/call_kw`` for D seconds per workload (the lightest
authenticated call, and a list view's read of 80 partners). Rounds alternate the order;
medians count. Goal: overhead <= 3 % (ratio all/none >= 0.97).

    ./dev bench observability [--seconds 10] [--clients 4] [--rounds 3]
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sessions as bs

GOAL = 0.97
ALL_LOAD = "base,web,logging_json,monitoring_statsd,monitoring_prometheus"


class UdpSink:
    """A statsd server that counts and drops what it receives."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.packets = 0
        self.running = True
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self):
        while self.running:
            try:
                self.sock.recv(65535)
                self.packets += 1
            except TimeoutError:
                continue

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def scraper(url, stop, scrapes):
    """Scrape ``/metrics`` every second until ``stop``; count the answers in ``scrapes``."""
    while not stop.wait(1.0):
        if requests.get(f"{url}/metrics", timeout=10).status_code == 200:
            scrapes.append(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    python, found = bs.odoo_tier.find_odoo()
    if python is None:
        sys.exit(f"bench: {found}")
    _major, version, odoo_root = found
    bs.odoo_tier.ensure_core_dependencies(python)
    db = f"bench_observability_{os.getpid()}"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(bs.odoo_tier._CONTRACT)}
    base_env["PYTHONPATH"] = str(bs.ROOT)
    print(f"bench: Odoo {version}, database {db}: installing web ...", flush=True)
    subprocess.run(
        bs.odoo_command(
            python, odoo_root, db, "-i", "web", "--without-demo", "all", "--stop-after-init",
            "--log-level", "warn",
        ),
        env=base_env,
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    sink = UdpSink()
    modes = {
        "none": ("base,web", {}),
        "all": (
            ALL_LOAD,
            {
                "ODOO_LOGGING_JSON": "1",
                "ODOO_STATSD": "1",
                "STATSD_CUSTOMER": "bench",
                "STATSD_ENVIRONMENT": "bench",
                "STATSD_HOST": "127.0.0.1",
                "STATSD_PORT": str(sink.port),
                "ODOO_PROMETHEUS": "1",
            },
        ),
    }
    results = {(mode, w): [] for mode in modes for w in bs.WORKLOADS}
    seeded = False
    log_sizes = {}
    try:
        for round_ in range(args.rounds):
            order = list(modes) if round_ % 2 == 0 else list(reversed(modes))
            for mode in order:
                load_line, extra_env = modes[mode]
                with tempfile.TemporaryDirectory(prefix="bench-odoo-") as data_dir:
                    logfile = os.path.join(data_dir, "odoo.log")
                    env = {**base_env, **extra_env}
                    if mode == "all":
                        env["ODOO_PROMETHEUS_DIR"] = os.path.join(data_dir, "metrics")
                    proc, url = bs.start_odoo(
                        python, odoo_root, db, env, data_dir, load=load_line,
                        log=("--log-level", "info", "--logfile", logfile),
                    )  # fmt: skip
                    stop = threading.Event()
                    scrapes = []
                    try:
                        sid = bs.login(url, db)
                        if not seeded:
                            bs.seed_partners(url, sid)
                            seeded = True
                        for workload in bs.WORKLOADS:
                            bs.load(url, sid, 2, args.clients, workload)  # warm up
                            if mode == "all":
                                stop.clear()
                                thread = threading.Thread(target=scraper, args=(url, stop, scrapes))
                                thread.start()
                            result = bs.load(url, sid, args.seconds, args.clients, workload)
                            if mode == "all":
                                stop.set()
                                thread.join()
                            results[(mode, workload)].append(result)
                            print(
                                f"  round {round_ + 1} {mode:<5} {workload:<5}"
                                f" {result['rps']:7.1f} req/s  p50 {result['p50']:6.1f} ms"
                                f"  p95 {result['p95']:6.1f} ms",
                                flush=True,
                            )
                    finally:
                        proc.terminate()
                        proc.wait(30)
                    with open(logfile, encoding="utf-8", errors="replace") as handle:
                        lines = handle.read().splitlines()
                    log_sizes.setdefault(mode, []).append(len(lines))
                    if mode == "all" and not any(line.startswith("{") for line in lines):
                        sys.exit("bench: the 'all' run wrote no JSON line: is logging_json loaded?")
    finally:
        sink.close()
        subprocess.run(
            ["dropdb", "--if-exists", "-h", "127.0.0.1", "-U",
             os.environ.get("PGUSER") or bs.odoo_tier.getpass.getuser(), db],
            check=False,
        )  # fmt: skip
    if not sink.packets:
        sys.exit("bench: no statsd packet received: is monitoring_statsd loaded?")

    print(
        f"\nauthenticated JSON-RPC, prefork 2 workers, {args.clients} clients,"
        f" {args.seconds:g} s x {args.rounds} rounds, medians; statsd packets received:"
        f" {sink.packets}; log lines per run: {log_sizes}"
    )
    print(f"{'workload':<10}{'mode':<7}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'ratio':>8}")
    for workload in bs.WORKLOADS:
        median = {
            mode: {
                k: statistics.median(r[k] for r in results[(mode, workload)])
                for k in ("rps", "p50", "p95")
            }
            for mode in modes
        }
        ratio = median["all"]["rps"] / median["none"]["rps"]
        for mode, m in median.items():
            shown = f"{ratio:8.3f}" if mode == "all" else ""
            print(f"{workload:<10}{mode:<7}{m['rps']:>9.1f}{m['p50']:>9.1f}{m['p95']:>9.1f}{shown}")
        verdict = "met" if ratio >= GOAL else "NOT met"
        print(
            f"{workload}: all/none {ratio:.3f}, overhead {(1 - ratio) * 100:.1f} %"
            f" (goal <= {(1 - GOAL) * 100:.0f} %) -> {verdict}"
        )


if __name__ == "__main__":
    main()
