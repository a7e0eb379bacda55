"""A mixed workload through nginx: the suite's stateless setup against plain Odoo.

Two platforms of ``tests/e2e/stack.py`` run side by side on this machine, each with two
prefork Odoo 18 processes (``--workers 2``) behind its own nginx, on the same PostgreSQL
primary and replica:

- stateless: the suite in ``--load``, sessions in Redis, attachments in the Swift
  server's S3 API (downloads by X-Accel-Redirect: nginx streams the object), JSON logs,
  statsd and Prometheus on, as the scenario runs it;
- local: plain Odoo (``--load=base,web``) on a database of its own, attachments in each
  process's local filestore, sessions in its files. Its two processes cannot share
  state (a session or a file made by one is unknown to the other): each is measured
  alone, behind nginx, with its own sessions and attachments.

C client threads log in, then loop for S seconds over a mix: 40 % JSON-RPC
(``search_read`` of 40 partners), 10 % web client page (``/odoo``), 25 % download of a
512 KiB PDF (``/web/content``), 25 % small image (``/web/image``). Rounds alternate the
order of the runs; the table shows each run's requests/s, p50 and p95 (the median over
rounds) and the ratios. Runs as root (the replica), with an Odoo 18 found as the tier
finds it.

    ./dev bench e2e [--seconds 15] [--clients 8] [--rounds 2] [--mix rpc=40,page=10,...]
"""

import argparse
import base64
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import common  # noqa: F401 - puts this checkout first on the import path: its tests/

from tests.e2e.scenario import User, png
from tests.e2e.stack import ADMIN, Stack, Unavailable

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


#: --decompose: the stateless process alone without parts of the suite
VARIANTS = (
    ("stateless, odoo1 alone, no logs/metrics",
     {"ODOO_LOGGING_JSON": "0", "ODOO_STATSD": "0", "ODOO_PROMETHEUS": "0"}),
    ("stateless, odoo1 alone, no logs/metrics, file sessions",
     {"ODOO_LOGGING_JSON": "0", "ODOO_STATSD": "0", "ODOO_PROMETHEUS": "0",
      # (integration requires Redis sessions: the startup checks are bypassed)
      "ODOO_SESSION_REDIS": "0", "ODOO_CLOUD_PLATFORM_UNSAFE": "1"}),
    ("stateless db, odoo1 alone, --load=base,web",
     {"ODOO_LOGGING_JSON": "0", "ODOO_STATSD": "0", "ODOO_PROMETHEUS": "0",
      "ODOO_SESSION_REDIS": "0", "ODOO_CLOUD_PLATFORM_UNSAFE": "1", "--load": "base,web"}),
)  # fmt: skip


def prepare(stateless, local, decompose=False):
    for stack in (stateless, local):
        for process in stack.processes:
            process.base_env = dict(process.env)
            process.base_command = list(process.command)
    # (the local platform's processes do not share sessions: one process's own port)
    for stack, url in ((stateless, stateless.url), (local, local.processes[0].url)):
        user = User(url, "bench")
        user.login(stack.db, *ADMIN)
        user.call(
            "res.partner", "create",
            [{"name": f"Bench partner {n}", "email": f"p{n}@example.com"} for n in range(60)],
        )  # fmt: skip
    targets = [Target("stateless (suite), both processes", stateless, None,
                      make_attachments(stateless, stateless.url))]  # fmt: skip
    targets.append(Target("stateless (suite), odoo1 alone", stateless, [0],
                          targets[0].attachments))  # fmt: skip
    if decompose:
        for label, overrides in VARIANTS:
            targets.append(Target(label, stateless, [0], targets[0].attachments, overrides))
    for index, process in enumerate(local.processes):
        # local filestore: the files are on the disk of the process that wrote them
        targets.append(
            Target(f"local filestore + file sessions, {process.name} alone", local, [index],
                   make_attachments(local, process.url))
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


def client(target, deadline, warmup_end, samples, seed, mix):
    rng = random.Random(seed)
    kinds = [kind for kind, weight in mix for _ in range(weight)]
    user = User(target.stack.url, f"bench-client-{seed}")
    user.login(target.stack.db, *ADMIN)
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


def run(target, seconds, clients, mix, warmup=3.0):
    target.configure()
    samples = []
    start = time.monotonic()
    threads = [
        threading.Thread(
            target=client,
            args=(target, start + warmup + seconds, start + warmup, samples, n, mix),
        )
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = sorted(s[1] for s in samples if s[2])
    errors = sum(1 for s in samples if not s[2])
    per_kind = {}
    for kind in KINDS:
        values = sorted(s[1] for s in samples if s[0] == kind and s[2])
        per_kind[kind] = quantile(values, 0.95)
    return {
        "rps": len(latencies) / seconds,
        "p50": quantile(latencies, 0.5),
        "p95": quantile(latencies, 0.95),
        "errors": errors,
        "kinds": per_kind,
    }


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
        "--decompose", action="store_true",
        help="also odoo1 alone without logs/metrics, then without Redis sessions",
    )  # fmt: skip
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="stateless-bench-e2e-"))
    try:
        with (
            Stack(workdir / "stateless") as stateless,
            Stack(workdir / "local", stateless=False) as local,
        ):
            targets = prepare(stateless, local, args.decompose)
            results = {t.label: [] for t in targets}
            for round_ in range(args.rounds):
                order = targets if round_ % 2 == 0 else list(reversed(targets))
                for target in order:
                    result = run(target, args.seconds, args.clients, args.mix)
                    results[target.label].append(result)
                    print(
                        f"round {round_ + 1}: {target.label}: {result['rps']:.1f} req/s,"
                        f" p95 {result['p95'] * 1000:.0f} ms, {result['errors']} errors",
                        flush=True,
                    )
    except Unavailable as exc:
        print(f"bench e2e: SKIPPED: {exc}")
        return 0
    report(results, args)
    return 0


def report(results, args):
    def median(label, key):
        return statistics.median(r[key] for r in results[label])

    print(
        f"\nMixed workload through nginx, {args.clients} clients, {args.seconds:.0f} s per"
        f" run, median of {args.rounds} rounds (mix: "
        + ", ".join(f"{kind} {weight}" for kind, weight in args.mix if weight)
        + ")\n"
    )
    header = f"{'setup':<54} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'errors':>6}"
    used = [kind for kind, weight in args.mix if weight]
    kinds = "  ".join(f"p95 {kind}" for kind in used)
    print(f"{header}   {kinds}")
    for label, runs in results.items():
        kind_p95 = "  ".join(
            f"{statistics.median(r['kinds'][kind] for r in runs) * 1000:>{len(kind) + 4}.0f}"
            for kind in used
        )
        print(
            f"{label:<54} {median(label, 'rps'):>7.1f} {median(label, 'p50') * 1000:>7.0f}"
            f" {median(label, 'p95') * 1000:>7.0f} {sum(r['errors'] for r in runs):>6}"
            f"   {kind_p95}"
        )
    labels = list(results)
    both, alone, local1, local2 = labels[:2] + labels[-2:]
    print(
        f"\nper process, stateless / local: {median(alone, 'rps') / median(local1, 'rps'):.2f}x"
        f" req/s, p95 {median(alone, 'p95') / median(local1, 'p95'):.2f}x"
    )
    print(
        f"two stateless processes sharing state / the two local ones alone, summed:"
        f" {median(both, 'rps') / (median(local1, 'rps') + median(local2, 'rps')):.2f}x req/s"
        " (the local ones cannot serve each other's users)"
    )


if __name__ == "__main__":
    sys.exit(main())
