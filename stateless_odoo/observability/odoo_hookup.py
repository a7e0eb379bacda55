"""The observability addons' shared Odoo glue, given the ``odoo`` package by the addon.

This module never imports Odoo: ``logging_json``, ``monitoring_statsd`` and
``monitoring_prometheus`` call these functions from their ``post_load`` with the
``odoo`` package. Each function is idempotent and does nothing when its variable is off.
What they patch (all in Odoo 18):

- ``odoo.http.Application.__call__`` and ``Request._set_request_dispatcher``: the
  request observer (:mod:`.observe`);
- ``odoo.service.server.PreforkServer.worker_pop``: reaped processes are marked dead
  for Prometheus.
"""

import contextlib
import functools
import logging
import os
import threading
import time

from ..config import EnvReader
from ..errors import ConfigError, StatelessOdooError
from ..storage import CONTAINER_VARIABLE, KINDS, build_store, config_errors
from . import early_json, events, health, observe
from .access import Access

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
        observe.QuietAccessFilter(observer.settings.quiet_paths)
    )
    timeout = health.HealthCheck.from_env().timeout  # a bad value stops the start
    access = Access.from_env("ODOO_HEALTH")  # as /metrics: loopback unless told

    def deep_health(environ, start_response):
        refused = access.refusal(environ, start_response)
        if refused is not None:
            return refused
        # built on the first probe, not at start: every server-wide addon has then
        # installed itself (session_redis may load after this addon), and no store
        # client is made in a process that is never probed
        if "health" not in _state:
            _state["health"] = _health_check(odoo, timeout)
        return _state["health"].endpoint(environ, start_response)

    observer.add_endpoint("/web/health/deep", deep_health)
    _state["observer"] = observer
    return observer


def _health_check(odoo, timeout):
    check = health.HealthCheck(timeout)
    check.add("database", lambda: _check_database(odoo))
    store = getattr(odoo.http.root, "session_store", None)
    if callable(getattr(store, "ping", None)):
        check.add("redis", store.ping)
    for kind, store_check in _store_checks(odoo):
        check.add(f"object_storage_{kind}", store_check)
    return check


def _check_database(odoo):
    with odoo.sql_db.db_connect("postgres").cursor() as cr:
        cr.execute("SELECT 1")


def _store_checks(odoo, environ=None):
    """``(kind, check)`` of each object store the environment configures (its bucket or
    container variable set): the store answers for its bucket or container, or, when
    its configuration is invalid, the check fails naming every bad variable (read as
    the store reads them). A bucket named after the database uses the configured
    ``db_name``; without one (several databases), that store is not checked."""
    db_name = (odoo.tools.config.get("db_name") or "").split(",")[0].strip() or None
    env = EnvReader(environ)
    for kind in KINDS:
        if not env.is_set(CONTAINER_VARIABLE[kind]):
            continue  # this kind is not configured here
        try:
            errors = config_errors(kind, environ, db_name=db_name)
            if errors:
                yield kind, functools.partial(_misconfigured, errors)
                continue
            store = build_store(kind, environ, db_name=db_name, read_only=True)
        except ImportError:
            continue  # this kind is not installed here
        except ConfigError:
            continue  # {db} in the bucket or container name, and no database given
        yield kind, functools.partial(store.exists, health.HEALTH_KEY)


def _misconfigured(errors):
    raise StatelessOdooError("invalid configuration: " + "; ".join(str(error) for error in errors))


def install_json_logging(odoo, environ=None):
    try:
        if not early_json.is_enabled(environ):
            return False
        install_observer(odoo)
    except ConfigError as exc:
        _fail("logging_json", exc)
    if "json_logging" not in _state:
        from . import jsonlog  # python-json-logger: logging_json's part only

        count = jsonlog.install()
        _state["json_logging"] = True
        _logger.info("logging_json: JSON log lines on %d handler(s)", count)
    return True


def _enabled(addon, settings_cls, variable, odoo, environ, **options):
    """The addon's settings and the observer, or ``None`` when ``variable`` is off; a
    bad value stops the process with a message naming it."""
    try:
        settings = settings_cls.from_env(environ, **options)
        if not settings.enabled:
            _logger.info("%s: %s is off", addon, variable)
            return None
        return settings, install_observer(odoo)
    except ConfigError as exc:
        _fail(addon, exc)


def install_statsd(odoo, environ=None):
    from .statsd_metrics import StatsdSettings, StatsdSink

    if "statsd" in _state:
        return _state["statsd"]
    enabled = _enabled(
        "monitoring_statsd", StatsdSettings, "ODOO_STATSD", odoo, environ,
        running_env=odoo.tools.config.get("running_env") or None,
    )  # fmt: skip
    if enabled is None:
        return None
    settings, observer = enabled
    sink = StatsdSink(settings)
    sink.start()
    observer.add_listener(sink)
    events.subscribe(sink.on_event)
    _patch_worker_limits(odoo)
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
    enabled = _enabled(
        "monitoring_prometheus", PrometheusSettings, "ODOO_PROMETHEUS", odoo, environ
    )
    if enabled is None:
        return None
    settings, observer = enabled
    directory = prepare_directory(settings)
    metrics = PrometheusMetrics(settings, directory)
    observer.add_listener(metrics.on_request)
    observer.add_endpoint(settings.path, metrics.endpoint)
    events.subscribe(metrics.on_event)
    _patch_worker_pop(odoo, metrics)
    _patch_worker_limits(odoo)
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


def recycle_reason(worker, config, ppid):
    """Why Odoo's ``Worker.check_limits`` just ended ``worker`` (its checks, in its
    order): its parent changed, its request count, a cron worker's age, else its memory
    (``limit_memory_soft``, the one check left)."""
    if worker.ppid != ppid:
        return "parent"
    if worker.request_count >= worker.request_max:
        return "requests"
    age_limit = config.get("limit_time_worker_cron") or 0
    alive_time = getattr(worker, "alive_time", None)
    if age_limit > 0 and alive_time is not None and time.monotonic() - alive_time > age_limit:
        return "age"
    return "memory"


def _patch_worker_limits(odoo):
    """A ``worker_recycle`` event when a worker's limits end it (after its request)."""
    worker_cls = odoo.service.server.Worker
    original = worker_cls.check_limits
    if getattr(original, "_stateless_observed", False):
        return

    def check_limits(worker):
        alive = worker.alive
        original(worker)
        if alive and not worker.alive:
            reason = recycle_reason(worker, odoo.tools.config, os.getppid())
            events.emit("worker_recycle", reason=reason)

    check_limits._stateless_observed = True
    worker_cls.check_limits = check_limits


_cron = threading.local()


@contextlib.contextmanager
def cron_run():
    """Time a scheduled action run as a ``cron`` event; nested uses (both monitoring
    addons override ``ir.cron``) report it once."""
    if getattr(_cron, "active", False):
        yield
        return
    _cron.active = True
    try:
        with events.timed("cron"):
            yield
    finally:
        _cron.active = False
