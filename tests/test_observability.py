"""Logs, request ids, statsd and the deep health check, over real sockets.

The request observer runs in front of a real WSGI server (wsgiref, on loopback) and is
called by a real HTTP client; statsd packets are read from a real UDP socket; health
checks talk to the harness's real PostgreSQL, Redis and Swift.
"""

import contextlib
import io
import json
import logging
import logging.handlers
import os
import re
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from wsgiref.simple_server import WSGIRequestHandler, make_server

import psycopg2
import pytest
import redis
import requests
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from redis.backoff import NoBackoff
from redis.retry import Retry

from stateless_odoo.errors import ConfigError
from stateless_odoo.observability import events, jsonlog, observe
from stateless_odoo.observability.access import Access
from stateless_odoo.observability.health import HealthCheck
from stateless_odoo.observability.statsd_metrics import StatsdSettings, StatsdSink, name_part

from .conftest import unique_name


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(app):
    """``app`` on a loopback port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def hello(environ, start_response):
    """A stand-in application that logs a line and counts SQL the way Odoo does."""
    thread = threading.current_thread()
    thread.query_count = 3
    thread.query_time = 0.004
    logging.getLogger("app").info("serving %s", environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def make_record(msg, *args, name="app", level=logging.INFO, exc_info=None, **extra):
    record = logging.LogRecord(name, level, __file__, 1, msg, args, exc_info)
    record.__dict__.update(extra)
    return record


# -- redaction ----------------------------------------------------------------------------

SECRET = "Zk9dummysecretvalue"
SID = "A" * 40 + "b" * 44  # 84 characters, an Odoo session id


@pytest.mark.parametrize(
    "text",
    [
        f"login failed {{'login': 'admin', 'password': '{SECRET}'}}",
        f'{{"password": "{SECRET}", "db": "x"}}',
        f"GET /web/content/12?access_token={SECRET}&download=1",
        f"GET /mail/view?token={SECRET}",
        f"Cookie: session_id={SECRET}; frontend_lang=en_US",
        f"headers {{'Authorization': 'Bearer {SECRET}'}}",
        f"Authorization: Basic {SECRET}",
        f"api_key={SECRET}",
        f"session {SID} expired",
        f"AWS_SECRET_ACCESS_KEY={SECRET}",
    ],
)
def test_redact_masks_secrets(text):
    redacted = jsonlog.redact(text)
    assert SECRET not in redacted and SID not in redacted
    assert "***" in redacted


SIGV4 = (
    "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261204/ch-dk-2/s3/aws4_request,"
    f" SignedHeaders=host;x-amz-date, Signature={SECRET}"
)


@pytest.mark.parametrize(
    "text",
    [
        f"login {{'login': 'admin', 'password': 'correct horse {SECRET}'}}",
        f'password="p&{SECRET}"',
        f"db_password={SECRET} smtp_pass={SECRET}",
        f"connecting to postgresql://odoo:{SECRET}@db.example:5432/acme",
        f"headers {{'Authorization': '{SIGV4}'}}",
        f"Authorization: {SIGV4}",
        f"GET https://sos.exo.io/b/k?X-Amz-Credential=A&X-Amz-Signature={SECRET}&X-Amz-Date=1",
        f"GET https://swift/v1/AUTH_x/c/k?temp_url_sig={SECRET}&temp_url_expires=1",
    ],
)
def test_redact_masks_whole_values_of_every_form(text):
    redacted = jsonlog.redact(text)
    assert SECRET not in redacted, redacted
    assert "horse" not in redacted and "AKIAEXAMPLE" not in redacted


_SECRET_TEXT = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="'\"\\"),
    min_size=8,
    max_size=40,
).filter(lambda text: "***" not in text)
_KEY = st.sampled_from(
    ["password", "db_password", "smtp_pass", "api_key", "access_token", "secret",
     "X-Amz-Signature", "temp_url_sig", "session_id", "AWS_SECRET_ACCESS_KEY"]
)  # fmt: skip
_FORMS = [
    "{key}={secret}",
    "{key}: {secret}",
    "'{key}': '{secret} and more words'",
    '"{key}": "{secret}"',
    "{{'{key}': b'{secret}'}}",
    "Authorization: Bearer {secret}",
    "Authorization: AWS4-HMAC-SHA256 Credential=x/y, Signature={secret}",
    "https://user:{secret}@host.example/path",
    "GET /path?a=1&{key}={secret}&b=2",
]


@settings(max_examples=300, deadline=None)
@given(key=_KEY, secret=_SECRET_TEXT, form=st.sampled_from(_FORMS))
def test_no_generated_secret_survives_in_any_form(key, secret, form):
    # a secret that is cut by a separator in an unquoted value is cut by it in the
    # program that reads it too: only its first part is the value
    unquoted = "'" not in form and '"' not in form
    value = re.split(r"[\s&,;}\])]", secret)[0] if unquoted else secret
    if form.startswith("https://"):
        assume("/" not in secret)  # a / ends a URL's authority: no password then
        value = secret
    assume(len(value) >= 6)
    line = "before " + form.format(key=key, secret=secret) + " after"
    redacted = jsonlog.redact(line)
    assert value not in redacted, (line, redacted)
    formatter = jsonlog.JsonFormatter()
    # the line's own fields ("request_id", "timestamp"...) may hold the generated text
    assume(value not in formatter.format(make_record("before after")))
    assert value not in formatter.format(make_record(line))


@pytest.mark.parametrize(
    "text",
    [
        "Job 'Mail: Email Queue Manager' (3) done in 0.012s",
        "registry loaded in 1.234s",
        "the side panel of res.partner(7,)",
        "considered sidebar tokenizer",
    ],
)
def test_redact_leaves_ordinary_lines_alone(text):
    assert jsonlog.redact(text) == text


# -- the JSON formatter -------------------------------------------------------------------


def format_json(record):
    return json.loads(jsonlog.JsonFormatter().format(record))


def test_json_line_has_the_fields_pipelines_expect():
    threading.current_thread().dbname = "prod_db"
    try:
        line = format_json(make_record("hello %s", "world", customer="acme"))
    finally:
        del threading.current_thread().dbname
    assert line["message"] == "hello world"
    assert line["level"] == "INFO" and line["severity"] == "INFO"
    assert line["logger"] == "app"
    assert line["dbname"] == "prod_db"
    assert line["request_id"] is None and line["uid"] is None
    assert line["customer"] == "acme"  # extra= fields are kept
    assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]
    assert isinstance(line["pid"], int)
    assert "perf_info" not in line


def test_timestamp_is_iso8601_utc_milliseconds_across_seconds(monkeypatch):
    # lines of one second share a cached prefix: a line of the next second, or of an
    # earlier one (another thread), must still carry its own time
    for now in (1764758400.0, 1764758400.9996, 1764758401.0005, 1764758400.5, 951825600.25):
        monkeypatch.setattr(time, "time", lambda now=now: now)
        monkeypatch.setattr(time, "time_ns", lambda now=now: int(now * 1e9))
        line = format_json(make_record("x"))
        stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
        assert line["timestamp"] == stamp[:-3] + "Z", now


def test_odoo_level_25_and_critical_map_to_severities():
    assert format_json(make_record("x", level=25))["severity"] == "INFO"
    assert format_json(make_record("x", level=logging.CRITICAL))["severity"] == "CRITICAL"


def test_exception_fields_and_redacted_traceback():
    try:
        raise ValueError(f"bad password={SECRET}")
    except ValueError:
        record = make_record("it failed", level=logging.ERROR, exc_info=sys.exc_info())
    text = jsonlog.JsonFormatter().format(record)
    assert SECRET not in text
    line = json.loads(text)
    assert line["exception_type"] == "ValueError"
    assert "password=***" in line["exception_message"]
    assert "Traceback" in line["traceback"] and "raise ValueError" in line["traceback"]


def test_secret_in_message_args_and_extras_is_redacted():
    record = make_record("params %s", {"password": SECRET}, header=f"Bearer {SECRET}")
    text = jsonlog.JsonFormatter().format(record)
    assert SECRET not in text


def test_fields_named_after_secrets_are_masked_whatever_their_value():
    logger = logging.Logger("app")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(jsonlog.JsonFormatter())
    logger.addHandler(handler)
    logger.info({"event": "login", "Password": SECRET, "count": 2})
    logger.info("reset", extra={"access_token": SECRET, "user": "bob"})
    text = stream.getvalue()
    assert SECRET not in text
    dict_line, extra_line = (json.loads(line) for line in text.splitlines())
    assert (dict_line["event"], dict_line["Password"], dict_line["count"]) == ("login", "***", 2)
    assert (extra_line["access_token"], extra_line["user"]) == ("***", "bob")


def test_lines_are_encoded_by_orjson_and_what_it_refuses_is_still_written():
    # orjson is a dependency: the fast path is the one in use
    assert jsonlog._LibraryJsonFormatter.__module__ == "pythonjsonlogger.orjson"
    line = format_json(make_record("big", huge=2**70, mixed={1: "a", "b": 2}))
    assert line["huge"] == 2**70 and line["message"] == "big"


def test_install_puts_the_formatter_on_every_root_handler():
    root = logging.Logger("root-for-test")
    stream = io.StringIO()
    handlers = [logging.StreamHandler(stream), logging.StreamHandler(io.StringIO())]
    for handler in handlers:
        root.addHandler(handler)
    assert jsonlog.install(root) == 2
    root.warning("careful %s", "now")
    line = json.loads(stream.getvalue())
    assert line["message"] == "careful now" and line["level"] == "WARNING"


# -- the request observer over real HTTP ---------------------------------------------------


@pytest.fixture
def captured_logs():
    """JSON lines of the ``app`` and ``werkzeug`` loggers."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(jsonlog.JsonFormatter())
    loggers = [logging.getLogger("app"), logging.getLogger("werkzeug")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)


def test_request_id_generated_echoed_and_on_the_log_lines(captured_logs):
    observer = observe.Observer()
    seen = []
    observer.add_listener(seen.append)
    with serving(observer.middleware(hello)) as url:
        response = requests.get(f"{url}/web/hello?password=x", timeout=5)
    rid = response.headers["X-Request-ID"]
    assert len(rid) == 32
    (line,) = [line for line in captured_logs() if line["logger"] == "app"]
    assert line["request_id"] == rid
    (info,) = seen
    assert (info.request_id, info.method, info.path, info.status) == (rid, "GET", "/web/hello", 200)
    assert info.sql_count == 3 and info.sql_time == pytest.approx(0.004)
    assert info.duration > 0


def test_incoming_request_id_is_kept_when_sane_and_replaced_when_not():
    observer = observe.Observer(observe.ObserverSettings(request_id_header="X-Correlation-ID"))
    with serving(observer.middleware(hello)) as url:
        kept = requests.get(url, headers={"X-Correlation-ID": "lb-1234.abc"}, timeout=5)
        bad = requests.get(url, headers={"X-Correlation-ID": "x" * 300}, timeout=5)
        injected = requests.get(url, headers={"X-Correlation-ID": 'a"b\\c'}, timeout=5)
    assert kept.headers["X-Correlation-ID"] == "lb-1234.abc"
    assert len(bad.headers["X-Correlation-ID"]) == 32
    assert len(injected.headers["X-Correlation-ID"]) == 32


def test_no_stale_request_id_after_the_request():
    observer = observe.Observer()
    after = []

    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"x"]

    wrapped = observer.middleware(app)
    result = wrapped({"PATH_INFO": "/a", "REQUEST_METHOD": "GET"}, lambda *a: None)
    assert observe.current() is not None  # the server has not closed the response yet
    list(result)
    result.close()
    after.append(observe.current())
    assert after == [None]
    line = json.loads(jsonlog.JsonFormatter().format(make_record("between requests")))
    assert line["request_id"] is None


def test_access_line_fields_without_query_string(captured_logs):
    observer = observe.Observer()

    def app(environ, start_response):
        thread = threading.current_thread()
        thread.query_count, thread.query_time = 7, 0.01
        start_response("201 Created", [])
        return [b"ok"]

    wrapped = observer.middleware(app)
    environ = {"PATH_INFO": "/web/image/5", "REQUEST_METHOD": "GET"}
    result = wrapped(environ, lambda *a: None)
    # what werkzeug logs once the headers are sent, before closing the response
    logging.getLogger("werkzeug").info(
        '%s - - [%s] "%s" %s %s\n'.replace("%s - - [%s] ", "127.0.0.1 - - [now] "),
        f"GET /web/image/5?access_token={SECRET} HTTP/1.1",
        "201",
        "-",
    )
    result.close()
    (line,) = captured_logs()
    assert SECRET not in json.dumps(line)
    assert "?" not in line["message"] and "GET /web/image/5 HTTP/1.1" in line["message"]
    assert line["http_method"] == "GET" and line["http_path"] == "/web/image/5"
    assert line["http_status"] == 201
    assert line["sql_count"] == 7 and line["sql_ms"] == pytest.approx(10.0)
    assert line["duration_ms"] >= 0


@pytest.mark.parametrize(
    "path, requestline",
    [
        # a session id in the path itself, on the line and in the field
        (f"/web/x/{SID}", f"GET /web/x/{SID}?token={SECRET} HTTP/1.1"),
        # werkzeug decodes the path: a space makes four parts, the query is still dropped
        ("/web/a b", f"GET /web/a b?password={SECRET} HTTP/1.1"),
    ],
)
def test_access_line_path_redacted_and_query_dropped_whatever_its_shape(
    captured_logs, path, requestline
):
    observer = observe.Observer()

    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"ok"]

    for _ in range(2):  # the second time, the path's redaction is the remembered one
        result = observer.middleware(app)({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, print)
        logging.getLogger("werkzeug").info(
            '127.0.0.1 - - [now] "%s" %s %s', requestline, "200", "-"
        )
        result.close()
    lines = captured_logs()
    varying = ("timestamp", "request_id", "duration_ms")
    first, second = ({k: v for k, v in line.items() if k not in varying} for line in lines)
    assert first == second
    text = json.dumps(lines)
    assert SECRET not in text and SID not in text and "?" not in text
    assert lines[0]["message"].startswith('127.0.0.1 - - [now] "GET /web/')
    assert lines[0]["http_path"] == jsonlog.redact(path)


def test_quiet_paths_drop_successful_access_lines_only():
    quiet = observe.QuietAccessFilter(["/web/health"])
    observer = observe.Observer()

    def answer(status):
        def app(environ, start_response):
            start_response(status, [])
            return [b""]

        return app

    for status, logged in (("200 OK", False), ("503 Service Unavailable", True)):
        result = observer.middleware(answer(status))(
            {"PATH_INFO": "/web/health", "REQUEST_METHOD": "GET"}, lambda *a: None
        )
        record = make_record(
            '"%s" %s %s', "GET /web/health HTTP/1.1", status[:3], "-", name="werkzeug"
        )
        assert quiet.filter(record) is logged
        result.close()


def test_endpoints_are_served_before_the_application():
    observer = observe.Observer()

    def metrics(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"metrics"]

    def app(environ, start_response):
        raise AssertionError("the application must not see /metrics")

    observer.add_endpoint("/metrics", metrics)
    with serving(observer.middleware(app)) as url:
        response = requests.get(f"{url}/metrics", timeout=5)
    assert response.text == "metrics" and "X-Request-ID" in response.headers


def test_a_failing_listener_never_breaks_the_request(caplog):
    observer = observe.Observer()

    def broken(info):
        raise RuntimeError("sink down")

    observer.add_listener(broken)
    observer.add_enricher(broken)
    with serving(observer.middleware(hello)) as url:
        first = requests.get(url, timeout=5)
        second = requests.get(url, timeout=5)
    assert first.status_code == second.status_code == 200
    assert [r for r in caplog.records if "failed (RuntimeError)" in r.getMessage()]


def test_websocket_handshake_ends_the_request_before_the_connection():
    observer = observe.Observer()
    seen = []
    observer.add_listener(seen.append)

    def app(environ, start_response):
        start_response("101 Switching Protocols", [])
        return [b""]

    result = observer.middleware(app)({"PATH_INFO": "/websocket"}, lambda *a: None)
    assert [(i.route_type, i.status) for i in seen] == [("websocket", 101)]
    assert observe.current() is not None  # lines of the connection keep the id
    result.close()
    assert len(seen) == 1 and observe.current() is None


def test_observer_settings_from_env():
    settings = observe.ObserverSettings.from_env(
        {"ODOO_REQUEST_ID_HEADER": "X-Trace", "ODOO_ACCESS_LOG_QUIET_PATHS": "/a, /b"}
    )
    assert settings.environ_key == "HTTP_X_TRACE" and settings.quiet_paths == ("/a", "/b")
    with pytest.raises(ConfigError, match="ODOO_REQUEST_ID_HEADER"):
        observe.ObserverSettings.from_env({"ODOO_REQUEST_ID_HEADER": "X Trace"})
    with pytest.raises(ConfigError, match="ODOO_ACCESS_LOG_QUIET_PATHS"):
        observe.ObserverSettings.from_env({"ODOO_ACCESS_LOG_QUIET_PATHS": "health"})


# -- statsd over a real UDP socket ---------------------------------------------------------


@pytest.fixture
def udp_listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)

    def packets(count=1):
        lines = []
        for _ in range(count):
            data, _addr = sock.recvfrom(65535)
            lines.extend(data.decode().splitlines())
        return lines

    def raw(count, timeout=5):
        """``count`` packets, each whole; fewer when ``timeout`` passes first."""
        sock.settimeout(timeout)
        received = []
        try:
            while len(received) < count:
                received.append(sock.recvfrom(65535)[0].decode())
        except TimeoutError:
            pass
        sock.settimeout(5)
        return received

    packets.port = sock.getsockname()[1]
    packets.raw = raw
    yield packets
    sock.close()


def statsd_sink(port, **extra):
    env = {
        "ODOO_STATSD": "1",
        "STATSD_CUSTOMER": "acme",
        "RUNNING_ENV": "prod",
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": str(port),
        **extra,
    }
    sink = StatsdSink(StatsdSettings.from_env(env))
    sink.start()
    deadline = time.monotonic() + 5
    while sink.client is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return sink


def test_statsd_names_of_a_request_as_the_platform_expects(udp_listener):
    sink = statsd_sink(udp_listener.port)
    info = observe.RequestInfo("rid", "POST", "/web/dataset/call_button")
    info.status, info.duration, info.sql_count, info.sql_time = 200, 0.25, 12, 0.05
    info.button = ("sale.order", "action_confirm")
    sink(info)
    lines = udp_listener()
    names = {line.split(":")[0]: line for line in lines}
    assert names["odoo.http.request.acme.prod"] == "odoo.http.request.acme.prod:250.000000|ms"
    assert "odoo.http.button.acme.prod.sale_order.action_confirm" in names
    assert names["odoo.http.status.acme.prod.2xx"].endswith(":1|c")
    assert names["odoo.http.sql.acme.prod.queries"].endswith(":12|c")
    assert "odoo.http.sql.acme.prod.time" in names
    assert "odoo.worker.acme.prod.memory" in names


def test_statsd_store_session_cron_and_migration_events(udp_listener):
    sink = statsd_sink(udp_listener.port, STATSD_PREFIX="platform.odoo", STATSD_ENVIRONMENT="int")
    sink.on_event("store", {"kind": "s3", "op": "put", "seconds": 0.01, "ok": False})
    sink.on_event("session", {"op": "revoke devices", "seconds": 0.001, "ok": True})
    sink.on_event("cron", {"seconds": 2.0, "ok": False})
    sink.on_event("migration", {"target": "s3", "moved": 5, "bytes": 1000, "skipped": 0})
    names = [line.split(":")[0] for line in udp_listener(4)]
    assert names == [
        "platform.odoo.store.acme.int.s3.put",
        "platform.odoo.store.acme.int.s3.put.errors",
        "platform.odoo.session.acme.int.revoke_devices",
        "platform.odoo.cron.acme.int",
        "platform.odoo.cron.acme.int.failed",
        "platform.odoo.attachment.migration.acme.int.moved",
        "platform.odoo.attachment.migration.acme.int.bytes",
    ]


def test_statsd_timings_of_a_request_go_in_its_packet(udp_listener):
    """One sendto a request: the session's GET and a store call made while serving it
    travel in the request's packet; after the request, at once."""
    sink = statsd_sink(udp_listener.port)
    info = observe.RequestInfo("rid", "GET", "/web/content/1")
    observe._local.info = info
    try:
        sink.on_event("session", {"op": "get", "seconds": 0.001, "ok": True})
        sink.on_event("store", {"kind": "s3", "op": "get", "seconds": 0.02, "ok": False})
        assert udp_listener.raw(1, timeout=0.3) == []  # nothing sent yet
        info.status, info.duration = 200, 0.05
        sink(info)
    finally:
        observe._local.info = None
    (packet,) = udp_listener.raw(1)
    names = [line.split(":")[0] for line in packet.splitlines()]
    assert names[:3] == [
        "odoo.session.acme.prod.get",
        "odoo.store.acme.prod.s3.get",
        "odoo.store.acme.prod.s3.get.errors",
    ]
    assert "odoo.http.request.acme.prod" in names
    # a request done, or none: at once, in a packet of its own
    sink.on_event("session", {"op": "save", "seconds": 0.001, "ok": True})
    assert [line.split(":")[0] for line in udp_listener(1)] == ["odoo.session.acme.prod.save"]


def test_statsd_unresolvable_host_never_fails_nor_waits(caplog):
    sink = StatsdSink(
        StatsdSettings.from_env(
            {
                "ODOO_STATSD": "1",
                "STATSD_CUSTOMER": "a",
                "RUNNING_ENV": "p",
                "STATSD_HOST": "statsd.invalid",
            }
        )
    )
    info = observe.RequestInfo("r", "GET", "/")
    info.status, info.duration = 200, 0.1
    start = time.perf_counter()
    for _ in range(100):
        sink(info)
    assert time.perf_counter() - start < 1.0  # no DNS lookup on the request path
    deadline = time.monotonic() + 15
    while not [r for r in caplog.records if "STATSD_HOST" in r.getMessage()]:
        assert time.monotonic() < deadline, "the unresolvable host was never reported"
        time.sleep(0.05)


def test_statsd_child_forked_while_the_parent_resolves_resolves_again():
    """A prefork worker forked while the master's resolution thread held its lock must
    not inherit the lock locked (no thread of its own would ever release it)."""
    resolving = threading.Event()
    release = threading.Event()

    def factory():
        resolving.set()
        if os.getpid() == parent:
            release.wait(10)  # the parent's resolution is still running at fork time
        return object()

    parent = os.getpid()
    sink = StatsdSink(
        StatsdSettings.from_env({"ODOO_STATSD": "1", "STATSD_CUSTOMER": "a", "RUNNING_ENV": "p"}),
        client_factory=factory,
    )
    assert sink.client is None  # starts the parent's resolution
    assert resolving.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: its own resolution gives it a client
        deadline = time.monotonic() + 5
        while sink.client is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os._exit(0 if sink.client is not None else 1)
    release.set()
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_statsd_settings_name_the_variable():
    assert not StatsdSettings.from_env({}).enabled
    with pytest.raises(ConfigError, match="STATSD_CUSTOMER"):
        StatsdSettings.from_env({"ODOO_STATSD": "1"})
    with pytest.raises(ConfigError, match="STATSD_ENVIRONMENT"):
        StatsdSettings.from_env({"ODOO_STATSD": "1", "STATSD_CUSTOMER": "a"})
    # the environment: STATSD_ENVIRONMENT, else Odoo's running_env option (OCA
    # server_environment's, as cloud_platform reads it), else RUNNING_ENV
    base = {"ODOO_STATSD": "1", "STATSD_CUSTOMER": "a"}
    assert StatsdSettings.from_env(base, running_env="integration").environment == "integration"
    both = {**base, "RUNNING_ENV": "prod"}
    assert StatsdSettings.from_env(both, running_env="integration").environment == "integration"
    assert StatsdSettings.from_env(both).environment == "prod"
    mine = {**both, "STATSD_ENVIRONMENT": "labs"}
    assert StatsdSettings.from_env(mine, running_env="integration").environment == "labs"
    with pytest.raises(ConfigError, match="STATSD_PORT"):
        StatsdSettings.from_env(
            {"ODOO_STATSD": "1", "STATSD_CUSTOMER": "a", "RUNNING_ENV": "p", "STATSD_PORT": "x"}
        )
    assert name_part("sale.order line") == "sale_order_line"


# -- events from the real stores -----------------------------------------------------------


def test_store_operations_are_reported_as_events(store):
    seen = []

    def sink(event, fields):
        seen.append((event, fields["kind"], fields["op"], fields["ok"]))

    events.subscribe(sink)
    try:
        store.put("a/key", b"data")
        store.get_bytes("a/key")
        assert not store.exists("missing/key")
    finally:
        events.unsubscribe(sink)
    kind = store.scheme
    assert ("store", kind, "put", True) in seen
    assert ("store", kind, "get", True) in seen
    assert ("store", kind, "head", True) in seen  # a missing object is an answer


def test_a_failing_sink_never_breaks_the_store(store, caplog):
    def broken(event, fields):
        raise RuntimeError("statsd gone")

    events._failed.clear()  # logged once per process and kind of error: start afresh
    events.subscribe(broken)
    try:
        store.put("k", b"v")
        assert store.get_bytes("k") == b"v"
    finally:
        events.unsubscribe(broken)
    assert len([r for r in caplog.records if "metrics sink" in r.getMessage()]) == 1


# -- the deep health check against the real services ---------------------------------------


def test_health_passes_against_real_services(services, make_fresh_store):
    store = make_fresh_store("swift")
    client = redis.Redis.from_url(services["TEST_REDIS_URL"], socket_timeout=1)
    check = HealthCheck(timeout=5)
    check.add(
        "database",
        lambda: psycopg2.connect(
            host="127.0.0.1", dbname="postgres", user="postgres", connect_timeout=2
        ).close(),
    )
    check.add("redis", client.ping)
    check.add("object_storage", lambda: store.exists(unique_name()))
    with serving(check.endpoint) as url:
        response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["status"] == "pass"
    assert set(report["checks"]) == {"database", "redis", "object_storage"}


def test_health_names_the_failed_dependency_and_bounds_a_hang(closed_port, hanging_port):
    check = HealthCheck(timeout=0.5)
    no_retry = Retry(NoBackoff(), 0)
    check.add("redis", redis.Redis(port=closed_port, socket_connect_timeout=1, retry=no_retry).ping)
    check.add(
        "database",
        lambda: psycopg2.connect(
            host="127.0.0.1", port=hanging_port, dbname="x", connect_timeout=30
        ).close(),
    )
    check.add("ok", lambda: None)
    start = time.perf_counter()
    ok, report = check.run()
    assert time.perf_counter() - start < 2
    assert not ok and report["status"] == "fail"
    assert report["checks"]["ok"]["status"] == "pass"
    assert report["checks"]["redis"]["status"] == "fail"
    assert "ConnectionError" in report["checks"]["redis"]["error"]
    assert report["checks"]["database"]["error"] == "timed out after 0.5 s"


def test_syslog_handler_sends_json_over_a_real_socket():
    """Odoo's --syslog handler is a SysLogHandler: here over UDP to a local socket."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    handler = logging.handlers.SysLogHandler(address=receiver.getsockname())
    root = logging.Logger("syslog-root")
    root.addHandler(handler)
    try:
        assert jsonlog.install(root) == 1
        root.error("disk %s is full, password=%s", "/var", SECRET)
        data = receiver.recv(65535).decode()
    finally:
        handler.close()
        receiver.close()
    priority, _, payload = data.partition(">")
    assert priority == "<11"  # user facility, error
    line = json.loads(payload.rstrip("\x00"))
    assert line["message"] == "disk /var is full, password=***"
    assert line["severity"] == "ERROR"


def test_health_costs_one_run_per_few_seconds_and_never_piles_up_threads(hanging_port):
    """Anyone who reaches it could make each call open a PostgreSQL connection and leave
    threads behind past its timeout."""
    now = [0.0]
    check = HealthCheck(timeout=0.3, reuse=5, clock=lambda: now[0])
    calls = []
    check.add("counted", lambda: calls.append(1))
    check.add(
        "hangs",
        lambda: psycopg2.connect(
            host="127.0.0.1", port=hanging_port, dbname="x", connect_timeout=30
        ).close(),
    )
    results = []
    threads = [threading.Thread(target=lambda: results.append(check.latest())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1 and len(results) == 8  # one run for eight callers at once
    hanging = [t for t in threading.enumerate() if t.name == "health-hangs"]
    now[0] = 6.0  # past the reuse: runs again, but the hung check is not started again
    ok, report = check.latest()
    assert len(calls) == 2 and not ok
    assert report["checks"]["hangs"]["status"] == "fail"
    assert [t for t in threading.enumerate() if t.name == "health-hangs"] == hanging


def test_operations_endpoints_are_loopback_only_unless_told():
    access = Access.from_env("ODOO_HEALTH", {})
    assert access.allows("127.0.0.1", None)[0] and not access.allows("10.0.0.5", None)[0]
    token = "t" * 20
    given = Access.from_env("ODOO_HEALTH", {"ODOO_HEALTH_TOKEN": token})
    assert given.allows("10.0.0.5", f"Bearer {token}")[0]
    allowed, why = given.allows("10.0.0.5", "Bearer nope")
    assert not allowed and "ODOO_HEALTH_TOKEN" in why and token not in why
    with pytest.raises(ConfigError, match="ODOO_HEALTH_ALLOW"):
        Access.from_env("ODOO_HEALTH", {"ODOO_HEALTH_ALLOW": "not a network"})
    with pytest.raises(ConfigError, match="ODOO_HEALTH_TOKEN"):
        Access.from_env("ODOO_HEALTH", {"ODOO_HEALTH_TOKEN": "short"})
    answered = []
    body = given.refusal(
        {"REMOTE_ADDR": "10.0.0.5"}, lambda status, headers: answered.append(status)
    )
    assert answered == ["403 Forbidden"] and b"ODOO_HEALTH_TOKEN" in b"".join(body)


def test_button_labels_are_capped_per_process():
    labels = observe.Labels(3)
    pairs = [("res.partner", f"action_{i}") for i in range(10)]
    admitted = [labels.admit(pair) for pair in pairs]
    assert admitted[:3] == pairs[:3]
    assert set(admitted[3:]) == {("other", "other")}
    assert labels.admit(pairs[1]) == pairs[1]  # a pair already seen keeps its name
    assert observe.ObserverSettings.from_env({}).button_labels == 200
    settings = observe.ObserverSettings.from_env({"ODOO_METRICS_BUTTON_LABELS": "0"})
    assert observe.Labels(settings.button_labels).admit(pairs[0]) == ("other", "other")
