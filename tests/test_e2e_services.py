"""The infrastructure of the end-to-end scenario: scripts/e2e.sh and scripts/e2e/nginx.py.

- The PostgreSQL replica is real: ``scripts/e2e.sh up`` makes it from the machine's
  cluster with pg_basebackup and starts it; a row written on the primary is read on the
  replica, which refuses writes.
- nginx is real, with the configuration that nginx.py renders, but what stands behind it
  here is not Odoo: two tiny stdlib HTTP servers play Odoo's HTTP ports (they answer
  with their name and the headers they received), a raw socket server plays a gevent
  port (it answers the websocket handshake with 101 and echoes what follows), and a
  third HTTP server plays the object store that an X-Accel-Redirect names. These
  stand-ins are acceptable only because these tests check nginx's configuration
  (round robin, the proxy-mode headers, the static cache, gzip, the websocket upgrade,
  the X-Accel-Redirect contract of base_attachment_object_storage), not Odoo: the
  end-to-end scenario runs real Odoo processes behind the same configuration.

Skipped only when not root (the replica runs as the postgres OS user, nginx is installed
from Debian) or when the Debian packages cannot be installed (``e2e.sh up`` exits 3).
"""

import base64
import contextlib
import gzip
import hashlib
import http.server
import importlib.util
import itertools
import json
import os
import re
import socket
import subprocess
import threading
import time
import types
import uuid

import psycopg2
import psycopg2.errors
import pytest
import requests

from .conftest import ROOT, _read_env

E2E = ROOT / "scripts" / "e2e.sh"
# scripts/e2e/nginx.py, under a name that no installed package can shadow
_spec = importlib.util.spec_from_file_location("e2e_nginx", ROOT / "scripts" / "e2e" / "nginx.py")
nginx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nginx)


def _run(*args, timeout=300):
    return subprocess.run(
        [str(E2E), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="session")
def e2e():
    """``scripts/e2e.sh up`` (and ``down`` at the end, unless it was up before)."""
    if os.geteuid() != 0:
        pytest.skip("scripts/e2e.sh needs root: the replica runs as the postgres OS user")
    was_up = _run("status").returncode == 0
    up = _run("up")
    if up.returncode == 3:
        pytest.skip(f"the Debian packages cannot be installed:\n{up.stderr}")
    if up.returncode:
        pytest.fail(f"scripts/e2e.sh up failed:\n{up.stdout}\n{up.stderr}", pytrace=False)
    yield _read_env(_run("env").stdout)
    if not was_up:
        down = _run("down")
        assert down.returncode == 0, down.stderr


# ---------------------------------------------------------------- replica --


def _connect(env, replica=False, dbname="postgres"):
    host, port = (
        (env["E2E_PG_REPLICA_HOST"], env["E2E_PG_REPLICA_PORT"])
        if replica
        else (env["E2E_PG_HOST"], env["E2E_PG_PORT"])
    )
    conn = psycopg2.connect(
        host=host, port=int(port), user=env["E2E_PG_USER"], dbname=dbname, connect_timeout=5
    )
    conn.autocommit = True
    return conn


def _poll(what, probe, timeout=10):
    """probe() until it returns a true value or stops raising; its last error if not."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
        except psycopg2.Error:
            if time.monotonic() > deadline:
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not seen on the replica after {timeout} s")
        time.sleep(0.1)


@pytest.fixture
def throwaway_db(e2e):
    """A new database on the primary (and so on the replica), dropped at the end."""
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    primary = _connect(e2e)
    with primary.cursor() as cr:
        cr.execute(f'CREATE DATABASE "{name}"')
    yield name
    with primary.cursor() as cr:
        cr.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    primary.close()


def test_up_starts_a_streaming_replica(e2e):
    status = _run("status")
    assert status.returncode == 0, status.stdout + status.stderr
    line = next(x for x in status.stdout.splitlines() if x.startswith("pg-replica"))
    assert "in recovery: t" in line and "primary sees: streaming" in line, line
    assert e2e["E2E_PG_REPLICA_HOST"] == "127.0.0.1"
    # the options Odoo 18 reads for its read-only cursors (both: the port defaults
    # to libpq's 5432 otherwise)
    args = e2e["E2E_ODOO_DB_ARGS"].split()
    assert "--db_replica_host=127.0.0.1" in args
    assert f"--db_replica_port={e2e['E2E_PG_REPLICA_PORT']}" in args
    with contextlib.closing(_connect(e2e, replica=True)) as conn, conn.cursor() as cr:
        cr.execute("select pg_is_in_recovery(), current_setting('port')")
        assert cr.fetchone() == (True, e2e["E2E_PG_REPLICA_PORT"])
    with contextlib.closing(_connect(e2e)) as conn, conn.cursor() as cr:
        cr.execute(
            "select state from pg_stat_replication where application_name = %s",
            ["stateless_e2e_replica"],
        )
        assert cr.fetchall() == [("streaming",)]


def test_up_again_keeps_the_running_replica(e2e):
    data = os.path.join(e2e["STATELESS_E2E_DIR"], "pg-replica", "data", "postmaster.pid")
    with open(data) as f:
        pid = f.readline().strip()
    started = time.monotonic()
    again = _run("up")
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 10
    with open(data) as f:
        assert f.readline().strip() == pid
    assert "(started)" not in again.stderr


def test_a_row_written_on_the_primary_is_read_on_the_replica(e2e, throwaway_db):
    with contextlib.closing(_connect(e2e, dbname=throwaway_db)) as primary:
        with primary.cursor() as cr:
            cr.execute("create table probe (id serial primary key, word text)")
            cr.execute("insert into probe (word) values ('hello replica') returning id")
            (row_id,) = cr.fetchone()

    replica = _poll("the new database", lambda: _connect(e2e, replica=True, dbname=throwaway_db))
    with contextlib.closing(replica), replica.cursor() as cr:

        def read():
            cr.execute("select word from probe where id = %s", [row_id])
            return cr.fetchone()

        assert _poll("the row", read) == ("hello replica",)


def test_the_replica_refuses_writes(e2e, throwaway_db):
    with contextlib.closing(_connect(e2e, dbname=throwaway_db)) as primary:
        with primary.cursor() as cr:
            cr.execute("create table probe (word text)")
    replica = _poll("the new database", lambda: _connect(e2e, replica=True, dbname=throwaway_db))
    with contextlib.closing(replica), replica.cursor() as cr:
        _poll("the table", lambda: cr.execute("select 1 from probe") or True)
        with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
            cr.execute("insert into probe values ('refused')")


# ------------------------------------------------------------------ nginx --


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def _serve(handler, **attrs):
    server = _Server(("127.0.0.1", 0), handler)
    for name, value in attrs.items():
        setattr(server, name, value)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx's upstream keepalive expects

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


STATIC_CSS = b"".join(b".o_rule_%d { color: #%06x; }\n" % (i, i) for i in range(400))
ACCEL_PREFIX = "/_object_storage/"  # ODOO_ATTACHMENT_X_ACCEL_PREFIX's default
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455


class OdooStandIn(_Quiet):
    """Plays an Odoo HTTP port: says who it is and what it was sent."""

    def do_GET(self):
        server = self.server
        path, _, query = self.path.partition("?")
        with server.lock:
            server.hits[self.path] = server.hits.get(self.path, 0) + 1
        if path.startswith("/web/static/"):
            headers = [("Set-Cookie", "session_id=abc; Path=/")] if "cookie" in path else []
            headers.append(("X-Backend", server.name))
            return self.answer(200, STATIC_CSS, "text/css", headers)
        if path.startswith("/web/content/"):
            # base_attachment_object_storage's answer in x-accel-redirect mode
            # (http_stream.ObjectStream._x_accel)
            return self.answer(
                200,
                b"",
                "text/plain; charset=utf-8",
                [
                    ("Content-Disposition", "attachment; filename*=UTF-8''report%20final.txt"),
                    ("X-Accel-Redirect", f"{ACCEL_PREFIX}{server.accel_target}"),
                    ("Cache-Control", "private, no-store"),
                    ("X-Content-Type-Options", "nosniff"),
                    ("Content-Security-Policy", "default-src 'none'"),
                ],
            )
        body = {"backend": server.name, "path": self.path, "headers": dict(self.headers)}
        if "pad=1" in query:
            body["pad"] = "x" * 4000
        return self.answer(200, json.dumps(body).encode())

    do_HEAD = do_GET

    def do_POST(self):
        size = int(self.headers.get("Content-Length", 0))
        read = 0
        while read < size:
            read += len(self.rfile.read(min(65536, size - read)))
        self.answer(200, json.dumps({"backend": self.server.name, "received": read}).encode())


class StoreStandIn(_Quiet):
    """Plays the object store: serves one object at one path (and single byte ranges of
    it), records the requests."""

    def do_GET(self):
        self.server.requests.append((self.path, dict(self.headers)))
        path = self.path.partition("?")[0]
        if path != self.server.object_path:
            return self.answer(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
        body, status, extra = self.server.object_body, 200, []
        wanted = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if wanted:
            start, end = int(wanted[1]), int(wanted[2])
            extra = [("Content-Range", f"bytes {start}-{end}/{len(body)}")]
            body, status = body[start : end + 1], 206
        return self.answer(
            status,
            body,
            "application/octet-stream",
            [
                *extra,
                ("Content-Disposition", "attachment; filename=store-name.bin"),
                ("Cache-Control", "max-age=3600"),
                ("X-Amz-Request-Id", "store-internal-id"),
                ("Set-Cookie", "store-affinity=1"),
            ],
        )


class WebsocketStandIn:
    """Plays a gevent port: answers the handshake with 101, then echoes."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.handshakes = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.handshakes.append((lines[0], headers))
            accept = base64.b64encode(
                hashlib.sha1((headers.get("sec-websocket-key", "") + WS_GUID).encode()).digest()
            ).decode()
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n"
            )
            if rest:
                conn.sendall(b"echo:" + rest)
            while chunk := conn.recv(4096):
                conn.sendall(b"echo:" + chunk)

    def close(self):
        self.sock.close()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def proxy(e2e, tmp_path_factory):
    """nginx (rendered by nginx.py) in front of two Odoo stand-ins, a websocket one and
    a store; yields a namespace with its URL and the stand-ins."""
    store = _serve(StoreStandIn, requests=[], object_body=os.urandom(3000))
    # a Swift temporary URL's form; the key has a space (escaped by the store's client)
    store.object_path = "/v1/AUTH_test/odoo-db/db1/ab/abc%20def"
    accel_target = (
        f"http/127.0.0.1:{store.server_address[1]}{store.object_path}"
        "?temp_url_sig=0f1e2d%2B3c&temp_url_expires=1700000000&filename=report%20final.txt"
    )
    backends = [
        _serve(OdooStandIn, name=name, hits={}, lock=threading.Lock(), accel_target=accel_target)
        for name in ("odoo-a", "odoo-b")
    ]
    websocket = WebsocketStandIn()
    prefix = tmp_path_factory.mktemp("nginx")
    port = _free_port()
    conf = nginx.render(
        prefix,
        port,
        [server.server_address[1] for server in backends],
        [websocket.port],
        prefix / "cache",
    )
    pid = nginx.start(prefix)
    yield types.SimpleNamespace(
        url=f"http://127.0.0.1:{port}",
        port=port,
        pid=pid,
        prefix=prefix,
        conf=conf,
        backends=backends,
        store=store,
        websocket=websocket,
        accel_target=accel_target,
    )
    assert nginx.stop(prefix)
    assert nginx.running(prefix) is None
    websocket.close()
    for server in [*backends, store]:
        server.shutdown()
        server.server_close()


def _get(proxy, path, timeout=10, **kwargs):
    return requests.get(proxy.url + path, timeout=timeout, **kwargs)


def test_nginx_runs_from_its_prefix(proxy):
    assert nginx.running(proxy.prefix) == proxy.pid
    text = proxy.conf.read_text()
    # nothing outside the prefix but the cache dir (also in it here) and the CA bundle
    for directive in ("pid ", "error_log ", "access_log ", "_temp_path "):
        lines = [line.split() for line in text.splitlines() if directive in line]
        paths = [w for line in lines for w in line if w.startswith("/")]
        assert paths and all(p.startswith(str(proxy.prefix)) for p in paths), lines
    # start() on a running prefix reloads the configuration: same master
    assert nginx.start(proxy.prefix) == proxy.pid


def test_round_robin_across_the_odoo_processes(proxy):
    answers = [_get(proxy, "/web/webclient/version_info").json()["backend"] for _ in range(6)]
    assert sorted(answers) == ["odoo-a"] * 3 + ["odoo-b"] * 3, answers
    assert all(a != b for a, b in itertools.pairwise(answers)), answers


def test_proxy_mode_headers(proxy):
    answer = _get(proxy, "/web/login", headers={"X-Forwarded-For": "203.0.113.7"}).json()
    headers = {name.lower(): value for name, value in answer["headers"].items()}
    assert headers["x-forwarded-host"] == f"127.0.0.1:{proxy.port}"
    assert headers["host"] == f"127.0.0.1:{proxy.port}"
    assert headers["x-forwarded-proto"] == "http"
    # appended: Odoo's ProxyFix (x_for=1) takes the last one, the address nginx saw
    assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert headers["x-real-ip"] == "127.0.0.1"
    assert len(headers["x-request-id"]) == 32
    # a plain request: no upgrade, and no "Connection: close" (upstream keepalive)
    assert "upgrade" not in headers and headers.get("connection", "") != "close"


def test_static_files_are_cached(proxy):
    path = f"/web/static/src/{uuid.uuid4().hex}.css"
    first, second = _get(proxy, path), _get(proxy, path)
    assert (first.headers["X-Cache-Status"], second.headers["X-Cache-Status"]) == ("MISS", "HIT")
    assert first.content == second.content == STATIC_CSS
    assert sum(server.hits.get(path, 0) for server in proxy.backends) == 1
    # answers that set a cookie are never cached; other paths do not go through the cache
    path = f"/web/static/cookie/{uuid.uuid4().hex}.css"
    statuses = [_get(proxy, path).headers["X-Cache-Status"] for _ in range(2)]
    assert statuses == ["MISS", "MISS"]
    assert "X-Cache-Status" not in _get(proxy, "/web/login").headers


def test_gzip_for_text(proxy):
    path = f"/web/static/src/{uuid.uuid4().hex}.css"
    zipped = _get(proxy, path, headers={"Accept-Encoding": "gzip"}, stream=True)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.raw.read()) == STATIC_CSS
    plain = _get(proxy, path, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and plain.content == STATIC_CSS
    rpc = _get(proxy, "/web/dataset/call_kw?pad=1", headers={"Accept-Encoding": "gzip"})
    assert rpc.headers["Content-Encoding"] == "gzip" and len(rpc.json()["pad"]) == 4000


def test_uploads_larger_than_nginx_default_reach_odoo(proxy):
    body = os.urandom(5 * 1024 * 1024)  # nginx refuses more than 1 MB by default
    answer = requests.post(proxy.url + "/web/binary/upload_attachment", data=body, timeout=30)
    assert answer.status_code == 200 and answer.json()["received"] == len(body)


def test_websocket_goes_to_the_gevent_port(proxy):
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(
            (
                f"GET /websocket?version=18.0 HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: http://127.0.0.1:{proxy.port}\r\n\r\n"
            ).encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(4096)
            assert chunk, f"connection closed after {reply!r}"
            reply += chunk
        head, _, rest = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest())
        assert b"Sec-WebSocket-Accept: " + expected in head
        sock.sendall(b"frame bytes")
        while len(rest) < len(b"echo:frame bytes"):
            chunk = sock.recv(4096)
            assert chunk, f"connection closed after {rest!r}"
            rest += chunk
        assert rest == b"echo:frame bytes"
    request_line, headers = proxy.websocket.handshakes[-1]
    assert request_line == "GET /websocket?version=18.0 HTTP/1.1"
    assert headers["upgrade"] == "websocket" and headers["connection"].lower() == "upgrade"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{proxy.port}"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-for"] == headers["x-real-ip"] == "127.0.0.1"
    assert headers["sec-websocket-key"] == key
    assert headers["origin"] == f"http://127.0.0.1:{proxy.port}"


def test_x_accel_redirect_streams_the_object_from_the_store(proxy):
    proxy.store.requests.clear()
    answer = _get(
        proxy,
        "/web/content/42?download=true",
        headers={"Cookie": "session_id=the-user-session", "Authorization": "Basic eDp5"},
    )
    assert answer.status_code == 200
    assert answer.content == proxy.store.object_body
    # Odoo's headers win over the store's, and the store's internals stay hidden
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert answer.headers["Content-Disposition"] == (
        "attachment; filename*=UTF-8''report%20final.txt"
    )
    assert answer.headers["Cache-Control"] == "private, no-store"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Security-Policy"] == "default-src 'none'"
    for hidden in ("X-Accel-Redirect", "X-Amz-Request-Id", "Set-Cookie"):
        assert hidden not in answer.headers
    # the store got the presigned URL as Odoo made it, and nothing of the browser's
    [(path, headers)] = proxy.store.requests
    assert path == proxy.accel_target.partition(str(proxy.store.server_address[1]))[2]
    assert headers["Host"] == f"127.0.0.1:{proxy.store.server_address[1]}"
    assert not {"Cookie", "Authorization", "X-Forwarded-For"} & set(headers)


def test_x_accel_redirect_passes_ranges_and_missing_objects(proxy):
    ranged = _get(proxy, "/web/content/42", headers={"Range": "bytes=10-19"})
    assert proxy.store.requests[-1][1]["Range"] == "bytes=10-19"
    assert ranged.status_code == 206
    assert ranged.headers["Content-Range"] == f"bytes 10-19/{len(proxy.store.object_body)}"
    assert ranged.content == proxy.store.object_body[10:20]
    backend = proxy.backends[0]
    good = backend.accel_target
    try:
        for server in proxy.backends:
            server.accel_target = good.replace("abc%20def", "missing")
        missing = _get(proxy, "/web/content/43")
    finally:
        for server in proxy.backends:
            server.accel_target = good
    assert missing.status_code == 404 and missing.content != b""


def test_the_object_storage_location_is_internal(proxy):
    proxy.store.requests.clear()
    direct = _get(proxy, f"{ACCEL_PREFIX}{proxy.accel_target}")
    assert direct.status_code == 404
    assert proxy.store.requests == []
