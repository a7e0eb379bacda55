#!/usr/bin/env python3
"""The local stateless platform of ``./dev up`` and ``./dev down``.

    scripts/local_platform.py up [--odoo-python PYTHON]   start it (or say that it runs)
    scripts/local_platform.py down                        stop it, drop its database
    scripts/local_platform.py status                      exit 0 when it runs
    scripts/local_platform.py env                         the suite's variables it runs with

The platform is the end-to-end tier's (tests/e2e/stack.py), left running: two prefork
Odoo processes (2 workers each) behind nginx, the suite in ``--load``, sessions in
Redis, attachments in the local S3 store, JSON logs, statsd (to a sink that appends
the packets to a file) and Prometheus; the database is made as docs/deployment.md
tells hosting teams (install, then ``install_exoscale``). Its processes outlive this
command; ``platform.json`` in the state dir (``STATELESS_PLATFORM_DIR``, default
``/tmp/stateless-odoo-platform``) says how to find and stop them. nginx listens on
``STATELESS_PLATFORM_PORT`` (default 8069); the database is ``STATELESS_PLATFORM_DB``
(default ``stateless``).
"""

import argparse
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e import stack as e2e  # noqa: E402

STATE_DIR = Path(os.environ.get("STATELESS_PLATFORM_DIR", "/tmp/stateless-odoo-platform"))  # noqa: S108
STATE = STATE_DIR / "platform.json"
DB = os.environ.get("STATELESS_PLATFORM_DB", "stateless")


def load():
    with contextlib.suppress(FileNotFoundError, ValueError):
        return json.loads(STATE.read_text())
    return None


def running(state):
    return bool(state) and all(e2e.nginx.alive(pid) for pid in state["pids"].values())


def statsd_sink(port, path):
    """Run a statsd server that appends each packet to ``path`` (until killed)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    with open(path, "ab", buffering=0) as out:
        while True:
            packet = sock.recv(65536)
            out.write(packet.rstrip(b"\n") + b"\n")


def _start_sink(path):
    port = e2e.free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "statsd-sink", str(port), str(path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    return port, proc.pid


def _stop_group(pid, timeout=30):
    """SIGINT to a session leader (Odoo's clean stop), SIGKILL to its group past
    ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while e2e.nginx.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def up(odoo_python=None):
    state = load()
    if running(state):
        print(summary(state, "already runs"))
        return 0
    if state:
        down(quiet=True)  # what is left of an earlier run
    if odoo_python:
        os.environ["ODOO_PYTHON"] = odoo_python
    started = time.monotonic()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    port = int(os.environ.get("STATELESS_PLATFORM_PORT", "8069"))
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            sys.exit(f"platform: port {port} is taken: set STATELESS_PLATFORM_PORT")
    sink_port, sink_pid = _start_sink(STATE_DIR / "statsd.log")

    def log(line):
        print(line.replace("e2e: ", "platform: "), flush=True)

    platform = e2e.Stack(
        STATE_DIR, db=DB, nginx_port=port, statsd_port=sink_port, keep=True, log=log
    )
    try:
        platform.up()
    except BaseException:
        platform.keep = False  # drop what was made
        platform.down()
        _stop_group(sink_pid, timeout=0)
        raise
    header = STATE_DIR / "metrics.header"
    header.write_text(f"Authorization: Bearer {platform.prometheus_token}\n")
    header.chmod(0o600)
    suite = {k: v for k, v in platform.env.items() if k.startswith(e2e.odoo_tier.CONTRACT)}
    state = {
        "url": platform.url,
        "db": platform.db,
        "login": list(e2e.ADMIN),
        "kind": platform.kind,
        "container": platform.container,
        "pg": platform.pg,
        "replica_was_up": platform._replica_was_up,
        "nginx_prefix": str(platform.nginx_prefix),
        "pids": {p.name: p.pid for p in platform.processes} | {"statsd-sink": sink_pid},
        "processes": {p.name: {"url": p.url, "log": str(p.log_path)} for p in platform.processes},
        "statsd_log": str(STATE_DIR / "statsd.log"),
        "metrics_header": str(header),
        "env": suite,
        "seconds": round(time.monotonic() - started, 1),
    }
    STATE.write_text(json.dumps(state, indent=2))
    STATE.chmod(0o600)  # the suite's secrets (the store's keys, the metrics token)
    print(summary(state, f"runs (started in {state['seconds']} s)"))
    return 0


def summary(state, what):
    first = next(iter(state["processes"].values()))
    logs = ", ".join(p["log"] for p in state["processes"].values())
    return f"""
The stateless platform {what}:
  URL        {state["url"]}  (nginx, round robin over {len(state["processes"])} Odoo processes)
  login      {state["login"][0]} / {state["login"][1]}, database {state["db"]}
  store      {state["kind"]}, bucket {state["container"]}; sessions in Redis
  logs       {logs} (JSON); nginx {state["nginx_prefix"]}/logs/access.log
  metrics    curl -H @{state["metrics_header"]} {first["url"]}/metrics
             statsd packets: {state["statsd_log"]}
  variables  eval "$(./dev env --suite)"
Stop it with: ./dev down"""


def down(quiet=False):
    state = load()
    if not state:
        if not quiet:
            print("platform: not running")
        return 0
    for pid in state["pids"].values():
        _stop_group(pid)
    with contextlib.suppress(Exception):
        e2e.nginx.stop(state["nginx_prefix"])
    if not state["replica_was_up"]:
        subprocess.run([str(e2e.E2E_SH), "down"], capture_output=True, check=False)
    pg = state["pg"]
    subprocess.run(
        ["dropdb", "--if-exists", "--force", "-h", pg["host"], "-p", pg["port"], "-U",
         pg["user"], state["db"]],
        capture_output=True, check=False,
    )  # fmt: skip
    with contextlib.suppress(Exception):  # the services may be stopped already
        e2e.remove_container(e2e.build_store(state["kind"], state["env"], db_name=state["db"]))
    STATE.unlink()
    if not quiet:
        print(f"platform: stopped; database {state['db']} and bucket {state['container']} dropped")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("up")
    start.add_argument("--odoo-python", help="an interpreter that imports Odoo 18")
    sub.add_parser("down")
    sub.add_parser("status")
    sub.add_parser("env")
    sink = sub.add_parser("statsd-sink")
    sink.add_argument("port", type=int)
    sink.add_argument("path")
    args = parser.parse_args(argv)
    if args.command == "up":
        try:
            return up(args.odoo_python)
        except e2e.Unavailable as exc:
            print(f"platform: not started: {exc}", file=sys.stderr)
            return 3
    if args.command == "down":
        return down()
    state = load()
    if args.command == "status":
        print(summary(state, "runs") if running(state) else "platform: not running")
        return 0 if running(state) else 1
    if args.command == "env":
        if not running(state):
            sys.exit("platform: not running (./dev up)")
        for name, value in sorted(state["env"].items()):
            print(f"export {name}={shlex.quote(value)}")
        return 0
    statsd_sink(args.port, args.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
