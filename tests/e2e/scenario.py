"""A user's day on the stateless platform, through nginx, then the proof.

    .venv/bin/python -m tests.e2e.scenario [--keep] [--workdir DIR]

Starts the platform of ``tests/e2e/stack.py`` (two prefork Odoo 18 processes with the
suite in ``--load``, each with its own empty data dir, behind nginx, on one database
through the PostgreSQL primary and its streaming replica, Redis sessions, attachments
in the Swift server's S3 API), then plays the day in order:

login (and the web client page, its assets, a cached static file); attachments (a small
image kept in the database, a large PDF in the store); downloads through both processes;
the install of a module that writes files while it is installed; a restart of one
process while the user works; the other killed in the middle of a request; a device
revoked; metrics (statsd, Prometheus), the Grafana dashboard's queries on a real
Prometheus server that scraped both processes all day (``prometheus.py``), and JSON logs.
Each step prints PASS or FAIL and what it saw. Then the proof: no filestore file and no
session file in any data dir; every attachment's object exists and matches its
checksum; the replica served reads; no session id in any log. Ends with ``e2e: N
passed, N failed``; exit 1 on any failure.

Skips (exit 0, saying so loudly) when there is no Odoo 18 on the machine or when it
cannot run the replica (not root, Debian packages missing).
"""

import argparse
import base64
import hashlib
import json
import random
import re
import shutil
import struct
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zlib
from pathlib import Path

import requests

if __package__ in (None, ""):  # run as a file: import the package of this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "tests.e2e"

from stateless_odoo.attachments.stores import AttachmentStores, is_object_url
from stateless_odoo.testing import ws_close_code, ws_open, ws_send

from .prometheus import PrometheusServer
from .stack import ADMIN, Stack, StackError, Unavailable

TIMEOUT = 60
PHONE_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
DESKTOP_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"


class RpcError(Exception):
    def __init__(self, error):
        data = error.get("data") or {}
        super().__init__(f"{data.get('name') or error.get('message')}: {data.get('message')}")
        self.name = data.get("name", "")


class User:
    """A browser: a cookie jar, a user agent, JSON-RPC the way the web client does."""

    def __init__(self, url, agent):
        self.url = url
        self.http = requests.Session()
        self.http.headers["User-Agent"] = agent

    @property
    def sid(self):
        return self.http.cookies.get("session_id")

    def rpc(self, path, params=None, url=None):
        response = self.http.post(
            f"{url or self.url}{path}",
            json={"jsonrpc": "2.0", "method": "call", "id": 1, "params": params or {}},
            timeout=TIMEOUT,
        )
        response.raise_for_status()
        answer = response.json()
        if "error" in answer:
            raise RpcError(answer["error"])
        return answer["result"]

    def call(self, model, method, *args, url=None, **kwargs):
        return self.rpc(
            f"/web/dataset/call_kw/{model}/{method}",
            {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
            url=url,
        )

    def button(self, model, method, ids):
        return self.rpc(
            "/web/dataset/call_button",
            {"model": model, "method": method, "args": [ids], "kwargs": {}},
        )

    def login(self, db, login, password):
        return self.rpc(
            "/web/session/authenticate", {"db": db, "login": login, "password": password}
        )

    def get(self, path, url=None, **kwargs):
        kwargs.setdefault("timeout", TIMEOUT)
        return self.http.get(f"{url or self.url}{path}", **kwargs)


def png(width, height, seed):
    """A valid RGB PNG of noise (Odoo reads images with PIL: it must be a real one)."""
    rng = random.Random(seed)
    rows = b"".join(b"\0" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def sha1(data):
    return hashlib.sha1(data).hexdigest()


class Day:
    """The scenario's state and steps; ``run()`` plays them in order."""

    def __init__(self, stack, prometheus=None):
        self.stack = stack
        self.prometheus = prometheus  # a PrometheusServer scraping the processes all day
        self.results = []  # (name, ok, detail)
        self.proof = []  # lines of the proof
        self.users = {}
        self.attachments = {}  # name -> (id, content)

    # -------------------------------------------------------------- helpers --
    def check(self, condition, message):
        if not condition:
            raise AssertionError(message)

    def step(self, name, function):
        started = time.monotonic()
        try:
            detail = function() or ""
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, AssertionError):
                detail += "\n" + traceback.format_exc(limit=6)
            self.results.append((name, False, detail))
            print(f"FAIL {name} ({time.monotonic() - started:.1f} s)\n     {detail}", flush=True)
            return
        self.results.append((name, True, detail))
        print(f"PASS {name} ({time.monotonic() - started:.1f} s): {detail}", flush=True)

    def access_lines(self, start=0):
        """nginx's access log from line ``start``: (request line, status, upstreams)."""
        lines = []
        pattern = re.compile(r'"(\S+ \S+) [^"]*" (\d{3}) .* upstream=(.*?) upstream_status=')
        for line in self.stack.nginx_access_log()[start:]:
            match = pattern.search(line)
            if match:
                request, status, upstream = match.groups()
                lines.append((request, int(status), [u.strip() for u in upstream.split(":")]))
        return lines

    def served_by(self, upstream_tokens):
        """Indices of the Odoo processes among the upstream addresses of a line."""
        ports = {str(p.port): i for i, p in enumerate(self.stack.processes)}
        return {ports[token] for token in upstream_tokens if token in ports}

    def download(self, user, path, expected, attempts=40):
        """GET ``path`` until it answers 200 (the replica may lag a write by a few
        milliseconds: Odoo then answers 404) and check the body's checksum."""
        for _ in range(attempts):
            response = user.get(path)
            if response.status_code == 200:
                break
            time.sleep(0.25)
        self.check(response.status_code == 200, f"{path}: {response.status_code}")
        self.check(
            sha1(response.content) == sha1(expected),
            f"{path}: {len(response.content)} bytes that do not match the upload"
            f" ({len(expected)} bytes)",
        )
        return response

    # ---------------------------------------------------------------- steps --
    def login(self):
        stack = self.stack
        desk = self.users["desk"] = User(stack.url, DESKTOP_AGENT)
        phone = self.users["phone"] = User(stack.url, PHONE_AGENT)
        info = desk.login(stack.db, *ADMIN)
        self.uid = info["uid"]
        self.check(self.uid and phone.login(stack.db, *ADMIN)["uid"] == self.uid, "no uid")
        self.check(desk.sid != phone.sid, "two logins, one session")
        page = desk.get("/odoo")
        self.check(page.status_code == 200 and "odoo.__session_info__" in page.text,
                   f"/odoo: {page.status_code}")  # fmt: skip
        bundle = re.search(r'src="(/web/assets/[^"]+\.js)"', page.text)
        self.check(bundle, "no script bundle in the web client's page")
        asset = desk.get(bundle.group(1), headers={"Accept-Encoding": "gzip"})
        first = asset.status_code
        if first == 400:
            # Odoo 18 with a replica: /web/assets is a read-only route; a missing bundle
            # is generated and committed on the primary, then read on the replica,
            # which may not have it yet (MissingError, 400). The next request has it.
            time.sleep(0.5)
            asset = desk.get(bundle.group(1), headers={"Accept-Encoding": "gzip"})
        self.check(asset.status_code == 200, f"{bundle.group(1)}: {first}, {asset.status_code}")
        self.check(asset.headers.get("Content-Encoding") == "gzip", "assets not compressed")
        static = "/web/static/img/favicon.ico"
        cache = [desk.get(static).headers.get("X-Cache-Status") for _ in range(2)]
        self.check(cache[1] == "HIT", f"{static}: X-Cache-Status {cache}")
        return (
            f"uid {self.uid} on two devices; /odoo and {len(asset.content)} bytes of"
            f" JS bundle (gzip{', 400 first: replica lag' if first == 400 else ''});"
            f" {static} cache {cache[0]} then {cache[1]}"
        )

    def create_attachments(self):
        desk = self.users["desk"]
        partner = desk.call("res.partner", "create", [{"name": "E2E Customer"}])[0]
        self.partner = partner
        small = png(48, 48, seed=1)
        large = b"%PDF-1.4\n" + random.Random(2).randbytes(3 * 1024 * 1024) + b"\n%%EOF\n"
        for name, content in (("photo.png", small), ("contract.pdf", large)):
            ids = desk.call(
                "ir.attachment", "create",
                [{"name": name, "datas": base64.b64encode(content).decode(),
                  "res_model": "res.partner", "res_id": partner}],
            )  # fmt: skip
            self.attachments[name] = (ids[0], content)
        rows = dict(
            (name, (fname, in_db, mimetype))
            for name, fname, in_db, mimetype in self.stack.sql(
                "SELECT name, store_fname, db_datas IS NOT NULL, mimetype FROM ir_attachment"
                " WHERE res_model = 'res.partner' AND res_id = %s",
                (partner,),
            )
        )
        photo, contract = rows["photo.png"], rows["contract.pdf"]
        self.check(photo[0] is None and photo[1], f"photo.png not kept in the database: {photo}")
        prefix = f"s3://{self.stack.container}/"
        self.check(
            contract[0] and contract[0].startswith(prefix) and not contract[1],
            f"contract.pdf not in the store: {contract}",
        )
        return (
            f"photo.png ({len(small)} B, {photo[2]}) in the database; contract.pdf"
            f" ({len(large) // 1024} KiB, {contract[2]}) at {contract[0]}"
        )

    def downloads(self):
        desk = self.users["desk"]
        start = len(self.stack.nginx_access_log())
        stats_before = self.replica_reads()
        for _ in range(3):
            for _name, (ident, content) in self.attachments.items():
                self.download(desk, f"/web/content/{ident}?download=true", content)
            self.download(desk, f"/web/image/{self.attachments['photo.png'][0]}",
                          self.attachments["photo.png"][1])  # fmt: skip
        lines = [line for line in self.access_lines(start) if "/web/" in line[0]]
        served = {}
        store_port = self.stack.services["TEST_S3_ENDPOINT"].rsplit(":", 1)[-1]
        from_store = 0
        for _request, status, upstreams in lines:
            if status == 200:
                for index in self.served_by(upstreams):
                    served.setdefault(index, 0)
                    served[index] += 1
                from_store += store_port in upstreams
        self.check(len(served) == len(self.stack.processes), f"served by {served} only")
        contract_id = self.attachments["contract.pdf"][0]
        via_store = [u for r, s, u in lines if f"/web/content/{contract_id}" in r]
        self.check(
            all(store_port in u for u in via_store),
            f"contract.pdf not fetched from the store by nginx (X-Accel-Redirect): {via_store}",
        )
        self.replica_sample = self.replica_connections()
        reads = self.replica_reads() - stats_before
        self.check(reads > 0, "no transaction on the replica during the downloads")
        self.replica_line = (
            f"replica: {reads} transactions on {self.stack.db} during the downloads;"
            f" Odoo connections there: {self.replica_sample}"
        )
        return (
            f"{len(lines)} downloads, checksums equal; answered by process"
            f" {', '.join(f'odoo{i + 1}: {n}' for i, n in sorted(served.items()))};"
            f" {from_store} streamed by nginx from the store (X-Accel-Redirect);"
            f" replica: {reads} transactions"
        )

    def replica_reads(self):
        """Transactions of the database on the replica (its own statistics)."""
        rows = self.stack.sql(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (self.stack.db,), replica=True, dbname="postgres",
        )  # fmt: skip
        return rows[0][0] if rows else 0

    def replica_connections(self):
        """Which Odoo processes hold connections to the replica: {odooN: count}."""
        rows = self.stack.sql(
            "SELECT application_name FROM pg_stat_activity WHERE datname = %s",
            (self.stack.db,), replica=True, dbname="postgres",
        )  # fmt: skip
        counts = {}
        for (name,) in rows:
            index = self.process_of(name)
            if index is not None:
                counts[f"odoo{index + 1}"] = counts.get(f"odoo{index + 1}", 0) + 1
        return counts

    def process_of(self, application_name):
        match = re.fullmatch(r"odoo-(\d+)", application_name or "")
        if not match:
            return None
        for index, process in enumerate(self.stack.processes):
            if int(match.group(1)) in process.group_pids():
                return index
        return None

    def install_module(self):
        desk = self.users["desk"]
        ids = desk.call("ir.module.module", "search", [("name", "=", "e2e_day")])
        self.check(ids, "module e2e_day is not in the module list")
        desk.button("ir.module.module", "button_immediate_install", ids)
        state = self.stack.sql("SELECT state FROM ir_module_module WHERE name = 'e2e_day'")
        self.check(state == [("installed",)], f"e2e_day: {state}")
        rows = self.stack.sql(
            "SELECT name, store_fname, file_size FROM ir_attachment"
            " WHERE name IN ('e2e_day_manual.txt', 'e2e_day_report.pdf') ORDER BY name"
        )
        self.check(len(rows) == 2, f"install-time attachments: {rows}")
        prefix = f"s3://{self.stack.container}/"
        for name, fname, _size in rows:
            self.check(fname and fname.startswith(prefix), f"{name} is not in the store: {fname}")
        local = self.local_files()
        self.check(not local, f"files left on local disk: {local}")
        # the other process reloads its registry on its next request
        for _ in range(4):
            desk.call("res.partner", "search_count", [])
        return ", ".join(f"{name} ({size} B) at {fname}" for name, fname, size in rows)

    def restart_while_working(self):
        desk = self.users["desk"]
        contract_id, contract = self.attachments["contract.pdf"]
        outcomes, stop = [], threading.Event()

        def work():
            while not stop.is_set():
                try:
                    desk.call("res.partner", "read", [self.partner], ["name"])
                    response = desk.get(f"/web/content/{contract_id}")
                    ok = response.status_code == 200 and sha1(response.content) == sha1(contract)
                    outcomes.append(ok or f"download {response.status_code}")
                except Exception as exc:
                    outcomes.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.05)

        worker = threading.Thread(target=work)
        start = len(self.stack.nginx_access_log())
        worker.start()
        try:
            began = time.monotonic()
            # a rolling restart as a hosting team does it: drain the process first
            # (nginx reloads without it; its requests in progress end), restart it,
            # put it back. Odoo's own graceful stop closes its listening socket only
            # when its last worker exits: connections queued meanwhile are reset, and
            # nginx does not resend a POST (measured: 1 in 44 user requests failed).
            self.stack.route(range(1, len(self.stack.processes)))
            self.stack.processes[0].restart()
            self.stack.route()
            took = time.monotonic() - began
            time.sleep(1)
        finally:
            stop.set()
            worker.join()
        failures = [o for o in outcomes if o is not True]
        self.check(not failures, f"{len(failures)} of {len(outcomes)} failed: {failures[:3]}")
        # nginx sends requests to the restarted process again (after fail_timeout) and
        # it serves the session it never saw: the session is in Redis
        back = time.monotonic()
        while time.monotonic() - back < 30:
            mark = len(self.stack.nginx_access_log())
            desk.call("res.partner", "read", [self.partner], ["name"])
            if 0 in {i for line in self.access_lines(mark) for i in self.served_by(line[2])}:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("nginx sent nothing to odoo1 for 30 s after its restart")
        info = desk.rpc("/web/session/get_session_info", url=self.stack.processes[0].url)
        self.check(info["uid"] == self.uid, "the restarted process does not know the session")
        served = set()
        for _request, _status, upstreams in self.access_lines(start):
            served |= self.served_by(upstreams)
        return (
            f"odoo1 drained, restarted, put back in {took:.1f} s while the user worked:"
            f" {len(outcomes)}"
            f" read+download rounds, 0 failed (odoo2 answered them); nginx sent the"
            f" user's session to odoo1 again {time.monotonic() - back:.1f} s later; processes"
            f" that answered: {sorted(f'odoo{i + 1}' for i in served)}"
        )

    def kill_mid_request(self):
        stack, desk = self.stack, self.users["desk"]
        results, threads, names = {}, [], []

        def slow(name):
            try:
                results[name] = desk.call("res.partner", "e2e_day_slow", name, 15)
            except Exception as exc:  # what the killed process's request gets
                results[name] = exc

        # requests that take 15 s, through nginx, until one waits in each process
        # (or three are on their way)
        busy = {}
        for _ in range(3):
            name = f"e2e_slow_{uuid.uuid4().hex[:8]}"
            names.append(name)
            thread = threading.Thread(target=slow, args=(name,))
            thread.start()
            threads.append(thread)
            busy = self.sleeping_processes(len(names))
            if len(busy) == len(stack.processes):
                break
        self.check(busy, "no slow request is running")
        # the other process than the one restarted before, when a request reached it
        victim = 1 if 1 in busy else min(busy)
        process = stack.processes[victim]
        try:
            process.kill()
            killed_at = time.monotonic()
            self.check(not process.listening(), f"{process.name} still listens")
            # the user goes on working: the other process answers (nginx skips the
            # dead one: connection refused)
            for _ in range(6):
                desk.call("res.partner", "search_count", [])
            for thread in threads:
                thread.join(60)
        finally:
            if process.pid is None:
                process.start()
        failed = {n: r for n, r in results.items() if isinstance(r, Exception)}
        done = {n: r for n, r in results.items() if not isinstance(r, Exception)}
        self.check(failed, "no request failed although its process was killed")
        rows = dict(stack.sql("SELECT name, id FROM ir_attachment WHERE name = ANY(%s)", (names,)))
        self.check(
            not set(failed) & set(rows),
            f"rows of killed requests committed: {set(failed) & set(rows)}",
        )
        self.check(set(done) <= set(rows), "a finished request's attachment is missing")
        info = desk.rpc("/web/session/get_session_info", url=process.url)
        self.check(info["uid"] == self.uid, f"the session is lost on the restarted {process.name}")
        where = ", ".join(f"odoo{i + 1}: {n}" for i, n in sorted(busy.items()))
        return (
            f"{process.name} killed (SIGKILL to its process group) in the middle of"
            f" {len(failed)} request(s) (slow requests sleeping in PostgreSQL: {where}):"
            f" they failed ({type(next(iter(failed.values()))).__name__}), nothing of them"
            f" committed; {len(done)} elsewhere finished; 6 requests right after the kill"
            f" answered; {process.name} back after {time.monotonic() - killed_at:.1f} s"
            " with the user's session"
        )

    def sleeping_processes(self, expected, timeout=10):
        """{process index: count} of the requests waiting in pg_sleep, once
        ``expected`` of them are (or after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.stack.sql(
                "SELECT application_name FROM pg_stat_activity WHERE datname = %s"
                " AND state = 'active' AND query LIKE 'SELECT pg_sleep(%%'"
                " AND pid <> pg_backend_pid()",
                (self.stack.db,),
            )
            busy = {}
            for (name,) in rows:
                index = self.process_of(name)
                if index is not None:
                    busy[index] = busy.get(index, 0) + 1
            if sum(busy.values()) >= expected or time.monotonic() > deadline:
                return busy
            time.sleep(0.1)

    def revoke_device(self):
        stack, desk, phone = self.stack, self.users["desk"], self.users["phone"]
        identifier = phone.sid[:42]
        devices = []
        for _ in range(40):
            phone.rpc("/web/session/get_session_info")
            devices = desk.call("res.device", "search", [("session_identifier", "=", identifier)])
            if devices:
                break
            time.sleep(0.25)
        self.check(devices, "the phone's device is not listed")
        # both devices have the web client's websocket open, through nginx to a gevent
        # process (each reads the session from Redis on every message)
        subscribe = {"event_name": "subscribe", "data": {"channels": [], "last": 0}}
        sockets = {name: ws_open(stack.nginx_port, user.sid) for name, user in
                   (("phone", phone), ("desk", desk))}  # fmt: skip
        for sock in sockets.values():
            ws_send(sock, subscribe)
        opened = {name: ws_close_code(sock, timeout=2) for name, sock in sockets.items()}
        self.check(opened == {"phone": None, "desk": None}, f"websockets closed: {opened}")
        action = desk.button("res.device", "revoke", devices)
        if isinstance(action, dict) and action.get("res_model") == "res.users.identitycheck":
            # the identity check of Odoo's security preferences: the password again
            desk.call("res.users.identitycheck", "write", [action["res_id"]],
                      {"password": ADMIN[1]})  # fmt: skip
            desk.button("res.users.identitycheck", "run_check", [action["res_id"]])
        refused = []
        for process in stack.processes:
            try:
                phone.rpc("/web/session/get_session_info", url=process.url)
            except RpcError as exc:
                refused.append(exc.name)
            except requests.HTTPError as exc:
                refused.append(str(exc))
            info = desk.rpc("/web/session/get_session_info", url=process.url)
            self.check(info["uid"] == self.uid, f"{process.name}: the desk's session is gone")
        self.check(
            len(refused) == len(stack.processes),
            f"the revoked session still works on {len(stack.processes) - len(refused)} process(es)",
        )
        for sock in sockets.values():
            ws_send(sock, subscribe)
        closed = {name: ws_close_code(sock, timeout=10 if name == "phone" else 2)
                  for name, sock in sockets.items()}  # fmt: skip
        for sock in sockets.values():
            sock.close()
        self.check(closed == {"phone": 4001, "desk": None}, f"websockets after: {closed}")
        return (
            f"phone's device revoked from the desk (identity check passed); refused by every"
            f" process: {refused[0]}; its websocket through nginx closed with 4001"
            " (session expired), the desk's stays open"
        )

    def metrics(self):
        stack = self.stack
        name = f"odoo.http.request.{stack.client}.{stack.environment}:"
        timers = [line for line in stack.statsd.lines if line.startswith(name)]
        self.check(timers, f"no {name} timer among {len(stack.statsd.lines)} statsd lines")
        names = {line.split(":", 1)[0] for line in stack.statsd.lines}
        token = {"Authorization": f"Bearer {stack.prometheus_token}"}
        hidden = [requests.get(f"{stack.url}{path}", headers=token, timeout=TIMEOUT)
                  for path in ("/metrics", "/web/health/deep")]  # fmt: skip
        self.check(all(r.status_code == 404 for r in hidden),
                   f"per-process endpoints through nginx: {hidden}")  # fmt: skip
        denied = requests.get(f"{stack.processes[0].url}/metrics", timeout=TIMEOUT)
        self.check(denied.status_code in (401, 403), f"/metrics without token: {denied}")
        self.check("Set-Cookie" not in denied.headers, "/metrics made a session")
        counts = []
        for process in stack.processes:
            scrape = requests.get(f"{process.url}/metrics", headers=token, timeout=TIMEOUT)
            self.check(scrape.status_code == 200, f"{process.name} /metrics: {scrape}")
            total = sum(
                float(line.rsplit(" ", 1)[1])
                for line in scrape.text.splitlines()
                if line.startswith("odoo_http_requests_total{")
            )
            counts.append(total)
        self.check("odoo_http_request_duration_seconds_bucket" in scrape.text, "no histogram")
        self.check(all(counts), f"a process counted no request: {counts}")
        return (
            f"statsd: {len(stack.statsd.lines)} lines, {len(names)} names, {len(timers)}"
            f" request timers ({name[:-1]}); Prometheus: requests counted by odoo1 / odoo2:"
            f" {' / '.join(f'{c:.0f}' for c in counts)}; a scrape without the token refused;"
            " /metrics and /web/health/deep not served through nginx (404)"
        )

    def prometheus_dashboard(self):
        """Both processes up in a real Prometheus, every query of the Grafana dashboard
        answered from what it scraped during the day, the alert rules quiet."""
        return self.prometheus.check_dashboard()

    def json_logs(self):
        desk = self.users["desk"]
        response = desk.http.post(
            f"{self.stack.url}/web/dataset/call_kw/res.partner/search_count",
            json={"jsonrpc": "2.0", "method": "call", "params": {
                "model": "res.partner", "method": "search_count", "args": [[]], "kwargs": {}}},
            timeout=TIMEOUT,
        )  # fmt: skip
        request_id = response.headers.get("X-Request-ID")
        self.check(request_id, "no X-Request-ID in the answer")
        time.sleep(0.5)
        parsed, plain, found = 0, [], []
        for process in self.stack.processes:
            for line in process.log_lines():
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if isinstance(record, dict):
                    parsed += 1
                    if request_id in line:
                        found.append((process.name, record))
                    continue
                if line.strip():  # from each process's first line (the start-up hook)
                    plain.append(f"{process.name}: {line[:160]}")
        self.check(not plain, f"{len(plain)} line(s) that are not JSON: {plain[:3]}")
        self.check(found, f"request {request_id} is in no process's log")
        access = [r for _n, r in found if r.get("http_status")]
        record = found[-1][1]
        self.check(record.get("dbname") == self.stack.db, f"dbname: {record}")
        self.check(access, f"no access line for {request_id}: {[r for _n, r in found]}")
        return (
            f"{parsed} JSON lines, from each process's first, none plain;"
            f" request {request_id} (nginx's"
            f" id) in {found[0][0]}'s log: {len(found)} line(s), access line"
            f" {json.dumps({k: access[0].get(f'http_{k}') for k in ('method', 'path', 'status')})}"
        )

    # ---------------------------------------------------------------- proof --
    def local_files(self):
        """Files under filestore/ or sessions/ of any process's data dir."""
        found = []
        for process in self.stack.processes:
            for sub in ("filestore", "sessions"):
                root = process.data_dir / sub
                found += [str(p) for p in root.rglob("*") if p.is_file()]
        return found

    def prove_no_local_state(self):
        local = self.local_files()
        self.check(not local, f"{len(local)} file(s) on local disk: {local[:5]}")
        setup = self.stack.workdir / "setup-data" / "filestore"
        left = [str(p) for p in setup.rglob("*") if p.is_file()] if setup.exists() else []
        self.check(not left, f"the install's filestore was not emptied: {left[:5]}")
        sizes = {}
        for process in self.stack.processes:
            sizes[process.name] = sum(1 for p in process.data_dir.rglob("*") if p.is_file())
        self.proof.append(
            "data dirs: no filestore file, no session file"
            f" (files in each data dir: {sizes}); the install's filestore emptied by"
            " the song's migration"
        )
        return self.proof[-1]

    def prove_objects(self):
        rows = self.stack.sql(
            "SELECT id, name, store_fname, checksum, file_size FROM ir_attachment"
            " WHERE store_fname IS NOT NULL ORDER BY id"
        )
        in_db = self.stack.sql("SELECT count(*) FROM ir_attachment WHERE store_fname IS NULL")[0][0]
        stores = AttachmentStores(self.stack.kind, self.stack.db, self.stack.env)
        bad, total = [], 0
        for ident, name, fname, checksum, size in rows:
            if not is_object_url(fname):
                bad.append(f"#{ident} {name}: {fname} is not an object")
                continue
            store, key = stores.locate(fname)
            try:
                data = store.get_bytes(key)
            except Exception as exc:
                bad.append(f"#{ident} {name}: {fname}: {exc}")
                continue
            if sha1(data) != checksum or len(data) != size:
                bad.append(f"#{ident} {name}: {fname} has {len(data)} B, sha1 {sha1(data)}")
            total += len(data)
        self.check(rows, "no attachment in the store")
        self.check(not bad, f"{len(bad)} attachment(s) wrong: {bad[:5]}")
        self.proof.append(
            f"objects: {len(rows)} attachments in {self.stack.container}, every object"
            f" present with its checksum ({total / 1048576:.1f} MiB read back);"
            f" {in_db} kept in the database"
        )
        return self.proof[-1]

    def prove_replica(self):
        self.check(
            len(self.replica_sample) == len(self.stack.processes),
            f"not every process used the replica: {self.replica_sample}",
        )
        self.proof.append(self.replica_line)
        return self.replica_line

    def prove_no_secret_in_logs(self):
        secrets = {}
        for name, user in self.users.items():
            secrets[f"{name}'s session id"] = user.sid
            secrets[f"{name}'s session key half"] = user.sid[42:]
        files = [p.log_path for p in self.stack.processes]
        files += sorted(self.stack.workdir.glob("*.log"))
        files += sorted((self.stack.nginx_prefix / "logs").glob("*.log"))
        leaks = []
        for path in set(files):
            text = Path(path).read_text(errors="replace")
            leaks += [f"{label} in {path}" for label, value in secrets.items() if value in text]
        self.check(not leaks, f"secrets in logs: {leaks}")
        self.proof.append(f"logs: no session id in {len(set(files))} log files")
        return self.proof[-1]

    def run(self):
        self.step("log in (two devices), web client page, assets, static cache", self.login)
        self.step("attachments: small image in the database, large PDF in the store",
                  self.create_attachments)  # fmt: skip
        self.step("downloads through both processes and the replica", self.downloads)
        self.step("install a module that writes files at install time", self.install_module)
        self.step("rolling restart of odoo1 while the user works", self.restart_while_working)
        self.step("kill the other process in the middle of a request", self.kill_mid_request)
        self.step("revoke a device", self.revoke_device)
        self.step("metrics: statsd and Prometheus", self.metrics)
        self.step("Prometheus server: targets up, Grafana queries, alert rules",
                  self.prometheus_dashboard)  # fmt: skip
        self.step("JSON logs with the request id", self.json_logs)
        self.step("proof: nothing on local disk", self.prove_no_local_state)
        self.step("proof: every object matches its checksum", self.prove_objects)
        self.step("proof: the replica served reads", self.prove_replica)
        self.step("proof: no session id in any log", self.prove_no_secret_in_logs)


def banner(text):
    line = "!" * 78
    print(f"\n{line}\n!! {text}\n{line}\n", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep database, bucket, logs")
    parser.add_argument("--workdir", help="where logs and data dirs go (default: a temp dir)")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="stateless-e2e-"))
    started = time.monotonic()
    print(f"e2e: scenario in {workdir}", flush=True)
    try:
        with Stack(workdir, keep=args.keep) as stack, PrometheusServer(stack) as prometheus:
            print(f"e2e: Odoo {stack.odoo_version} from {stack.odoo_root}; database"
                  f" {stack.db}; bucket {stack.container}; up in"
                  f" {time.monotonic() - started:.0f} s", flush=True)  # fmt: skip
            day = Day(stack, prometheus)
            day.run()
    except Unavailable as exc:
        banner(f"E2E SCENARIO SKIPPED: {exc}")
        return 0
    except StackError as exc:
        print(f"e2e: FAILED: the platform did not come up: {exc}", flush=True)
        print("e2e: 0 passed, 1 failed")
        return 1
    passed = sum(1 for _n, ok, _d in day.results if ok)
    failed = len(day.results) - passed
    if args.keep or failed:
        print(f"e2e: logs and data dirs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print("\ne2e: proof")
    for line in day.proof:
        print(f"  - {line}")
    print(f"\ne2e: the day took {time.monotonic() - started:.0f} s")
    print(f"e2e: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
