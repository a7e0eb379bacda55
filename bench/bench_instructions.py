"""Instructions per request, counted by valgrind's callgrind: a figure that other load
on a shared machine does not disturb.

Wall and CPU time swing by several percent between runs on a shared 2-core machine
(another virtual machine steals cycles that the guest still counts as its own), more
than the few percent the suite's goals are about. callgrind counts the user-space
instructions the Odoo process executes, which is the same for the same code and the
same requests, whatever else runs. It does not count the kernel's share (socket and
file system calls) nor other processes (the Redis server, PostgreSQL), so it measures
the cost the suite adds to Odoo's own process; bench_observability and bench_sessions
give the end-to-end figures beside it.

One Odoo 18 per mode, threaded (``--workers 0``: one process) under
``valgrind --tool=callgrind --instr-atstart=no``; after start-up and a warm-up, the
instrumentation is switched on (``callgrind_control -i on``), one client makes N
sequential authenticated JSON-RPC calls of each workload (bench/common.py), and the
counters are dumped after each workload (``callgrind_control -d``).

    ./dev bench instructions [--compare observability|sessions] [--requests 100]

``observability``: ``--load=base,web`` against ``--load=base,web,logging_json,
monitoring_statsd,monitoring_prometheus`` with the three features on (goal <= 3 %);
``--breakdown`` adds the addons loaded with every feature off, then each feature alone.
``sessions``: file sessions against Redis sessions (the client side of a Redis GET).
"""

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from common import (
    ALL_LOAD,
    FEATURES,
    WORKLOADS,
    all_env,
    bench_env,
    create_database,
    drop_database,
    free_port,
    login,
    odoo_launcher,
    odoo_options,
    odoo_or_exit,
    seed_partners,
    services_env,
    wait_healthy,
)

from stateless_odoo.testing import StatsdServer

GOALS = {"observability": 0.03, "sessions": None}


def start(python, odoo_root, db, env, data_dir, load, out_file, logfile):
    """Odoo under callgrind, its instrumentation off until ``callgrind_control -i on``."""
    port = free_port()
    launcher = odoo_launcher(python, odoo_root)
    options = odoo_options(odoo_root, db)
    if launcher[0] != str(python):
        launcher = [str(python), *launcher]  # the odoo script: valgrind runs Python
    command = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={out_file}",
        *launcher, *options,
        "--load", load, "--workers", "0", "--http-interface", "127.0.0.1",
        "--http-port", str(port), "--data-dir", data_dir,
        "--log-level", "info", "--logfile", logfile,
    ]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(proc, url, 900)
    return proc, url


def callgrind(pid, *args):
    subprocess.run(
        ["callgrind_control", *args, str(pid)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def dumped_instructions(out_file, before):
    """The ``totals`` of the dump files written since ``before`` (a set of paths)."""
    directory = Path(out_file).parent
    total = 0
    for path in sorted(set(directory.glob(Path(out_file).name + "*")) - before):
        match = re.search(r"^totals:\s+(\d+)", path.read_text(errors="replace"), re.M)
        if match:
            total += int(match[1])
    return total


def measure(proc, url, sid, out_file, requests_count, workloads):
    """Instructions per request of each workload."""
    per_request = {}
    for workload in workloads:
        payload = {"jsonrpc": "2.0", "method": "call", "params": WORKLOADS[workload]}
        http = requests.Session()
        http.cookies.set("session_id", sid)

        def call(http=http, payload=payload):
            answer = http.post(f"{url}/web/dataset/call_kw", json=payload, timeout=120)
            if answer.status_code != 200 or "error" in answer.json():
                sys.exit(f"bench: request failed: {answer.text[:300]}")

        for _ in range(10):
            call()  # warm up (uninstrumented)
        callgrind(proc.pid, "-z")
        callgrind(proc.pid, "-i", "on")
        for _ in range(requests_count):
            call()
        time.sleep(1)  # the access line is written after the answer
        callgrind(proc.pid, "-i", "off")
        before = set(Path(out_file).parent.glob(Path(out_file).name + "*"))
        callgrind(proc.pid, "-d")
        time.sleep(1)
        per_request[workload] = dumped_instructions(out_file, before) / requests_count
    return per_request


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--compare", choices=sorted(GOALS), default="observability")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated, among {', '.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure every mode this many times, in turns (a new Odoo each time): the"
        " spread of a mode's figures is the method's noise",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="observability: also each feature alone (JSON logs, statsd, Prometheus)",
    )
    args = parser.parse_args()
    workloads = [w for w in args.workloads.split(",") if w]
    unknown = set(workloads) - set(WORKLOADS)
    if unknown or not workloads or args.repeat < 1:
        sys.exit(f"bench: --workloads among {', '.join(WORKLOADS)}; --repeat >= 1")
    python, version, odoo_root = odoo_or_exit()
    services = services_env()
    db = f"bench_instructions_{os.getpid()}"
    base_env = bench_env()
    print(f"bench: Odoo {version}, database {db}: installing web ...", flush=True)
    create_database(python, odoo_root, db, base_env)
    sink = StatsdServer(keep=False)
    if args.compare == "observability":
        modes = {"none": ("base,web", {})}
        if args.breakdown:
            off = dict.fromkeys(FEATURES.values(), "0")
            # the addons loaded, every feature off: what loading them costs alone
            modes["loaded"] = (ALL_LOAD, off)
            alone = {**all_env(sink.port), **off}
            for feature, variable in FEATURES.items():
                modes[feature] = (ALL_LOAD, {**alone, variable: "1"})
        modes["all"] = (ALL_LOAD, all_env(sink.port))
    else:
        modes = {
            "file": ("base,web,session_redis", {"ODOO_SESSION_REDIS": "0"}),
            "redis": (
                "base,web,session_redis",
                {
                    "ODOO_SESSION_REDIS": "1",
                    "ODOO_SESSION_REDIS_URL": services["TEST_REDIS_URL"],
                    "ODOO_SESSION_REDIS_PREFIX": db,
                },
            ),
        }
    #: mode -> workload -> instructions per request of each round
    results = {mode: {w: [] for w in workloads} for mode in modes}
    seeded = False
    try:
        with tempfile.TemporaryDirectory(prefix="bench-instructions-") as work:
            turns = [(r, mode) for r in range(args.repeat) for mode in modes]
            for round_, mode in turns:
                load, extra_env = modes[mode]
                name = f"{mode}-{round_}"
                data_dir = os.path.join(work, name)
                os.makedirs(data_dir)
                env = {**base_env, **extra_env}
                if "ODOO_PROMETHEUS" in env:
                    env["ODOO_PROMETHEUS_DIR"] = tempfile.mkdtemp(prefix="metrics-", dir=work)
                out_file = os.path.join(work, f"callgrind-{name}.out")
                print(f"  {mode}: starting Odoo under callgrind ...", flush=True)
                started = time.monotonic()
                proc, url = start(
                    python, odoo_root, db, env, data_dir, load, out_file,
                    os.path.join(work, f"odoo-{name}.log"),
                )  # fmt: skip
                try:
                    print(f"  {mode}: up in {time.monotonic() - started:.0f} s", flush=True)
                    sid = login(url, db)
                    if not seeded:
                        seed_partners(url, sid)
                        seeded = True
                    measured = measure(proc, url, sid, out_file, args.requests, workloads)
                    for workload, count in measured.items():
                        results[mode][workload].append(count)
                        print(f"  {mode:<6} {workload:<5} {count / 1e6:9.3f} M instructions/req")
                finally:
                    proc.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(120)
                    if proc.poll() is None:
                        proc.kill()
    finally:
        sink.close()
        drop_database(db)
    base, *others = modes
    mean = {m: {w: sum(v) / len(v) for w, v in results[m].items()} for m in modes}
    print(
        f"\ninstructions per request (user space of the Odoo process, callgrind), threaded,"
        f" one client, {args.requests} requests per workload, {args.repeat} Odoo run(s) per"
        f" mode (mean; spread = (max - min) / mean), against {base}"
    )
    print(
        f"{'workload':<10}{'mode':<12}{'instructions':>14}{'spread':>9}{'added':>12}"
        f"{'overhead':>10}"
    )
    goal = GOALS[args.compare]
    for workload in workloads:
        a = mean[base][workload]
        for mode in modes:
            b = mean[mode][workload]
            runs = results[mode][workload]
            spread = f"{(max(runs) - min(runs)) / b * 100:.2f}%" if len(runs) > 1 else "-"
            line = f"{workload:<10}{mode:<12}{b / 1e6:>13.3f}M{spread:>9}"
            if mode != base:
                line += f"{(b - a) / 1e3:>11.1f}k{(b / a - 1) * 100:>9.2f}%"
            print(line)
        if goal is not None:
            overhead = mean[others[-1]][workload] / a - 1
            verdict = "met" if overhead <= goal else "NOT met"
            print(
                f"{workload}: {others[-1]} adds {overhead * 100:.2f} % (goal <= {goal:.0%})"
                f" -> {verdict}"
            )


if __name__ == "__main__":
    main()
