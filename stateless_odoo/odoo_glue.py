"""The observability addons' shared Odoo glue, given the ``odoo`` package by the addon.

This module never imports Odoo: ``logging_json``, ``monitoring_statsd`` and
``monitoring_prometheus`` call these functions from their ``post_load`` with the
``odoo`` package. Each function is idempotent and does nothing when its variable is off.
What they patch (all in Odoo 18, see DESIGN.md §3):

- ``odoo.http.Application.__call__`` and ``Request._set_request_dispatcher``: the
  request observer (:mod:`stateless_odoo.observe`);
- ``odoo.service.server.PreforkServer.worker_pop``: reaped processes are marked dead
  for Prometheus.
"""

import logging
import threading

from . import events, health, jsonlog, observe
from .errors import ConfigError
from .storage import KINDS, build_store

_logger = logging.getLogger(__name__)

_state = {}


def _fail(addon, exc):
    # a half-configured observability addon must say so and stop, not run blind
    raise SystemExit(f"{addon}: {exc}") from None


def install_observer(odoo):
    """The request observer, the deep health check and the quiet access lines."""
    if "observer" in _state:
        return _state["observer"]
    observer = observe.install_odoo(odoo.http.Application, odoo.http.Request)
    logging.getLogger("werkzeug").addFilter(
        jsonlog.QuietAccessFilter(observer.settings.quiet_paths)
    )
    check = health.HealthCheck.from_env()
    check.add("database", lambda: _check_database(odoo))
    store = getattr(odoo.http.root, "session_store", None)
    if callable(getattr(store, "ping", None)):
        check.add("redis", store.ping)
    for kind, store in _configured_stores(odoo):
        check.add(f"object_storage_{kind}", _store_check(store))
    observer.add_endpoint("/web/health/deep", check.endpoint)
    _state["observer"] = observer
    _state["health"] = check
    return observer


def _check_database(odoo):
    with odoo.sql_db.db_connect("postgres").cursor() as cr:
        cr.execute("SELECT 1")


def _configured_stores(odoo):
    """The object stores the environment configures (variables set), for the health
    check; a bucket named after the database uses the configured ``db_name``."""
    db_name = (odoo.tools.config.get("db_name") or "").split(",")[0].strip() or None
    for kind in KINDS:
        try:
            yield kind, build_store(kind, db_name=db_name, read_only=True)
        except ConfigError:
            continue  # this kind is not configured here
        except ImportError:
            continue


def _store_check(store):
    def check():
        store.exists("stateless-odoo-health-check")

    return check


def install_json_logging(odoo, environ=None):
    try:
        if not jsonlog.is_enabled(environ):
            return False
        install_observer(odoo)
    except ConfigError as exc:
        _fail("logging_json", exc)
    if "json_logging" not in _state:
        count = jsonlog.install()
        _state["json_logging"] = True
        _logger.info("logging_json: JSON log lines on %d handler(s)", count)
    return True


def install_statsd(odoo, environ=None):
    from .statsd_metrics import StatsdSettings, StatsdSink

    if "statsd" in _state:
        return _state["statsd"]
    try:
        settings = StatsdSettings.from_env(environ)
        if not settings.enabled:
            _logger.info("monitoring_statsd: ODOO_STATSD is off, no statsd metrics")
            return None
        observer = install_observer(odoo)
    except ConfigError as exc:
        _fail("monitoring_statsd", exc)
    sink = StatsdSink(settings)
    sink.start()
    observer.add_listener(sink)
    events.subscribe(sink.on_event)
    _state["statsd"] = sink
    _logger.info(
        "monitoring_statsd: metrics to %s:%s as %s.*.%s.%s",
        settings.host,
        settings.port,
        settings.prefix,
        settings.customer,
        settings.environment,
    )
    return sink


def install_prometheus(odoo, environ=None):
    from .prometheus_metrics import PrometheusMetrics, PrometheusSettings, prepare_directory

    if "prometheus" in _state:
        return _state["prometheus"]
    try:
        settings = PrometheusSettings.from_env(environ)
        if not settings.enabled:
            _logger.info("monitoring_prometheus: ODOO_PROMETHEUS is off, no /metrics")
            return None
        observer = install_observer(odoo)
    except ConfigError as exc:
        _fail("monitoring_prometheus", exc)
    directory = prepare_directory(settings)
    metrics = PrometheusMetrics(settings, directory)
    observer.add_listener(metrics.on_request)
    observer.add_endpoint(settings.path, metrics.endpoint)
    events.subscribe(metrics.on_event)
    _patch_worker_pop(odoo, metrics)
    _state["prometheus"] = metrics
    _logger.info("monitoring_prometheus: %s served from the counts in %s", settings.path, directory)
    return metrics


def _patch_worker_pop(odoo, metrics):
    server_cls = odoo.service.server.PreforkServer
    original = server_cls.worker_pop
    if getattr(original, "_stateless_observed", False):
        return

    def worker_pop(server, pid):
        known = pid in server.workers or pid == server.long_polling_pid
        original(server, pid)
        if known:
            metrics.mark_dead(pid)

    worker_pop._stateless_observed = True
    server_cls.worker_pop = worker_pop


_cron = threading.local()


class cron_run:
    """Time a scheduled action run as a ``cron`` event; nested uses (both monitoring
    addons override ``ir.cron``) report it once."""

    def __enter__(self):
        self.outer = not getattr(_cron, "active", False)
        if self.outer:
            _cron.active = True
            self.timer = events.timed("cron")
            self.timer.__enter__()
        return self

    def __exit__(self, *exc):
        if self.outer:
            _cron.active = False
            return self.timer.__exit__(*exc)
        return False
