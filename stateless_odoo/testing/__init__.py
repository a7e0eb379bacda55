"""Helpers for the addons' tests: start another Odoo server as a subprocess.

The Odoo tier's tests start real Odoo servers (threaded or prefork) with their own
environment variables and ``--load`` line, as a deployment would, and talk to them over
HTTP. Nothing here imports Odoo: the caller gives the command line.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import requests


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OdooServer:
    """``command`` (an Odoo command line without ports) started with ``env``; its
    output goes to ``log_path`` when given (appended on restarts). Use as a context manager, or
    ``start()`` / ``stop()`` / ``restart()`` / ``kill()``. It is up when
    ``/web/health`` answers one of ``ready_statuses`` (a database that is refused
    answers 500 there when it is the only one the server exposes).

    The ports are chosen once (``port`` / ``gevent_port``, free ones by default) and
    kept across restarts. The server runs in a session of its own, so that ``kill()``
    takes the whole process group (master, workers, gevent, cron) at once, as a host
    that dies would."""

    #: what ``start()`` raises when the server exits or does not answer
    error = AssertionError

    def __init__(
        self,
        command,
        env,
        *,
        log_path=None,
        wrapper=(),
        timeout=90,
        ready_statuses=(200,),
        port=None,
        gevent_port=None,
        name="Odoo",
    ):
        self.name = name
        self.port = port or free_port()
        self.gevent_port = gevent_port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.command = [
            *wrapper,
            *command,
            "--http-interface=127.0.0.1",
            f"--http-port={self.port}",
            f"--gevent-port={self.gevent_port}",
        ]
        self.env = env
        self.timeout = timeout
        self.ready_statuses = ready_statuses
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def pid(self):
        """The master's pid while it runs, else None."""
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def start(self):
        # a restart appends to the log of the earlier runs
        mode = "wb" if self.proc is None else "ab"
        output = open(self.log_path, mode) if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - the test's own command
                self.command,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if self.log_path:
                output.close()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self.error(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                response = requests.get(f"{self.url}/web/health", timeout=10)
                if response.status_code in self.ready_statuses:
                    return self
            except requests.exceptions.RequestException:
                pass
            time.sleep(0.25)
        self.kill()
        raise self.error(f"{self.name} did not answer on {self.url}:\n{self.log_tail()}")

    def stop(self, timeout=30):
        """A clean stop (SIGINT: the workers finish their request and are reaped);
        SIGKILL to the group past ``timeout``."""
        if self.pid is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reap_group()

    def restart(self):
        self.stop()
        return self.start()

    def kill(self):
        """SIGKILL to every process of the server at once: no clean-up code runs."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._reap_group()

    def _reap_group(self):
        """Wait until no process of the group is left and the port is closed (a killed
        master's workers and gevent process die with it; a clean stop reaps them; a
        thread group leader shows as a zombie while its other threads still exit, with
        the listening socket open)."""
        deadline = time.monotonic() + 30
        while (self.group_pids() or self.listening()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in self.group_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def listening(self):
        """Whether something accepts connections on the HTTP port."""
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def group_pids(self):
        """The pids of the server's process group (master, workers, gevent, cron)."""
        if self.proc is None:
            return set()
        pids = set()
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(os.path.join(entry.path, "stat")) as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                # fields: state ppid pgrp ...
                if int(fields[2]) == self.proc.pid and fields[0] not in "ZX":
                    pids.add(int(entry.name))
        return pids

    def log_lines(self):
        if not self.log_path or not os.path.exists(self.log_path):
            return []
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read().splitlines()

    def log_tail(self, count=30):
        return "\n".join(self.log_lines()[-count:])


def odoo_launcher(odoo):
    """How to start the running Odoo (``odoo`` given by the caller) as a server: its
    ``odoo`` script (or ``odoo-bin``), not ``python -m odoo``: prefork re-executes
    ``sys.argv[0]`` for the websocket process, which fails for ``odoo/__main__.py``."""
    script = os.path.join(os.path.dirname(sys.executable), "odoo")
    if os.path.isfile(script):
        return [script]
    root = os.path.dirname(os.path.dirname(os.path.abspath(odoo.__file__)))
    return [sys.executable, os.path.join(root, "odoo-bin")]


def odoo_command(odoo, *args):
    """The command line of the running Odoo with its addons path and database
    connection, no cron thread, plus ``args``."""
    config = odoo.tools.config
    return [
        *odoo_launcher(odoo),
        f"--addons-path={config['addons_path']}",
        "--db_host",
        config["db_host"] or "127.0.0.1",
        "--db_port",
        str(config["db_port"] or 5432),
        "--db_user",
        config["db_user"],
        "--max-cron-threads=0",
        *args,
    ]


class RealServicesMixin:
    """For Odoo test classes whose code reaches the local services over HTTP.

    In tests Odoo replaces ``requests.Session.send`` with a handler that lets loopback
    requests through but compares their timeout with a number; swiftclient passes
    ``(connect, read)`` tuples, which requests accepts. Give that handler one number.
    """

    @classmethod
    def _request_handler(cls, s, r, /, **kw):
        timeout = kw.get("timeout")
        if isinstance(timeout, tuple):
            kw["timeout"] = max(t for t in timeout if t is not None)
        return super()._request_handler(s, r, **kw)


def websocket(port, path="/websocket", cookies=None, timeout=60):
    """A websocket to an Odoo gevent port (RFC 6455 handshake, no library): ``(socket,
    status line)``. Waits for the port: the websocket process starts after the HTTP
    workers."""
    import base64

    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)
    host = f"127.0.0.1:{port}"
    key = base64.b64encode(os.urandom(16)).decode()
    cookie = "".join(f"Cookie: {name}={value}\r\n" for name, value in (cookies or {}).items())
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: http://{host}\r\n{cookie}\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head.split(b"\r\n", 1)[0]


def ws_open(port, sid, path="/websocket"):
    """:func:`websocket` with a session cookie; raises unless the handshake succeeded."""
    sock, status = websocket(port, path, cookies={"session_id": sid})
    if b" 101 " not in status:
        sock.close()
        raise AssertionError(f"websocket handshake refused: {status!r}")
    return sock


def ws_send(sock, message):
    """Send ``message`` (JSON) as one masked text frame, as a browser does."""
    import json

    payload = json.dumps(message).encode()
    mask = os.urandom(4)
    if len(payload) < 126:
        header = bytes([0x81, 0x80 | len(payload)])
    else:
        header = bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def _recv_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("websocket closed without a close frame")
        data += chunk
    return data


def ws_close_code(sock, timeout):
    """The code of the next close frame, or None if none comes within ``timeout``."""
    sock.settimeout(timeout)
    try:
        while True:
            first, second = _recv_exactly(sock, 2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(_recv_exactly(sock, 2), "big")
            elif length == 127:
                length = int.from_bytes(_recv_exactly(sock, 8), "big")
            payload = _recv_exactly(sock, length)
            if first & 0x0F == 0x8:
                return int.from_bytes(payload[:2], "big")
    except TimeoutError:
        return None


def remove_container(store):
    """Delete every object of ``store``'s bucket or container, then the container (a
    test's or a benchmark's, made for it)."""
    store.delete_many([info.key for info in store.list()])
    if store.scheme == "s3":
        store.client.delete_bucket(Bucket=store.container)
    else:
        store.connection.delete_container(store.container)


class StatsdServer:
    """A statsd server on loopback (a UDP socket drained by a thread): counts the
    packets it receives and, with ``keep``, keeps their lines."""

    def __init__(self, keep=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.keep = keep
        self.packets = 0
        self.lines = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="statsd-sink", daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                packet = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.packets += 1
            if self.keep:
                self.lines.extend(packet.decode("utf-8", "replace").splitlines())

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
