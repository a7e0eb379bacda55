"""nginx in front of the end-to-end scenario's Odoo processes (stdlib only).

    render(prefix_dir, listen_port, http_backends, websocket_backends, cache_dir)
        writes <prefix>/conf/nginx.conf from nginx.conf.template (beside this file)
    start(prefix_dir)   starts nginx on it (or reloads a running one), waits until it
                        listens; returns the master's pid
    stop(prefix_dir)    stops it (fast shutdown), waits until it is gone
    running(prefix_dir) the master's pid, or None

Everything nginx writes (pid, logs, temp files) is under the prefix, so that it runs
as ``nginx -p <prefix> -c <prefix>/conf/nginx.conf -e <prefix>/logs/error.log``
without touching the system nginx's files. The same from a shell::

    python scripts/e2e/nginx.py render PREFIX PORT --http 127.0.0.1:8069,127.0.0.1:8070 \\
        --websocket 127.0.0.1:8072,127.0.0.1:8073 --cache-dir PREFIX/cache
    python scripts/e2e/nginx.py start PREFIX     # prints the master's pid
    python scripts/e2e/nginx.py status PREFIX    # exit 1 when it is not running
    python scripts/e2e/nginx.py stop PREFIX
"""

import argparse
import contextlib
import grp
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf.template")
NGINX = os.environ.get("E2E_NGINX", "/usr/sbin/nginx")
DEFAULT_X_ACCEL_PREFIX = "/_object_storage/"  # base_attachment_object_storage's default
TRUSTED_CA = "/etc/ssl/certs/ca-certificates.crt"  # Debian's ca-certificates


class NginxError(RuntimeError):
    """nginx would not start, reload or stop; the message has its error log's end."""


def _paths(prefix_dir):
    prefix = Path(prefix_dir).resolve()
    return {
        "prefix": prefix,
        "conf": prefix / "conf" / "nginx.conf",
        "pid": prefix / "logs" / "nginx.pid",
        "error_log": prefix / "logs" / "error.log",
        "listen": prefix / "conf" / "listen",  # "host port", for start() to wait on
    }


def _server_lines(backends, what):
    """``server host:port ...;`` lines of an upstream block."""
    lines = []
    for backend in backends:
        if isinstance(backend, int) or str(backend).isdigit():
            address = f"127.0.0.1:{backend}"
        elif isinstance(backend, tuple):
            address = f"{backend[0]}:{backend[1]}"
        else:
            address = str(backend)
        if not re.fullmatch(r"[\w.\-\[\]:]+:\d+", address):
            raise ValueError(f"{what} backend {backend!r}: expected host:port, a port or a tuple")
        # a process that refused a connection is left alone 5 s (then tried again)
        lines.append(f"        server {address} max_fails=1 fail_timeout=5s;")
    if not lines:
        raise ValueError(f"no {what} backend")
    return "\n".join(lines)


def system_resolver():
    """The first name server of /etc/resolv.conf (127.0.0.1 when there is none)."""
    with contextlib.suppress(OSError):
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                return f"[{fields[1]}]" if ":" in fields[1] else fields[1]
    return "127.0.0.1"


def _user_line(prefix, user):
    """Workers run as ``user``; by default (as root) as the owner of the prefix.

    nginx's default (nobody) could not go through a private prefix such as a pytest
    temporary directory. A system installation runs them as www-data.
    """
    if user is None and os.geteuid() == 0:
        owner = prefix.stat()
        user = f"{pwd.getpwuid(owner.st_uid).pw_name} {grp.getgrgid(owner.st_gid).gr_name}"
    if user is None:
        return "# (not root: the workers run as the user who starts nginx)"
    return f"user {user};"


def render(
    prefix_dir,
    listen_port,
    http_backends,
    websocket_backends,
    cache_dir,
    *,
    listen_host="127.0.0.1",
    x_accel_prefix=DEFAULT_X_ACCEL_PREFIX,
    resolver=None,
    worker_processes=2,
    trusted_ca=TRUSTED_CA,
    user=None,
):
    """Write ``<prefix_dir>/conf/nginx.conf``; return its path.

    ``http_backends`` are Odoo's HTTP ports, ``websocket_backends`` its gevent ports:
    each a port on 127.0.0.1, a ``"host:port"`` string or a ``(host, port)`` tuple.
    ``cache_dir`` holds the cache of ``/<module>/static/`` answers. ``x_accel_prefix``
    is ``ODOO_ATTACHMENT_X_ACCEL_PREFIX``; ``resolver`` the name server for object
    store host names (default: the system's).
    """
    paths = _paths(prefix_dir)
    prefix = paths["prefix"]
    for sub in ("conf", "logs", "temp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    if not (x_accel_prefix.startswith("/") and x_accel_prefix.endswith("/")):
        raise ValueError(f"x_accel_prefix {x_accel_prefix!r}: a path starting and ending with /")
    if not Path(trusted_ca).is_file():
        raise ValueError(f"no {trusted_ca} (CA bundle for HTTPS stores; Debian: ca-certificates)")
    host = f"[{listen_host}]" if ":" in listen_host else listen_host
    values = {
        "PREFIX": str(prefix),
        "USER_LINE": _user_line(prefix, user),
        "WORKER_PROCESSES": str(worker_processes),
        "LISTEN": f"{host}:{int(listen_port)}",
        "HTTP_SERVERS": _server_lines(http_backends, "http"),
        "WEBSOCKET_SERVERS": _server_lines(websocket_backends, "websocket"),
        "CACHE_DIR": str(cache),
        "X_ACCEL_PREFIX_REGEX": re.escape(x_accel_prefix),
        "X_ACCEL_PREFIX": x_accel_prefix,
        "RESOLVER": resolver or system_resolver(),
        "TRUSTED_CA": trusted_ca,
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise ValueError(f"{TEMPLATE}: no value for {', '.join(sorted(set(left)))}")
    tmp = paths["conf"].with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(paths["conf"])
    paths["listen"].write_text(f"{listen_host} {int(listen_port)}\n")
    return paths["conf"]


def _command(paths, *extra):
    return [
        NGINX,
        "-p",
        str(paths["prefix"]),
        "-c",
        str(paths["conf"]),
        "-e",
        str(paths["error_log"]),
        *extra,
    ]


def _stat(pid):
    """(state, ppid) of a process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def alive(pid):
    """True while ``pid`` is a live process (a zombie is not)."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def _workers(master):
    """The live children of the nginx master (its worker and cache processes)."""
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(entry.name)
            if stat and stat[1] == master and stat[0] != "Z":
                children.add(int(entry.name))
    return children


def running(prefix_dir):
    """The pid of the nginx master serving ``prefix_dir``, or None."""
    paths = _paths(prefix_dir)
    try:
        pid = int(paths["pid"].read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (OSError, ValueError):
        return None
    # a stale pidfile (after a reboot) may name any process
    if str(paths["prefix"]).encode() not in cmdline or not alive(pid):
        return None
    return pid


def _log_tail(paths, lines=15):
    with contextlib.suppress(OSError):
        return "\n".join(paths["error_log"].read_text().splitlines()[-lines:])
    return ""


def _listening(host, port):
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def start(prefix_dir, timeout=10):
    """Start nginx on the rendered configuration, or reload the one running there.

    Returns the master's pid once nginx accepts connections on its port and, after a
    reload, once the workers of the previous configuration are gone: from then on
    every request sees the new one (they finish their requests first, websockets
    included, for worker_shutdown_timeout at most).
    """
    paths = _paths(prefix_dir)
    if not paths["conf"].exists():
        raise NginxError(f"no {paths['conf']}: render() first")
    host, _, port = paths["listen"].read_text().strip().partition(" ")
    pid = running(prefix_dir)
    old_workers = _workers(pid) if pid else set()
    action = _command(paths, "-s", "reload") if pid else _command(paths)
    done = subprocess.run(action, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode:
        raise NginxError(
            f"{' '.join(action)} failed ({done.returncode}):\n{done.stderr}{_log_tail(paths)}"
        )
    deadline = time.monotonic() + timeout
    while True:
        pid = running(prefix_dir)
        if pid and _listening(host, int(port)) and not old_workers & _workers(pid):
            return pid
        if time.monotonic() > deadline:
            what = "still has workers of the previous configuration" if pid else "is not running"
            raise NginxError(f"nginx on {host}:{port} {what}:\n{_log_tail(paths)}")
        time.sleep(0.05)


def stop(prefix_dir, timeout=10):
    """Stop the nginx of ``prefix_dir`` (TERM: fast shutdown, websockets cut); True if
    one was running."""
    paths = _paths(prefix_dir)
    pid = running(prefix_dir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:  # workers first: a killed master leaves them
            for worker in _workers(pid):
                with contextlib.suppress(OSError):
                    os.kill(worker, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        paths["pid"].unlink()
    return True


def _backends(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rendering = commands.add_parser("render", help="write PREFIX/conf/nginx.conf")
    rendering.add_argument("prefix")
    rendering.add_argument("port", type=int)
    rendering.add_argument("--http", required=True, help="Odoo HTTP ports: host:port,...")
    rendering.add_argument("--websocket", required=True, help="gevent ports: host:port,...")
    rendering.add_argument("--cache-dir", required=True)
    rendering.add_argument("--listen-host", default="127.0.0.1")
    rendering.add_argument("--x-accel-prefix", default=DEFAULT_X_ACCEL_PREFIX)
    rendering.add_argument("--resolver")
    for name in ("start", "stop", "status"):
        commands.add_parser(name).add_argument("prefix")
    args = parser.parse_args(argv)
    try:
        if args.command == "render":
            print(
                render(
                    args.prefix,
                    args.port,
                    _backends(args.http),
                    _backends(args.websocket),
                    args.cache_dir,
                    listen_host=args.listen_host,
                    x_accel_prefix=args.x_accel_prefix,
                    resolver=args.resolver,
                )
            )
        elif args.command == "start":
            print(start(args.prefix))
        elif args.command == "stop":
            stop(args.prefix)
        else:
            pid = running(args.prefix)
            print(f"running, pid {pid}" if pid else "stopped")
            return 0 if pid else 1
    except (NginxError, ValueError, OSError) as exc:
        print(f"nginx.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
