"""Request overhead of JSON logs + statsd + Prometheus, against none of them.

Two real Odoo 18 servers in prefork mode (2 workers each) on the same database, running
side by side, both logging at INFO to a file (access lines included, as in production):

- ``none``: ``--load=base,web``, Odoo's own log format, no metrics;
- ``all``: ``--load=base,web,logging_json,monitoring_statsd,monitoring_prometheus`` with
  ``ODOO_LOGGING_JSON=1``, ``ODOO_STATSD=1`` (to a UDP socket this program drains) and
  ``ODOO_PROMETHEUS=1``; ``/metrics`` is scraped during the run, as a Prometheus
  server would (every 10 s by default, ``--scrape-interval``).

C client threads call ``/web/dataset/call_kw`` (the lightest authenticated call, and a
list view's read of 80 partners), D seconds per mode and workload and round, in short
windows alternating between the two servers so that both see the same machine; medians
of the rounds count. Two figures: requests/s, and the CPU time the Odoo processes spend per
request (user + system of the master, its workers and the workers it reaped, from
/proc), which other load on a shared machine disturbs much less. Goal: overhead <= 3 %
of the CPU per request (ratio none/all >= 0.97).

    ./dev bench observability [--seconds 10] [--clients 4] [--rounds 3]
"""

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

import requests
from common import (
    ALL_LOAD,
    FEATURES,
    WINDOWS,
    WORKLOADS,
    all_env,
    bench_env,
    create_database,
    drop_database,
    login,
    odoo_or_exit,
    run_clients,
    seed_partners,
    start_odoo,
    tree_cpu,
)

from stateless_odoo.testing import StatsdServer

GOAL = 0.97


def scraper(url, stop, scrapes, interval):
    """Scrape ``/metrics`` every ``interval`` seconds until ``stop``; record each scrape's
    duration in ``scrapes``."""
    while not stop.wait(interval):
        started = time.perf_counter()
        if requests.get(f"{url}/metrics", timeout=10).status_code == 200:
            scrapes.append(time.perf_counter() - started)


def instrumentation_cost(statsd_port, directory, number=20000):
    """Microseconds per request of the suite's own code, in this process: the request
    observer, the JSON access line (to a file), the statsd packet and the Prometheus
    counts, against Odoo's plain access line to a file. The end-to-end figures above
    move by several percent between two identical servers on a shared machine (check:
    BENCH_AA=1); this one does not."""
    import logging
    import timeit

    from stateless_odoo.observability import jsonlog, observe
    from stateless_odoo.observability.prometheus_metrics import (
        PrometheusMetrics,
        PrometheusSettings,
        prepare_directory,
    )
    from stateless_odoo.observability.statsd_metrics import StatsdSettings, StatsdSink

    settings = PrometheusSettings.from_env(
        {"ODOO_PROMETHEUS": "1", "ODOO_PROMETHEUS_DIR": directory}
    )
    prom = PrometheusMetrics(settings, prepare_directory(settings))
    statsd_sink = StatsdSink(
        StatsdSettings.from_env(
            {"ODOO_STATSD": "1", "STATSD_CUSTOMER": "bench", "STATSD_ENVIRONMENT": "bench",
             "STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(statsd_port)}
        )
    )  # fmt: skip
    statsd_sink.start()
    while statsd_sink.client is None:
        time.sleep(0.01)
    observer = observe.Observer()
    observer.add_listener(statsd_sink)
    observer.add_listener(prom.on_request)
    environ = {
        "PATH_INFO": "/web/dataset/call_kw/res.partner/search_read",
        "REQUEST_METHOD": "POST",
    }
    access = '127.0.0.1 - - [23/Nov/2026 10:00:00] "%s" %s %s'
    requestline = "POST /web/dataset/call_kw/res.partner/search_read HTTP/1.1"

    def app(environ, start_response):
        thread = threading.current_thread()
        thread.query_count, thread.query_time = 5, 0.002
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    def logger_to(path, formatter):
        logger = logging.Logger("werkzeug")
        handler = logging.FileHandler(path)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        return logger

    plain = logger_to(
        os.path.join(directory, "plain.log"),
        logging.Formatter("%(asctime)s %(process)s %(levelname)s ? %(name)s: %(message)s"),
    )
    as_json = logger_to(os.path.join(directory, "json.log"), jsonlog.JsonFormatter())

    def baseline():
        result = app(environ, lambda *a: None)
        list(result)
        plain.info(access, requestline, "200", "-")

    def instrumented():
        result = observer.handle(app, environ, lambda *a: None)
        list(result)
        as_json.info(access, requestline, "200", "-")
        result.close()

    costs = {}
    for name, fn in (("baseline", baseline), ("instrumented", instrumented)):
        fn()
        costs[name] = min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6
    return costs["instrumented"] - costs["baseline"], costs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--features",
        default=",".join(FEATURES),
        help="what the 'all' server turns on (comma-separated; to find what costs)",
    )
    parser.add_argument(
        "--metrics-dir",
        default="/dev/shm" if os.path.isdir("/dev/shm") else None,
        help="where the Prometheus directory goes (default: /dev/shm, a tmpfs, as advised)",
    )
    parser.add_argument(
        "--scrape-interval", type=float, default=10, help="seconds between /metrics scrapes"
    )
    args = parser.parse_args()

    python, version, odoo_root = odoo_or_exit()
    db = f"bench_observability_{os.getpid()}"
    base_env = bench_env()
    print(f"bench: Odoo {version}, database {db}: installing web ...", flush=True)
    create_database(python, odoo_root, db, base_env)
    sink = StatsdServer(keep=False)
    modes = {
        "none": ("base,web", {}),
        "all": (ALL_LOAD, all_env(sink.port)),
    }
    features = set(args.features.split(","))
    unknown = features - set(FEATURES)
    if unknown:
        sys.exit(f"bench: --features: unknown {', '.join(sorted(unknown))}")
    for feature, variable in FEATURES.items():
        if feature not in features:
            modes["all"][1][variable] = "0"
    if os.environ.get("BENCH_AA"):
        # a check of the method: both servers without logs and metrics ("A/A")
        modes["all"] = modes["none"]
    results = {(mode, w): [] for mode in modes for w in WORKLOADS}
    log_sizes = {}
    window = args.seconds / WINDOWS
    try:
        with contextlib.ExitStack() as stack:
            servers = {}
            for mode, (load_line, extra_env) in modes.items():
                data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-odoo-"))
                logfile = os.path.join(data_dir, "odoo.log")
                env = {**base_env, **extra_env}
                if mode == "all":
                    root = args.metrics_dir or data_dir
                    env["ODOO_PROMETHEUS_DIR"] = tempfile.mkdtemp(prefix="metrics-", dir=root)
                    stack.callback(shutil.rmtree, env["ODOO_PROMETHEUS_DIR"], True)
                proc, url = start_odoo(
                    python, odoo_root, db, env, data_dir, load=load_line,
                    log=("--log-level", "info", "--logfile", logfile),
                )  # fmt: skip
                stack.callback(proc.wait, 30)
                stack.callback(proc.terminate)
                servers[mode] = (proc, url, login(url, db), logfile)
            seed_partners(servers["none"][1], servers["none"][2])
            stop = threading.Event()
            scrapes = []
            scraping = threading.Thread(
                target=scraper, args=(servers["all"][1], stop, scrapes, args.scrape_interval)
            )
            scraping.start()
            stack.callback(scraping.join)
            stack.callback(stop.set)
            for round_ in range(args.rounds):
                for workload in WORKLOADS:
                    totals = {mode: {"count": 0, "seconds": 0.0, "cpu": 0.0} for mode in modes}
                    for _proc, url, sid, _log in servers.values():
                        run_clients(url, sid, 1, args.clients, workload)  # warm up
                    # short windows, alternating: both modes see the same machine
                    for step in range(WINDOWS * 2):
                        mode = list(modes)[(step + round_) % 2]
                        proc, url, sid, _log = servers[mode]
                        cpu_before = tree_cpu(proc.pid)
                        result = run_clients(url, sid, window, args.clients, workload)
                        totals[mode]["cpu"] += tree_cpu(proc.pid) - cpu_before
                        totals[mode]["count"] += result["count"]
                        totals[mode]["seconds"] += result["count"] / result["rps"]
                    for mode, total in totals.items():
                        result = {
                            "rps": total["count"] / total["seconds"],
                            "cpu_ms": total["cpu"] * 1000 / total["count"],
                        }
                        results[(mode, workload)].append(result)
                        print(
                            f"  round {round_ + 1} {mode:<5} {workload:<5}"
                            f" {result['rps']:7.1f} req/s  CPU {result['cpu_ms']:5.2f} ms/request",
                            flush=True,
                        )
                for mode, (_proc, _url, _sid, logfile) in servers.items():
                    with open(logfile, encoding="utf-8", errors="replace") as handle:
                        lines = handle.read().splitlines()
                    log_sizes[mode] = len(lines)
                    json_lines = any(line.startswith("{") for line in lines)
                    wants_json = "json" in features and not os.environ.get("BENCH_AA")
                    if mode == "all" and not json_lines and wants_json:
                        sys.exit("bench: the 'all' server wrote no JSON line: is logging_json on?")
    finally:
        sink.close()
        drop_database(db)
    if not sink.packets and "statsd" in features and not os.environ.get("BENCH_AA"):
        sys.exit("bench: no statsd packet received: is monitoring_statsd loaded?")
    with tempfile.TemporaryDirectory(prefix="bench-instrumentation-") as directory:
        extra_us, costs = instrumentation_cost(sink.port, directory)

    print(
        f"\nauthenticated JSON-RPC, prefork 2 workers each, {args.clients} clients,"
        f" {args.seconds:g} s per mode in {WINDOWS} alternating windows x {args.rounds} rounds,"
        f" medians; statsd packets received: {sink.packets}; /metrics scraped every"
        f" {args.scrape_interval:g} s: {len(scrapes)} scrapes, median"
        f" {statistics.median(scrapes or [0]) * 1000:.1f} ms;"
        f" log lines: {log_sizes}"
    )
    print(
        f"{'workload':<10}{'mode':<7}{'req/s':>9}"
        f"{'CPU ms/req':>12}{'req/s ratio':>13}{'CPU ratio':>11}"
    )
    for workload in WORKLOADS:
        median = {
            mode: {
                k: statistics.median(r[k] for r in results[(mode, workload)])
                for k in ("rps", "cpu_ms")
            }
            for mode in modes
        }
        ratio = median["all"]["rps"] / median["none"]["rps"]
        cpu_ratio = median["none"]["cpu_ms"] / median["all"]["cpu_ms"]
        for mode, m in median.items():
            shown = f"{ratio:13.3f}{cpu_ratio:11.3f}" if mode == "all" else ""
            print(f"{workload:<10}{mode:<7}{m['rps']:>9.1f}{m['cpu_ms']:>12.3f}{shown}")
        # each round measured both modes in alternating windows: compare within rounds
        paired = sorted(
            (a["cpu_ms"] / n["cpu_ms"] - 1) * 100
            for a, n in zip(results[("all", workload)], results[("none", workload)], strict=True)
        )
        overhead = statistics.median(paired)
        share = extra_us / (median["none"]["cpu_ms"] * 1000) * 100
        verdict = "met" if share <= (1 - GOAL) * 100 else "NOT met"
        print(
            f"{workload}: end to end, CPU per request {overhead:+.1f} % (median of the rounds'"
            f" pairs; from {paired[0]:+.1f} to {paired[-1]:+.1f}), requests/s ratio"
            f" {ratio:.3f} (a shared machine: see BENCH_AA=1 for the noise);"
            f" the suite's own code {extra_us:.0f} us = {share:.1f} % of the request's"
            f" {median['none']['cpu_ms']:.2f} ms CPU"
            f" (goal <= {(1 - GOAL) * 100:.0f} %) -> {verdict}"
        )
    print(
        f"in-process cost per request: Odoo's plain access line {costs['baseline']:.1f} us;"
        f" observer + JSON access line + statsd + Prometheus {costs['instrumented']:.1f} us"
    )


if __name__ == "__main__":
    main()
