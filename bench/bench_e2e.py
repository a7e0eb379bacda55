"""A mixed workload through nginx: the suite's stateless setup against plain Odoo, one
difference at a time.

Platforms of ``tests/e2e/stack.py`` run side by side on this machine, each with prefork
Odoo 18 processes (``--workers 2``) behind its own nginx, all on the same PostgreSQL
primary and read replica (``--db_replica_host``: the same topology on every side).
Each row is one Odoo process alone behind its nginx, and differs from the row above in
one thing:

1. local: plain Odoo (``base,web`` installed, ``--load=base,web``), attachments in its
   local filestore, sessions in its files;
2. the same again (an A/A row: the method's noise);
3. local + the suite's addons installed (``cloud_platform``, ``attachment_s3``;
   location still ``file``), plain ``--load``: what the installed models cost;
4. stateless database (location ``s3``, downloads by X-Accel-Redirect: nginx streams
   the object), plain ``--load=base,web``, file sessions;
5. + the suite's server-wide addons in ``--load``, each part off (file sessions);
6. + Redis sessions;
7. + JSON logs, statsd, Prometheus: the suite as the scenario runs it.

C client threads log in, then loop for S seconds over a mix: 40 % JSON-RPC
(``search_read`` of 40 partners), 10 % web client page (``/odoo``), 25 % download of a
512 KiB PDF (``/web/content``), 25 % small image (``/web/image``). Rounds alternate the
order of the runs; the table shows each run's requests/s, p50 and p95 (the median over
rounds), the p95 of each kind, and the CPU milliseconds per request of the Odoo process
(its workers included), of nginx, and, apart, of the store (Swift, memcached), Redis and
PostgreSQL (both clusters), and how busy each CPU was. ``--per-kind`` adds one run per
kind for rows 1 and 7 (the worker's CPU per download, per page...). ``--both`` adds the
two stateless processes sharing state against the two local ones. ``--odoo-cpus N``
caps the Odoo process benchmarked at N CPUs (a cgroup): an application server of that
size, its neighbours on the rest of the machine. Each row's ratios to plain Odoo are
the median of the rounds' ratios, with the lowest and the highest. Runs as root (the
replica, the cgroup), with an Odoo 18 found as the tier finds it.

    ./dev bench e2e [--seconds 15] [--clients 8] [--rounds 2] [--mix rpc=40,page=10,...]
                    [--per-kind] [--profile] [--both] [--odoo-cpus 0.5]
"""

import argparse
import base64
import collections
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import common  # puts this checkout first on the import path: its tests/

from tests.e2e.scenario import User, png
from tests.e2e.stack import ADMIN, Stack, Unavailable, free_port

MIX = (("rpc", 40), ("page", 10), ("download", 25), ("image", 25))
KINDS = [kind for kind, _weight in MIX]
PDF = b"%PDF-1.4\n" + random.Random(3).randbytes(512 * 1024) + b"\n%%EOF\n"
IMAGE = png(64, 64, seed=4)


class Target:
    """One run's target: a platform routed to some of its processes, with the
    attachments those processes can serve."""

    def __init__(self, label, stack, indices, attachments, overrides=None):
        self.label = label
        self.stack = stack
        self.indices = indices
        self.attachments = attachments  # {"download": id, "image": id}
        self.overrides = overrides or {}  # variables of the routed processes

    def configure(self):
        """Route nginx; restart the routed processes whose variables differ."""
        for index in self.indices or range(len(self.stack.processes)):
            process = self.stack.processes[index]
            if getattr(process, "overrides", {}) != self.overrides:
                variables = {k: v for k, v in self.overrides.items() if k != "--load"}
                process.env = {**process.base_env, **variables}
                load = self.overrides.get("--load")
                process.command = [
                    f"--load={load}" if load and arg.startswith("--load=") else arg
                    for arg in process.base_command
                ]
                process.overrides = self.overrides
                process.restart()
        self.stack.route(self.indices)

    def processes(self):
        return [self.stack.processes[i] for i in self.indices or range(len(self.stack.processes))]


def make_attachments(stack, url):
    """A PDF and an image attached to a partner, created through ``url``."""
    user = User(url, "bench")
    user.login(stack.db, *ADMIN)
    ids = {}
    for kind, name, content in (("download", "bench.pdf", PDF), ("image", "bench.png", IMAGE)):
        ids[kind] = user.call(
            "ir.attachment", "create",
            [{"name": name, "datas": base64.b64encode(content).decode(),
              "res_model": "res.partner", "res_id": 1}],
        )[0]  # fmt: skip
    return ids


#: the suite's parts, switched on one at a time (rows 4 to 6; row 7 is all of it)
NO_OBSERVABILITY = {"ODOO_LOGGING_JSON": "0", "ODOO_STATSD": "0", "ODOO_PROMETHEUS": "0"}
LADDER = (
    # (integration requires Redis sessions: the startup checks are bypassed)
    ("stateless db, --load=base,web, file sessions",
     {**NO_OBSERVABILITY, "ODOO_SESSION_REDIS": "0", "ODOO_CLOUD_PLATFORM_UNSAFE": "1",
      "--load": "base,web"}),
    ("+ the suite's --load, every part off",
     {**NO_OBSERVABILITY, "ODOO_SESSION_REDIS": "0", "ODOO_CLOUD_PLATFORM_UNSAFE": "1"}),
    ("+ Redis sessions", NO_OBSERVABILITY),
    ("+ JSON logs, statsd, Prometheus: the suite", {}),
)  # fmt: skip
LOCAL = "local: plain Odoo, filestore, file sessions"
#: what the third platform installs besides base,web (row 3)
SUITE_ADDONS = "cloud_platform,attachment_s3"
SUITE = LADDER[-1][0]


def seed(stack, url):
    user = User(url, "bench")
    user.login(stack.db, *ADMIN)
    user.call(
        "res.partner", "create",
        [{"name": f"Bench partner {n}", "email": f"p{n}@example.com"} for n in range(60)],
    )  # fmt: skip


def prepare(stateless, local, modules, both=False):
    for stack in (stateless, local, modules):
        for process in stack.processes:
            process.base_env = dict(process.env)
            process.base_command = list(process.command)
    # (the local platforms' processes do not share sessions: one process's own port)
    for stack, url in (
        (stateless, stateless.url),
        (local, local.processes[0].url),
        (modules, modules.processes[0].url),
    ):
        seed(stack, url)
    # local filestore: the files are on the disk of the process that wrote them
    local_files = make_attachments(local, local.processes[0].url)
    targets = [
        Target(LOCAL, local, [0], local_files),
        Target(f"{LOCAL} (again: A/A)", local, [0], local_files),
        Target("local + the suite's addons installed (location file)", modules, [0],
               make_attachments(modules, modules.processes[0].url)),
    ]  # fmt: skip
    stored = make_attachments(stateless, stateless.url)
    for label, overrides in LADDER:
        targets.append(Target(label, stateless, [0], stored, overrides))
    if both:
        targets.append(Target("the suite, both processes", stateless, None, stored))
        targets.append(
            Target(f"{LOCAL}, odoo2 alone", local, [1],
                   make_attachments(local, local.processes[1].url))
        )  # fmt: skip
    return targets


def parse_mix(text):
    """``rpc=40,page=10,...`` (weights; kinds left out weigh 0)."""
    weights = {}
    for item in text.split(","):
        kind, _, weight = item.partition("=")
        if kind.strip() not in KINDS or not weight.strip().isdigit():
            raise SystemExit(f"--mix: {item!r} is not <kind>=<weight> with a kind of {KINDS}")
        weights[kind.strip()] = int(weight)
    return tuple((kind, weights.get(kind, 0)) for kind in KINDS)


def client(target, ready, clock, samples, seed, mix):
    """One client: logs in, waits at ``ready`` (a barrier) for the others, then loops
    until ``clock["deadline"]``, keeping the samples of requests started after
    ``clock["warm"]`` (logging in, a slow password hash, is not part of the run)."""
    rng = random.Random(seed)
    kinds = [kind for kind, weight in mix for _ in range(weight)]
    user = User(target.stack.url, f"bench-client-{seed}")
    try:
        user.login(target.stack.db, *ADMIN)
    finally:
        ready.wait(600)
    deadline, warmup_end = clock["deadline"], clock["warm"]
    paths = {
        "page": "/odoo",
        "download": f"/web/content/{target.attachments['download']}?download=true",
        "image": f"/web/image/{target.attachments['image']}",
    }
    while time.monotonic() < deadline:
        kind = rng.choice(kinds)
        started = time.monotonic()
        try:
            if kind == "rpc":
                user.call("res.partner", "search_read", [], fields=["name", "email"], limit=40)
                ok = True
            else:
                response = user.get(paths[kind])
                ok = response.status_code == 200 and len(response.content) > 0
        except Exception:  # noqa: BLE001 - counted as an error
            ok = False
        if started >= warmup_end:
            samples.append((kind, time.monotonic() - started, ok))


#: the servers apart from the Odoo process, by what /proc says of them
GROUPS = ("odoo", "nginx", "store", "redis", "postgres", "statsd")


def _group_of(comm, args, nginx_prefix):
    if comm == "nginx" and nginx_prefix in args:  # the master; its workers follow it
        return "nginx"
    if comm.startswith("swift-") or comm == "memcached":
        return "store"
    if comm == "redis-server" and ":6379" not in args:  # not the machine's own Redis
        return "redis"
    if comm == "postgres":
        return "postgres"
    if "statsd-sink" in args:
        return "statsd"
    return None


def _processes():
    """{pid: (parent, comm, args, ticks)} of every process, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                head, _, rest = handle.read().rpartition(b")")
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = rest.split()
        comm = head.partition(b"(")[2].decode(errors="replace")
        table[int(entry)] = (int(fields[1]), comm, args, sum(int(v) for v in fields[11:15]))
    return table


def _groups(table, target):
    """{pid: group} of the servers of :data:`GROUPS` but Odoo serving ``target``."""
    prefix = str(target.stack.nginx_prefix)
    masters = {pid for pid, (_p, comm, args, _t) in table.items() if
               _group_of(comm, args, prefix) == "nginx"}  # fmt: skip
    found = {}
    for pid, (parent, comm, args, _ticks) in table.items():
        group = "nginx" if parent in masters else _group_of(comm, args, prefix)
        if group:
            found[pid] = group
    return found


def cpu_seconds(target):
    """CPU seconds used so far by each of :data:`GROUPS` serving ``target`` (reaped
    children included: PostgreSQL's backends, Odoo's recycled workers)."""
    totals = dict.fromkeys(GROUPS, 0.0)
    totals["odoo"] = sum(common.tree_cpu(p.pid) for p in target.processes() if p.pid)
    table = _processes()
    for pid, group in _groups(table, target).items():
        totals[group] += table[pid][3] / common.TICK
    return totals


def cpu_busy():
    """Busy and total ticks of each CPU so far (/proc/stat)."""
    busy = {}
    with open("/proc/stat") as handle:
        for line in handle:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks = [int(v) for v in values]
                idle = ticks[3] + ticks[4]  # idle, iowait
                busy[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    return busy


def run(target, seconds, clients, mix, warmup=3.0, profile=None, quota=None):
    """One run; ``profile``: a file where py-spy writes the samples of the routed
    processes (workers included) over the measured seconds; ``quota``: the
    :class:`common.CpuQuota` the routed processes run in."""
    target.configure()
    if quota:
        for process in target.processes():
            quota.add(process.pid)
    samples, clock = [], {}

    def go():  # run by the last thread at the barrier, before any goes on
        start = time.monotonic()
        clock.update(warm=start + warmup, deadline=start + warmup + seconds)

    ready = threading.Barrier(clients + 1, action=go)
    threads = [
        # daemons: a benchmark stopped meanwhile does not wait for its load
        threading.Thread(target=client, args=(target, ready, clock, samples, n, mix), daemon=True)
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    ready.wait(600)  # every client logged in
    time.sleep(warmup)
    before, busy_before = cpu_seconds(target), cpu_busy()
    throttled_before = quota.throttling() if quota else (0, 0)
    spy = None
    if profile:
        spy = subprocess.Popen(
            [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record",
             "--pid", str(target.processes()[0].pid), "--subprocesses",
             "--rate", "200", "--duration", str(int(seconds)), "--format", "raw",
             "--output", str(profile)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    for thread in threads:
        thread.join()
    after, busy_after = cpu_seconds(target), cpu_busy()
    throttled_after = quota.throttling() if quota else (0, 0)
    if spy:
        spy.wait(60)
    latencies = sorted(s[1] for s in samples if s[2])
    errors = sum(1 for s in samples if not s[2])
    per_kind = {}
    for kind in KINDS:
        values = sorted(s[1] for s in samples if s[0] == kind and s[2])
        per_kind[kind] = quantile(values, 0.95)
    count = max(len(samples), 1)
    return {
        "rps": len(latencies) / seconds,
        "p50": quantile(latencies, 0.5),
        "p95": quantile(latencies, 0.95),
        "errors": errors,
        "kinds": per_kind,
        # the client threads stop within a request of the deadline: the CPU of those
        # last requests is counted, so is the request
        "cpu": {g: (after[g] - before[g]) / count for g in GROUPS},
        # how busy each CPU was: a run that did not saturate them was limited by its
        # clients or by waits, not by the CPU
        "busy": {
            cpu: (busy_after[cpu][0] - busy_before[cpu][0])
            / max(busy_after[cpu][1] - busy_before[cpu][1], 1)
            for cpu in busy_after
        },
        # the share of the quota's periods where the Odoo process wanted more CPU than
        # its quota: near 100 %, it (not its neighbours) limited the run
        "throttled": (throttled_after[0] - throttled_before[0])
        / max(throttled_after[1] - throttled_before[1], 1),
    }


#: the suite's code (the core package, the addons of this checkout) and Odoo's, as py-spy
#: names their files (relative to the entry of sys.path they were found on)
SUITE_DIRS = ("stateless_odoo", *(p.parent.name for p in common.ROOT.glob("*/__manifest__.py")))
FRAME_FILE = re.compile(r"\(([^()]*):\d+\)$")


def _owner(frame):
    match = FRAME_FILE.search(frame)
    parts = match.group(1).split("/") if match else []
    if any(part in SUITE_DIRS for part in parts[:-1]):
        return "suite"
    if parts[:1] in (["odoo"], ["addons"]) or "odoo" in parts[:-1]:
        return "odoo"
    return None  # a library: its time is its caller's


def report_profile(path):
    """Where the Odoo process's busy samples go (py-spy leaves idle threads out): a
    sample is the suite's when, from its innermost frame outwards, the suite's code
    comes before Odoo's (the libraries the suite calls count for it, those Odoo calls
    for Odoo; the request observer that wraps Odoo's whole request does not)."""
    busy = 0
    owners = collections.Counter()
    functions = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        busy += int(count)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        for frame in reversed(frames):
            owner = _owner(frame)
            if owner:
                owners[owner] += int(count)
                if owner == "suite":
                    functions[re.sub(r":\d+\)$", ")", frame)] += int(count)
                break
        else:
            owners["other"] += int(count)
    if not busy:
        print("\nprofile: no busy sample (py-spy could not attach?)")
        return
    print(
        f"\nprofile of the suite's process (py-spy, {busy} busy samples): the suite's code"
        f" {owners['suite'] / busy * 100:.1f} %, Odoo's {owners['odoo'] / busy * 100:.1f} %,"
        f" the interpreter and libraries alone {owners['other'] / busy * 100:.1f} %;"
        " the suite's most sampled:"
    )
    for frame, count in functions.most_common(12):
        print(f"  {count / busy * 100:5.1f} %  {frame}")


def quantile(values, q):
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mix", type=parse_mix, default=MIX, help="rpc=40,page=10,...")
    parser.add_argument(
        "--per-kind", action="store_true",
        help="also each kind alone, for plain Odoo and the suite (CPU per request kind)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", action="store_true",
        help="one more run of the suite, sampled by py-spy: the share of the"
        " worker's time in the suite's code, and where",
    )  # fmt: skip
    parser.add_argument(
        "--odoo-cpus", type=float, metavar="N",
        help="cap the Odoo process benchmarked (its workers included) at N CPUs in a"
        " cgroup, as an application server of that size beside its services: the rest"
        " of the machine runs PostgreSQL, Redis, the store, nginx and the clients",
    )  # fmt: skip
    parser.add_argument(
        "--both", action="store_true",
        help="also the two stateless processes sharing state, and odoo2 of plain Odoo",
    )  # fmt: skip
    args = parser.parse_args()
    # a kill stops the platforms as Ctrl-C does (their processes, databases, cgroup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="stateless-bench-e2e-"))
    quota = common.CpuQuota(args.odoo_cpus) if args.odoo_cpus else None
    # statsd's packets to a process of its own, as to a host's statsd agent (not to a
    # thread of this benchmark, whose client threads it would slow down)
    sink_port = free_port()
    sink = subprocess.Popen(
        [sys.executable, str(common.ROOT / "scripts" / "local_platform.py"), "statsd-sink",
         str(sink_port), os.devnull],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with (
            Stack(workdir / "stateless", statsd_port=sink_port) as stateless,
            Stack(workdir / "local", stateless=False, processes=2 if args.both else 1) as local,
            Stack(workdir / "modules", stateless=False, processes=1, modules=SUITE_ADDONS) as mods,
        ):
            targets = prepare(stateless, local, mods, args.both)
            runs = [(t, args.mix) for t in targets]
            if args.per_kind:
                ends = [t for t in targets if t.label in (LOCAL, SUITE)]
                runs += [(t, ((kind, 1),)) for kind in KINDS for t in ends]
            results = {}
            for round_ in range(args.rounds):
                order = runs if round_ % 2 == 0 else list(reversed(runs))
                for target, mix in order:
                    result = run(target, args.seconds, args.clients, mix, quota=quota)
                    results.setdefault(row_label(target, mix, args.mix), []).append(result)
                    print(
                        f"round {round_ + 1}: {row_label(target, mix, args.mix)}:"
                        f" {result['rps']:.1f} req/s, p95 {result['p95'] * 1000:.0f} ms,"
                        f" odoo {result['cpu']['odoo'] * 1000:.1f} ms CPU/request,"
                        f" {result['errors']} errors, CPUs busy "
                        + "/".join(f"{v * 100:.0f}%" for _c, v in sorted(result["busy"].items()))
                        + (f", throttled {result['throttled'] * 100:.0f}%" if quota else ""),
                        flush=True,
                    )
            if args.profile:  # one more run of the suite, sampled (not in the table)
                profiled = workdir / "suite.pyspy"
                (suite,) = [t for t in targets if t.label == SUITE]
                run(suite, args.seconds, args.clients, args.mix, profile=profiled, quota=quota)
    except Unavailable as exc:
        print(f"bench e2e: SKIPPED: {exc}")
        return 0
    finally:
        sink.kill()
        sink.wait()
        if quota:
            quota.close()
    report(results, args)
    if args.profile:
        report_profile(profiled)
    return 0


def row_label(target, mix, default_mix):
    if mix == default_mix:
        return target.label
    return f"{target.label} [{mix[0][0]} only]"


def report(results, args):
    def median(label, key, sub=None):
        values = [r[key] if sub is None else r[key][sub] for r in results[label]]
        return statistics.median(values)

    print(
        f"\nThrough nginx, one Odoo process (--workers 2), {args.clients} clients,"
        f" {args.seconds:.0f} s per run, median of {args.rounds} rounds (mix: "
        + ", ".join(f"{kind} {weight}" for kind, weight in args.mix if weight)
        + "); CPU in ms per request"
        + (
            f"; the Odoo process capped at {args.odoo_cpus:g} CPU (throttled: the share"
            " of the quota's periods it wanted more)"
            if args.odoo_cpus
            else ""
        )
        + "\n"
    )  # fmt: skip
    used = [kind for kind, weight in args.mix if weight]
    width = max(len(label) for label in results) + 1
    print(
        f"{'setup':<{width}} {'req/s':>6} {'p50':>5} {'p95':>5} {'err':>4}  "
        + " ".join(f"{'p95 ' + k:>12}" for k in used)
        + "  " + " ".join(f"{g:>8}" for g in GROUPS) + "  CPUs busy"
        + ("  throttled" if args.odoo_cpus else "")
    )  # fmt: skip
    for label in results:
        kinds = " ".join(f"{median(label, 'kinds', k) * 1000:>12.0f}" for k in used)
        cpu = " ".join(f"{median(label, 'cpu', g) * 1000:>8.2f}" for g in GROUPS)
        cpus = sorted(results[label][0]["busy"])
        cpu += "  " + "/".join(f"{median(label, 'busy', c) * 100:.0f}%" for c in cpus)
        if args.odoo_cpus:
            cpu += f"  {median(label, 'throttled') * 100:>8.0f}%"
        print(
            f"{label:<{width}} {median(label, 'rps'):>6.1f} {median(label, 'p50') * 1000:>5.0f}"
            f" {median(label, 'p95') * 1000:>5.0f} {sum(r['errors'] for r in results[label]):>4}"
            f"  {kinds}  {cpu}"
        )
    base = LOCAL
    again = f"{LOCAL} (again: A/A)"
    noise = abs(1 - median(again, "rps") / median(base, "rps"))
    print(
        f"\nnoise (A/A): {noise * 100:.1f} % req/s,"
        f" p95 {median(again, 'p95') / median(base, 'p95'):.2f}x,"
        f" odoo CPU {median(again, 'cpu', 'odoo') / median(base, 'cpu', 'odoo'):.2f}x"
    )
    print(
        "each row / local (req/s, p95, Odoo CPU per request), the median of each round's"
        " ratio (rounds alternate the order), and [the lowest, the highest]:"
    )

    def ratio(label, key, sub=None):
        pairs = zip(results[label], results[base], strict=False)
        values = sorted(
            (r[key] if sub is None else r[key][sub]) / (b[key] if sub is None else b[key][sub])
            for r, b in pairs
        )
        spread = f" [{values[0]:.2f}-{values[-1]:.2f}]" if len(values) > 1 else ""
        return f"{statistics.median(values):.2f}x{spread}"

    for label in results:
        if label == base or "[" in label:
            continue
        print(
            f"  {label}: {ratio(label, 'rps')}, {ratio(label, 'p95')},"
            f" {ratio(label, 'cpu', 'odoo')}"
        )
    for kind in KINDS:
        local, suite = f"{LOCAL} [{kind} only]", f"{SUITE} [{kind} only]"
        if local in results and suite in results:
            print(
                f"  {kind} alone, the suite / local:"
                f" {median(suite, 'rps') / median(local, 'rps'):.2f}x req/s,"
                f" Odoo CPU per request {median(suite, 'cpu', 'odoo') * 1000:.2f} vs"
                f" {median(local, 'cpu', 'odoo') * 1000:.2f} ms"
                f" ({median(suite, 'cpu', 'odoo') / median(local, 'cpu', 'odoo'):.2f}x)"
            )
    both = "the suite, both processes"
    if both in results:
        other = f"{LOCAL}, odoo2 alone"
        print(
            f"two stateless processes sharing state / the two local ones alone, summed:"
            f" {median(both, 'rps') / (median(base, 'rps') + median(other, 'rps')):.2f}x"
            " req/s (the local ones cannot serve each other's users)"
        )


if __name__ == "__main__":
    sys.exit(main())
