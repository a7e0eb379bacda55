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
``--kernel`` adds, for each mode, the system calls (``strace -c``) and the context
switches (``/proc``) per request of a prefork worker: the kernel's share, which the
instruction counts leave out.
"""

import argparse
import contextlib
import os
import re
import shutil
import signal
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
    tree_cpu,
    wait_healthy,
)

from stateless_odoo.testing import StatsdServer

GOALS = {"observability": 0.03, "sessions": None}


def start(python, odoo_root, db, env, data_dir, load, logfile, callgrind_out=None):
    """Odoo on ``db``: ``(process, url)``. With ``callgrind_out``, threaded under
    callgrind, its instrumentation off until ``callgrind_control -i on``; else with one
    prefork worker (a process serving one request at a time, as in production)."""
    port = free_port()
    launcher = odoo_launcher(python, odoo_root)
    if callgrind_out:
        if launcher[0] != str(python):
            launcher = [str(python), *launcher]  # the odoo script: valgrind runs Python
        launcher = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={callgrind_out}", *launcher,
        ]  # fmt: skip
        workers = ["--workers", "0"]
    else:
        workers = ["--workers", "1", "--gevent-port", str(free_port())]
    command = [
        *launcher, *odoo_options(odoo_root, db), "--load", load, *workers,
        "--http-interface", "127.0.0.1", "--http-port", str(port), "--data-dir", data_dir,
        "--log-level", "info", "--logfile", logfile,
    ]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(proc, url, 900 if callgrind_out else 300)
    return proc, url


def http_worker(master):
    """The pid of ``master``'s HTTP worker (not its websocket process)."""
    for task in Path(f"/proc/{master}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"gevent" not in cmdline:
                return int(child)
    sys.exit("bench: no HTTP worker found")


def context_switches(pid):
    """Voluntary and involuntary context switches of ``pid``'s threads so far (Odoo's
    prefork worker serves in a thread of its own)."""
    counts = [0, 0]
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            name, _, value = line.partition(":")
            if name == "voluntary_ctxt_switches":
                counts[0] += int(value)
            elif name == "nonvoluntary_ctxt_switches":
                counts[1] += int(value)
    return tuple(counts)


STRACE_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$")


def kernel_counts(worker, url, sid, requests_count, workloads):
    """For each workload: ``(syscalls by name, voluntary and involuntary context
    switches, CPU seconds)`` per request of the worker: what callgrind does not count.
    The switches and the CPU time (user and system, noisy on a shared machine) are
    counted in a pass of their own (strace stops the worker at each call)."""
    counted = {}
    for workload in workloads:
        call = rpc(url, sid, workload)
        for _ in range(10):
            call()
        before, cpu_before = context_switches(worker), tree_cpu(worker)
        for _ in range(requests_count):
            call()
        time.sleep(0.5)  # the access line is written after the answer
        after, cpu_after = context_switches(worker), tree_cpu(worker)
        switches = tuple((a - b) / requests_count for a, b in zip(after, before, strict=True))
        cpu = (cpu_after - cpu_before) / requests_count
        with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
            strace = subprocess.Popen(
                ["strace", "-c", "-f", "-p", str(worker), "-o", out.name],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1)  # attached
            for _ in range(requests_count):
                call()
            time.sleep(0.5)
            strace.send_signal(signal.SIGINT)
            strace.wait(30)
            calls = {}
            for line in out.read().splitlines():
                match = STRACE_ROW.match(line)
                if match and match[2] != "total":
                    calls[match[2]] = int(match[1]) / requests_count
        counted[workload] = (calls, switches, cpu)
    return counted


def rpc(url, sid, workload):
    """A function making one call of ``workload`` (exits the bench when it fails)."""
    payload = {"jsonrpc": "2.0", "method": "call", "params": WORKLOADS[workload]}
    http = requests.Session()
    http.cookies.set("session_id", sid)

    def call():
        answer = http.post(f"{url}/web/dataset/call_kw", json=payload, timeout=120)
        if answer.status_code != 200 or "error" in answer.json():
            sys.exit(f"bench: request failed: {answer.text[:300]}")

    return call


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
        call = rpc(url, sid, workload)
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


def callgrind_pass(args, workloads, results, mode, seed, where):
    """One Odoo of ``mode`` under callgrind: its instructions per request into
    ``results``; ``seed``: make the partners first."""
    python, odoo_root, db, env, work, name, data_dir, load = where
    out_file = os.path.join(work, f"callgrind-{name}.out")
    print(f"  {mode}: starting Odoo under callgrind ...", flush=True)
    started = time.monotonic()
    proc, url = start(
        python, odoo_root, db, env, data_dir, load, os.path.join(work, f"odoo-{name}.log"),
        callgrind_out=out_file,
    )  # fmt: skip
    try:
        print(f"  {mode}: up in {time.monotonic() - started:.0f} s", flush=True)
        sid = login(url, db)
        if seed:
            seed_partners(url, sid)
        measured = measure(proc, url, sid, out_file, args.requests, workloads)
        for workload, count in measured.items():
            results[mode][workload].append(count)
            print(f"  {mode:<6} {workload:<5} {count / 1e6:9.3f} M instructions/req")
    finally:
        stop(proc)


def stop(proc):
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(120)
    if proc.poll() is None:
        proc.kill()


def report_kernel(kernel, modes, workloads, requests_count):
    base = modes[0]
    print(
        f"\nthe kernel's share, in one prefork worker ({requests_count} requests per"
        f" workload): system calls per request (strace -c) and context switches per"
        f" request (voluntary: the worker waited; involuntary: it was preempted), its CPU"
        f" milliseconds per request (user and system; noisy on a shared machine),"
        f" against {base}; the calls whose count differs:"
    )
    print(
        f"{'workload':<10}{'mode':<12}{'CPU ms':>8}{'syscalls':>10}{'voluntary':>11}"
        f"{'involunt.':>11}  differs"
    )
    for workload in workloads:
        base_calls = kernel[base][workload][0]
        for mode in modes:
            calls, (voluntary, involuntary), cpu = kernel[mode][workload]
            differs = ", ".join(
                f"{name} {calls.get(name, 0) - base_calls.get(name, 0):+.1f}"
                for name in sorted(set(calls) | set(base_calls))
                if abs(calls.get(name, 0) - base_calls.get(name, 0)) >= 0.5
            )
            print(
                f"{workload:<10}{mode:<12}{cpu * 1000:>8.2f}{sum(calls.values()):>10.1f}"
                f"{voluntary:>11.2f}"
                f"{involuntary:>11.2f}  {differs if mode != base else ''}"
            )


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
    parser.add_argument(
        "--kernel",
        action="store_true",
        help="also each mode's system calls and context switches per request, in a"
        " prefork worker (strace -c; /proc): the kernel's share, which callgrind does"
        " not count",
    )
    parser.add_argument(
        "--kernel-only", action="store_true", help="--kernel without the instruction counts"
    )
    args = parser.parse_args()
    args.kernel = args.kernel or args.kernel_only
    for tool, needed in (("valgrind", not args.kernel_only), ("strace", args.kernel)):
        if needed and shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is not installed (Debian: apt-get install {tool})")
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
    #: mode -> workload -> (system calls by name, context switches, CPU seconds) per
    #: request, of the last round
    kernel = {}
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
                if not args.kernel_only:
                    callgrind_pass(args, workloads, results, mode, not seeded, (
                        python, odoo_root, db, env, work, name, data_dir, load,
                    ))  # fmt: skip
                    seeded = True
                if args.kernel:
                    proc, url = start(
                        python, odoo_root, db, env, data_dir, load,
                        os.path.join(work, f"odoo-{name}-prefork.log"),
                    )  # fmt: skip
                    try:
                        sid = login(url, db)
                        if not seeded:
                            seed_partners(url, sid)
                            seeded = True
                        worker = http_worker(proc.pid)
                        kernel[mode] = kernel_counts(worker, url, sid, args.requests, workloads)
                    finally:
                        stop(proc)
    finally:
        sink.close()
        drop_database(db)
    if args.kernel_only:
        report_kernel(kernel, list(modes), workloads, args.requests)
        return
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
    if args.kernel:
        report_kernel(kernel, list(modes), workloads, args.requests)


if __name__ == "__main__":
    main()
