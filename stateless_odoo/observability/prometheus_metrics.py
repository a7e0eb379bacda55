"""Prometheus metrics, correct under Odoo's prefork server.

Variables: ``ODOO_PROMETHEUS`` (on/off), ``ODOO_PROMETHEUS_PATH`` (``/metrics``),
``ODOO_PROMETHEUS_TOKEN`` (scrapes must send ``Authorization: Bearer <token>``),
``ODOO_PROMETHEUS_ALLOW`` (comma-separated addresses or networks allowed to scrape;
default: loopback only when no token is set, anyone with the token when one is set),
``ODOO_PROMETHEUS_DIR`` (or ``PROMETHEUS_MULTIPROC_DIR``: where the processes keep their
counts; default: a new directory under the system's temporary directory).

Every process (prefork workers, the websocket process, cron workers, a threaded server)
writes its counts to memory-mapped files in one directory (``prometheus_client``'s
multiprocess mode); any process answering a scrape adds them all up. The master wipes
the directory when it starts, processes started by it (the websocket process is a new
exec) keep it, and the processes Odoo reaps are marked dead so that their gauges go.

Labels are bounded: route *types* and status codes, store kinds and operations, and
for button calls the model and method, which must exist in the registry.
"""

import atexit
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

from ..config import EnvReader
from ..errors import ConfigError
from ..process import resident_memory
from .access import Access

_logger = logging.getLogger(__name__)

#: set in the environment by the process that prepared the directory; processes it
#: starts (the websocket process is a new exec) find it and keep the directory
OWNER_VARIABLE = "STATELESS_ODOO_PROMETHEUS_OWNER"
MEMORY_EVERY = 10.0

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
SQL_COUNT_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
SQL_TIME_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
STORE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
CRON_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600)


@dataclass(frozen=True)
class PrometheusSettings:
    enabled: bool
    path: str = "/metrics"
    access: Access = field(default_factory=lambda: Access("ODOO_PROMETHEUS"))
    directory: str = None

    @classmethod
    def from_env(cls, environ=None):
        env = EnvReader(environ)
        if not env.bool("ODOO_PROMETHEUS", False):
            return cls(enabled=False)
        path = env.str("ODOO_PROMETHEUS_PATH", "/metrics")
        if not path.startswith("/"):
            raise ConfigError("ODOO_PROMETHEUS_PATH", f"{path!r} is not a path (/metrics)")
        access = Access.from_env("ODOO_PROMETHEUS", env)
        directory = env.str("ODOO_PROMETHEUS_DIR", aliases=("PROMETHEUS_MULTIPROC_DIR",))
        return cls(enabled=True, path=path, access=access, directory=directory)

    def allows(self, remote_addr, authorization, forwarded_for=None):
        """See :meth:`.access.Access.allows`."""
        return self.access.allows(remote_addr, authorization, forwarded_for)


def prepare_directory(settings, environ=None):
    """Make the multiprocess directory ready and tell ``prometheus_client`` to use it.

    Must run before any metric is created. The first process (no owner in the
    environment) wipes the counts of a previous run; its children keep them."""
    env = EnvReader(environ)
    environ = env.environ  # the variables below are set for the children too
    directory = settings.directory or env.str("PROMETHEUS_MULTIPROC_DIR")
    owned = env.str(OWNER_VARIABLE)
    if not directory:
        directory = tempfile.mkdtemp(prefix="odoo-prometheus-")
        if not owned:
            # ours alone: removed when this process (the master) exits, not when a
            # forked worker does
            atexit.register(_remove_if_owner, directory, os.getpid())
    os.makedirs(directory, exist_ok=True)
    if not owned:
        for name in os.listdir(directory):
            if name.endswith(".db"):
                try:
                    os.unlink(os.path.join(directory, name))
                except OSError as exc:
                    _logger.warning("prometheus: cannot remove %s of an earlier run: %s", name, exc)
        environ[OWNER_VARIABLE] = str(os.getpid())
    environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from prometheus_client import values

    # a prometheus_client imported earlier chose its value class without the variable
    values.ValueClass = values.get_value_class()
    return directory


def _remove_if_owner(directory, owner):
    if os.getpid() == owner:
        shutil.rmtree(directory, ignore_errors=True)


class PrometheusMetrics:
    """The metrics of one process, the scrape endpoint, and the observe/events sinks."""

    def __init__(self, settings, directory):
        self.settings = settings
        self.directory = directory
        self._memory_at = None
        self._pid = None
        self._cache = {}  # (route type, status): the request's metrics
        self._labelled = {}  # (metric, label values): see _child
        self.writable = os.access(directory, os.W_OK)
        if self.writable:
            try:
                self._create_metrics()
            except OSError as exc:  # the files of unlabelled metrics are opened now
                _logger.error("prometheus: %s", exc)
                self.writable = False
        if not self.writable:
            _logger.error(
                "prometheus: the metrics directory %s is not writable (ODOO_PROMETHEUS_DIR);"
                " no metrics are counted, %s answers 503",
                directory,
                settings.path,
            )

    def _create_metrics(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        registry = CollectorRegistry(auto_describe=False)  # not scraped: see scrape()
        self.requests = Counter(
            "odoo_http_requests",
            "HTTP requests by route type and status code",
            ["type", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "odoo_http_request_duration_seconds",
            "HTTP request duration, from the request to the end of the response",
            ["type"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.sql_queries = Histogram(
            "odoo_http_request_sql_queries",
            "SQL queries per HTTP request",
            ["type"],
            buckets=SQL_COUNT_BUCKETS,
            registry=registry,
        )
        self.sql_duration = Histogram(
            "odoo_http_request_sql_duration_seconds",
            "SQL time per HTTP request",
            ["type"],
            buckets=SQL_TIME_BUCKETS,
            registry=registry,
        )
        self.buttons = Histogram(
            "odoo_http_button_duration_seconds",
            "Button calls (/web/dataset/call_button) by model and method",
            ["model", "method"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.memory = Gauge(
            "odoo_process_resident_memory_bytes",
            "Resident memory of the live Odoo processes, added up",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.memory_max = Gauge(
            "odoo_process_resident_memory_max_bytes",
            "Resident memory of the largest live Odoo process",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.processes = Gauge(
            "odoo_processes",
            "Live Odoo processes that have served or counted something",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.cron_runs = Counter(
            "odoo_cron_runs", "Scheduled action runs by outcome", ["outcome"], registry=registry
        )
        self.cron_duration = Histogram(
            "odoo_cron_duration_seconds",
            "Scheduled action run duration",
            buckets=CRON_BUCKETS,
            registry=registry,
        )
        self.store_ops = Counter(
            "odoo_object_store_operations",
            "Object store operations by kind, operation and outcome",
            ["kind", "op", "outcome"],
            registry=registry,
        )
        self.store_duration = Histogram(
            "odoo_object_store_operation_duration_seconds",
            "Object store operation duration",
            ["kind", "op"],
            buckets=STORE_BUCKETS,
            registry=registry,
        )
        self.session_ops = Counter(
            "odoo_session_store_operations",
            "Session store (Redis) operations by operation and outcome",
            ["op", "outcome"],
            registry=registry,
        )
        self.session_duration = Histogram(
            "odoo_session_store_operation_duration_seconds",
            "Session store (Redis) operation duration",
            ["op"],
            buckets=STORE_BUCKETS,
            registry=registry,
        )
        self.migration = Counter(
            "odoo_attachment_migration",
            "Attachment migration: attachments moved, bytes moved, attachments skipped",
            ["what"],
            registry=registry,
        )
        self.migration_running = Gauge(
            "odoo_attachment_migration_running",
            "Attachment migrations running in live processes",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.migration_progress = Gauge(
            "odoo_attachment_migration_progress_timestamp_seconds",
            "When a running attachment migration last started or committed a batch",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.gc_runs = Counter(
            "odoo_attachment_gc_runs",
            "Garbage collections of attachment objects by scope and outcome",
            ["scope", "outcome"],
            registry=registry,
        )
        self.gc_objects = Counter(
            "odoo_attachment_gc_objects",
            "Objects the garbage collection deleted, kept (referenced) or left (busy)",
            ["what"],
            registry=registry,
        )
        self.gc_success = Gauge(
            "odoo_attachment_gc_last_success_timestamp_seconds",
            "When a garbage collection of the scope last ended without an error",
            ["scope"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.worker_recycles = Counter(
            "odoo_worker_recycles",
            "Workers Odoo ended after a request, by reason (memory: limit_memory_soft)",
            ["reason"],
            registry=registry,
        )

    # -- counting -----------------------------------------------------------------------

    def _process_gauges(self, now):
        pid = os.getpid()
        if self._pid != pid:
            self._pid = pid
            self._memory_at = None
            self.processes.set(1)
        if self._memory_at is None or now - self._memory_at >= MEMORY_EVERY:
            self._memory_at = now
            rss = resident_memory()
            if rss is not None:
                self.memory.set(rss)
                self.memory_max.set(rss)

    def _children(self, kind, code):
        """The labelled metrics of a route type and status (``labels()`` takes a lock
        and validates its arguments: once per pair, not per request)."""
        key = (kind, code)
        children = self._cache.get(key)
        if children is None:
            children = (
                self.requests.labels(kind, str(code)),
                self.duration.labels(kind),
                self.sql_queries.labels(kind),
                self.sql_duration.labels(kind),
            )
            self._cache[key] = children
        return children

    def _child(self, metric, *labels):
        """``metric.labels(*labels)``, made once per metric and label values (``labels()``
        takes a lock and validates its arguments: not on every event)."""
        key = (id(metric), labels)
        child = self._labelled.get(key)
        if child is None:
            child = self._labelled[key] = metric.labels(*labels)
        return child

    def on_request(self, info):
        """observe listener."""
        if not self.writable:
            return
        requests, duration, sql_queries, sql_duration = self._children(
            info.route_type or "none", info.status or 0
        )
        requests.inc()
        duration.observe(info.duration)
        if info.sql_count is not None:
            sql_queries.observe(info.sql_count)
            sql_duration.observe(info.sql_time or 0.0)
        if info.button is not None:
            self.buttons.labels(*info.button).observe(info.duration)
        self._process_gauges(info.started + info.duration)

    def on_event(self, event, fields):
        """events sink."""
        if not self.writable:
            return
        if event == "store":
            outcome = "ok" if fields["ok"] else "error"
            self._child(self.store_ops, fields["kind"], fields["op"], outcome).inc()
            self._child(self.store_duration, fields["kind"], fields["op"]).observe(
                fields["seconds"]
            )
        elif event == "session":
            op = fields["op"].replace(" ", "_")
            self._child(self.session_ops, op, "ok" if fields["ok"] else "error").inc()
            self._child(self.session_duration, op).observe(fields["seconds"])
        elif event == "cron":
            self.cron_runs.labels("ok" if fields["ok"] else "failed").inc()
            self.cron_duration.observe(fields["seconds"])
        elif event == "migration":
            for what in ("moved", "bytes", "skipped"):
                if fields.get(what):
                    self.migration.labels(what).inc(fields[what])
            self.migration_progress.set(time.time())
        elif event == "migration_run":
            self.migration_running.set(1 if fields["running"] else 0)
            self.migration_progress.set(time.time())
        elif event == "collection":
            self.gc_runs.labels(fields["scope"], fields["outcome"]).inc()
            for what in ("deleted", "kept", "busy"):
                if fields.get(what):
                    self.gc_objects.labels(what).inc(fields[what])
            if fields["outcome"] == "ok":
                self.gc_success.labels(fields["scope"]).set(time.time())
        elif event == "worker_recycle":
            self.worker_recycles.labels(fields["reason"]).inc()

    def mark_dead(self, pid):
        """A process Odoo reaped: its live gauges go (its counts stay in the totals)."""
        from prometheus_client import multiprocess

        try:
            multiprocess.mark_process_dead(pid, self.directory)
        except OSError as exc:
            _logger.warning("prometheus: cannot mark process %s dead: %s", pid, exc)

    # -- scraping -----------------------------------------------------------------------

    def scrape(self):
        """The text exposition of every process's counts, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.directory)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def endpoint(self, environ, start_response):
        """WSGI application of ``/metrics`` (served before Odoo: no session, no db)."""
        refused = self.settings.access.refusal(environ, start_response)
        if refused is not None:
            return refused
        headers = [("Cache-Control", "no-store")]
        if not self.writable:
            body = b"metrics directory not writable (ODOO_PROMETHEUS_DIR)\n"
            start_response("503 Service Unavailable", [*headers, ("Content-Type", "text/plain")])
            return [body]
        body, content_type = self.scrape()
        start_response(
            "200 OK",
            [*headers, ("Content-Type", content_type), ("Content-Length", str(len(body)))],
        )
        return [body]
