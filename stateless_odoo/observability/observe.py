"""What happens to each HTTP request, seen from the WSGI layer: its id, its timings.

One :class:`Observer` per process wraps the WSGI application (Odoo's ``Application``,
through :func:`install_odoo`). For each request it

- takes the request id from a configurable header (``X-Request-ID`` by default) when
  the value is sane, or generates one, and echoes it in the response;
- keeps a :class:`RequestInfo` in a thread-local (see :func:`current`) that the JSON log
  formatter reads: method, path without query string, status, start time, and the SQL
  query count and time Odoo counts on the request thread;
- serves its own endpoints (``/metrics``, the deep health check) before Odoo, so that
  they need no database and never create a session;
- calls the listeners (metric sinks) once the response is sent, and clears the
  thread-local, so that no later line of the same thread carries a stale id.

A listener or an enricher that raises is logged once and ignored: observing never
breaks a request. Nothing here imports Odoo; :func:`install_odoo` receives the classes
it patches.
"""

import functools
import logging
import os
import re
import threading
import time
from dataclasses import dataclass

from ..config import EnvReader
from ..errors import ConfigError
from . import events

_logger = logging.getLogger(__name__)

#: a request id given by a client or a proxy is kept only when it looks like one
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")

_local = threading.local()


def current():
    """The :class:`RequestInfo` of the request this thread serves, or ``None``."""
    return getattr(_local, "info", None)


@dataclass(frozen=True)
class ObserverSettings:
    request_id_header: str = "X-Request-ID"
    #: access lines of these paths are logged only when they fail (health, metrics)
    quiet_paths: tuple = ("/web/health", "/web/health/deep", "/metrics")
    #: distinct (model, method) pairs of button calls a process reports; the next ones
    #: are reported as ("other", "other")
    button_labels: int = 200

    @classmethod
    def from_env(cls, environ=None):
        env = EnvReader(environ)
        header = env.str("ODOO_REQUEST_ID_HEADER", cls.request_id_header)
        if not _HEADER_NAME.fullmatch(header):
            raise ConfigError(
                "ODOO_REQUEST_ID_HEADER", f"{header!r} is not an HTTP header name (X-Request-ID)"
            )
        quiet = env.str("ODOO_ACCESS_LOG_QUIET_PATHS")
        if quiet is None:
            paths = cls.quiet_paths
        else:
            paths = tuple(p.strip() for p in quiet.split(",") if p.strip())
            for path in paths:
                if not path.startswith("/"):
                    raise ConfigError(
                        "ODOO_ACCESS_LOG_QUIET_PATHS",
                        f"{path!r} is not a path (comma-separated, each starting with /)",
                    )
        return cls(
            request_id_header=header,
            quiet_paths=paths,
            button_labels=env.int("ODOO_METRICS_BUTTON_LABELS", cls.button_labels, minimum=0),
        )

    @property
    def environ_key(self):
        return "HTTP_" + self.request_id_header.upper().replace("-", "_")


class RequestInfo:
    """One request, as the logs and the metrics see it."""

    __slots__ = (
        "button",
        "call_failed",
        "duration",
        "method",
        "odoo_request",
        "path",
        "request_id",
        "route",
        "route_type",
        "sql_count",
        "sql_time",
        "started",
        "status",
    )

    def __init__(self, request_id, method, path):
        self.request_id = request_id
        self.method = method
        self.path = path
        self.started = time.perf_counter()
        self.status = None
        self.duration = None
        self.sql_count = None
        self.sql_time = None
        #: ``http``, ``json`` (Odoo's route types), ``static``, ``websocket``, or
        #: ``none`` when no route matched
        self.route_type = "none"
        #: the route's pattern (``/web/content/<int:id>``), never the URL
        self.route = None
        #: ``(model, method)`` of a button call, when it names a real public method
        self.button = None
        #: the JSON-RPC call raised (Odoo answers it 200 with an error in the body)
        self.call_failed = False
        #: the framework's request object while the request runs (for enrichers)
        self.odoo_request = None

    def elapsed(self):
        return time.perf_counter() - self.started

    @property
    def status_class(self):
        return f"{self.status // 100}xx" if self.status else "unknown"


def request_id_from(environ, key):
    given = environ.get(key)
    if given and _SANE_REQUEST_ID.fullmatch(given):
        return given
    # 128 random bits, as hex (a uuid4's hex without building the UUID object)
    return os.urandom(16).hex()


class Observer:
    def __init__(self, settings=None):
        self.settings = settings or ObserverSettings()
        #: ``fn(info)`` called when the response is complete (metrics)
        self.listeners = []
        #: ``fn(info)`` called when the application returned, before the body is sent,
        #: while the framework's request and the thread's SQL counters are still there
        self.enrichers = []
        #: path -> WSGI application served instead of the wrapped one
        self.endpoints = {}

    def add_listener(self, fn):
        if fn not in self.listeners:
            self.listeners.append(fn)

    def add_enricher(self, fn):
        if fn not in self.enrichers:
            self.enrichers.append(fn)

    def add_endpoint(self, path, wsgi_app):
        self.endpoints[path] = wsgi_app

    @staticmethod
    def _call_all(functions, info):
        for fn in functions:
            try:
                fn(info)
            except Exception as exc:  # noqa: BLE001 - observing never breaks a request
                events.report_failure("request observer", fn, exc)

    def middleware(self, app):
        """A WSGI application observing ``app``."""

        @functools.wraps(app)
        def observed(environ, start_response):
            return self.handle(app, environ, start_response)

        return observed

    def handle(self, app, environ, start_response):
        settings = self.settings
        info = RequestInfo(
            request_id_from(environ, settings.environ_key),
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO") or "/",
        )
        _local.info = info
        name, lowered = settings.request_id_header, settings.request_id_header.lower()

        def observing_start_response(status, headers, exc_info=None):
            try:
                info.status = int(status.split(None, 1)[0])
            except ValueError:
                info.status = None
            headers = [h for h in headers if h[0].lower() != lowered]
            headers.append((name, info.request_id))
            if info.status == 101:
                # a websocket: the connection lives on in the response's close();
                # the request (the handshake) ends here
                info.route_type = "websocket"
                self._finish(info)
            return start_response(status, headers, exc_info)

        endpoint = self.endpoints.get(info.path)
        try:
            if endpoint is not None:
                info.route_type = "internal"
                info.route = info.path
                result = endpoint(environ, observing_start_response)
            else:
                result = app(environ, observing_start_response)
        except BaseException:
            self._finish(info)
            _local.info = None
            raise
        thread = threading.current_thread()
        info.sql_count = getattr(thread, "query_count", None)
        info.sql_time = getattr(thread, "query_time", None)
        self._call_all(self.enrichers, info)
        info.odoo_request = None
        return _ClosingResponse(result, self, info)

    def _finish(self, info):
        """Once per request (a websocket's ends at its handshake): the listeners."""
        if info.duration is not None:
            return
        info.duration = info.elapsed()
        self._call_all(self.listeners, info)

    def _end(self, info):
        self._finish(info)
        if current() is info:
            _local.info = None


class _ClosingResponse:
    """The application's response; the observer ends the request once the server
    closed it."""

    __slots__ = ("_info", "_iterable", "_observer")

    def __init__(self, iterable, observer, info):
        self._iterable = iterable
        self._observer = observer
        self._info = info

    def __iter__(self):
        return iter(self._iterable)

    def close(self):
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            self._observer._end(self._info)


# -- Odoo ---------------------------------------------------------------------------------

_installed = None


def get_observer(environ=None):
    """The process's observer (created on first use from the environment)."""
    global _installed
    if _installed is None:
        _installed = Observer(ObserverSettings.from_env(environ))
    return _installed


def install_odoo(application_cls, request_cls, environ=None):
    """Observe every request Odoo serves; idempotent (each observability addon calls it).

    Patches ``Application.__call__`` (the WSGI entry point every Odoo server calls) and
    ``Request._set_request_dispatcher`` (where Odoo knows the matched route and its type).
    """
    observer = get_observer(environ)
    if not getattr(application_cls.__call__, "_stateless_observed", False):
        original_call = application_cls.__call__

        def __call__(app, environ, start_response):
            return observer.handle(functools.partial(original_call, app), environ, start_response)

        __call__._stateless_observed = True
        __call__.__wrapped__ = original_call
        application_cls.__call__ = __call__

    original_set = request_cls._set_request_dispatcher
    if not getattr(original_set, "_stateless_observed", False):

        def _set_request_dispatcher(request, rule):
            original_set(request, rule)
            info = current()
            if info is not None:
                routing = getattr(rule.endpoint, "routing", {}) or {}
                info.route_type = routing.get("type") or "http"
                info.route = rule.rule
                info.odoo_request = request
                if info.route.startswith(BUTTON_ROUTES):
                    _note_failure(request.dispatcher, info)

        _set_request_dispatcher._stateless_observed = True
        request_cls._set_request_dispatcher = _set_request_dispatcher
        observer.add_enricher(route_details)
    return observer


def _note_failure(dispatcher, info):
    """Mark ``info`` when the call's dispatcher handles an error (a refused or failed
    button call is answered 200 with the error in its body)."""
    handle_error = dispatcher.handle_error

    def note_and_handle(exc):
        info.call_failed = True
        return handle_error(exc)

    dispatcher.handle_error = note_and_handle


def route_details(info):
    """What a matched route does not say: static files (Odoo serves them without a
    route), and the model and method of button calls."""
    if info.route is None:
        if info.status != 404 and "/static/" in info.path:
            info.route_type = "static"
    elif info.route.startswith(BUTTON_ROUTES):
        button_of_request(info)


#: the JSON-RPC routes whose ``model`` and ``method`` are reported (the older addons'
#: button metrics)
BUTTON_ROUTES = ("/web/dataset/call_button",)


class Labels:
    """The (model, method) pairs a process reports, at most ``limit``; the next ones
    are ``("other", "other")``: any logged-in user chooses what a button call names, and
    each pair is a series of its own (Prometheus files, Graphite files)."""

    OTHER = ("other", "other")

    def __init__(self, limit):
        self.limit = limit
        self._seen = set()
        self._lock = threading.Lock()

    def admit(self, pair):
        if pair in self._seen:
            return pair
        with self._lock:
            if len(self._seen) < self.limit:
                self._seen.add(pair)
                return pair
        return self.OTHER


_button_labels = {}


def button_of_request(info):
    """``(model, method)`` of a button call that succeeded, only when the model exists
    in the request's registry and has such a public method: names from the request body
    must not become unbounded metric names (see :class:`Labels`)."""
    request = info.odoo_request
    if request is None or info.route is None or not info.route.startswith(BUTTON_ROUTES):
        return
    if info.call_failed:
        return
    params = getattr(request, "params", None) or {}
    model, method = params.get("model"), params.get("method")
    registry = getattr(request, "registry", None)
    if not (isinstance(model, str) and isinstance(method, str)) or registry is None:
        return
    if method.startswith("_") or model not in registry:
        return
    if callable(getattr(registry[model], method, None)):
        limit = get_observer().settings.button_labels
        labels = _button_labels.get(limit) or _button_labels.setdefault(limit, Labels(limit))
        info.button = labels.admit((model, method))


def is_access_line(record):
    """werkzeug's access line of a request (its message has three arguments)."""
    return record.name == "werkzeug" and isinstance(record.args, tuple) and len(record.args) == 3


class QuietAccessFilter(logging.Filter):
    """Drops the access lines of successful requests on the quiet paths (health
    checks, metric scrapes): a probe every few seconds must not flood the logs."""

    def __init__(self, paths):
        super().__init__()
        self.paths = frozenset(paths)

    def filter(self, record):
        info = current()
        if info is None or not self.paths or not is_access_line(record):
            return True
        return not (info.path in self.paths and info.status is not None and info.status < 400)
