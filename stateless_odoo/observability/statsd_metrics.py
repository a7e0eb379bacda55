"""statsd metrics, named as the older platform's dashboards expect.

Variables: those of the older ``monitoring_statsd`` addon (``ODOO_STATSD``,
``STATSD_*``; the table is in docs/deployment.md, "statsd: monitoring_statsd").

Names (``<p>`` = prefix, ``<c>`` = customer, ``<e>`` = environment):

==========================================  =======  =====================================
``<p>.http.request.<c>.<e>``                timer    every request (ms)
``<p>.http.button.<c>.<e>.<model>.<method>``  timer  button calls (``call_button``), model
                                                     dots as ``_``
``<p>.http.status.<c>.<e>.<2xx|3xx|...>``   counter  requests by status class
``<p>.http.sql.<c>.<e>.queries``            counter  SQL queries of requests
``<p>.http.sql.<c>.<e>.time``               timer    SQL time per request (ms)
``<p>.worker.<c>.<e>.memory``               timer    resident memory of the process
                                                     (bytes, at most every 10 s)
``<p>.cron.<c>.<e>``                        timer    cron job runs; ``.failed`` counter
``<p>.store.<c>.<e>.<kind>.<op>``           timer    object store operations;
                                                     ``.errors`` counter
``<p>.session.<c>.<e>.<op>``                timer    session store operations;
                                                     ``.errors`` counter
``<p>.attachment.migration.<c>.<e>.moved``  counter  attachments moved (``.bytes``,
                                                     ``.skipped``)
==========================================  =======  =====================================

UDP only: a packet per request (a pipeline), sent without waiting; the store and
session timings of a request go in its packet (one ``sendto`` a request, not one per
event), those outside a request (crons, commands, the websocket) at once. The host is resolved
once, in a background thread, and again every 30 s while it does not resolve: a missing
or wrong host never fails nor slows a request; it is logged, by name.
"""

import logging
import re
import threading
import time
import types
from dataclasses import dataclass

from ..config import EnvReader, server_environment
from ..errors import ConfigError
from ..process import PerProcess, resident_memory
from . import observe

_logger = logging.getLogger(__name__)

_NAME_PART = re.compile(r"[^A-Za-z0-9_-]+")
RESOLVE_RETRY = 30.0
MEMORY_EVERY = 10.0


def name_part(value):
    """A statsd name segment: dots and anything unusual become ``_``."""
    return _NAME_PART.sub("_", str(value)).strip("_") or "unknown"


@dataclass(frozen=True)
class StatsdSettings:
    enabled: bool
    host: str = "localhost"
    port: int = 8125
    prefix: str = "odoo"
    customer: str = "unknown"
    environment: str = "unknown"

    @classmethod
    def from_env(cls, environ=None, running_env=None):
        """``running_env``: Odoo's ``running_env`` option (OCA server_environment's), the
        environment when ``STATSD_ENVIRONMENT`` is not set; before ``RUNNING_ENV``, as
        cloud_platform reads it."""
        env = EnvReader(environ)
        enabled = env.bool("ODOO_STATSD", False)
        if not enabled:
            return cls(enabled=False)
        customer = env.str("STATSD_CUSTOMER")
        if customer is None:
            raise ConfigError(
                "STATSD_CUSTOMER", "is not set (ODOO_STATSD=1 needs the customer's name)"
            )
        environment = env.str("STATSD_ENVIRONMENT") or server_environment(running_env, env)
        if environment is None:
            raise ConfigError(
                "STATSD_ENVIRONMENT",
                "is not set, nor is RUNNING_ENV or Odoo's running_env option"
                " (ODOO_STATSD=1 needs one)",
            )
        port = env.int("STATSD_PORT", 8125, minimum=1, maximum=65535)
        prefix = env.str("STATSD_PREFIX", "odoo")
        return cls(
            enabled=True,
            host=env.str("STATSD_HOST", "localhost"),
            port=port,
            prefix=".".join(name_part(p) for p in prefix.split(".")),
            customer=name_part(customer),
            environment=name_part(environment),
        )


class StatsdSink:
    """Listener of :mod:`.observe` and sink of :mod:`.events`."""

    def __init__(self, settings, *, client_factory=None):
        self.settings = settings
        self._client = None
        self._client_factory = client_factory or self._make_client
        # the resolution's lock and next attempt, fresh in each process: a child forked
        # while the parent was resolving gets its lock locked, and no thread to free it
        self._resolution = PerProcess(
            lambda: types.SimpleNamespace(lock=threading.Lock(), next_attempt=0.0)
        )
        self._memory_at = 0.0
        self._warned = False
        self._local = threading.local()  # the timings deferred to this request's packet
        suffix = f"{settings.customer}.{settings.environment}"
        self.request_name = f"http.request.{suffix}"
        self.button_name = f"http.button.{suffix}"
        self.status_name = f"http.status.{suffix}"
        self.sql_name = f"http.sql.{suffix}"
        self.memory_name = f"worker.{suffix}.memory"
        self.cron_name = f"cron.{suffix}"
        self.store_name = f"store.{suffix}"
        self.session_name = f"session.{suffix}"
        self.migration_name = f"attachment.migration.{suffix}"
        self.gc_name = f"attachment.gc.{suffix}"
        self.recycle_name = f"worker.{suffix}.recycled"

    def _make_client(self):
        import statsd

        return statsd.StatsClient(
            self.settings.host, self.settings.port, prefix=self.settings.prefix
        )

    @property
    def client(self):
        """The UDP client, or ``None`` while the host does not resolve (never blocks)."""
        client = self._client
        if client is None:
            state = self._resolution.get()
            if time.monotonic() >= state.next_attempt and state.lock.acquire(blocking=False):
                state.next_attempt = time.monotonic() + RESOLVE_RETRY
                threading.Thread(
                    target=self._resolve, args=(state.lock,), name="statsd-resolve", daemon=True
                ).start()
        return client

    def _resolve(self, lock):
        try:
            self._client = self._client_factory()
            if self._warned:
                _logger.info(
                    "statsd: STATSD_HOST %s resolves now, metrics are sent", self.settings.host
                )
        except OSError as exc:
            if not self._warned:
                self._warned = True
                _logger.error(
                    "statsd: STATSD_HOST %r:%s cannot be used (%s); no metrics are sent, trying"
                    " again every %.0f s",
                    self.settings.host,
                    self.settings.port,
                    exc,
                    RESOLVE_RETRY,
                )
        finally:
            lock.release()

    def start(self):
        """Resolve the host now (at startup) rather than on the first request."""
        _ = self.client

    # -- observe listener ----------------------------------------------------------------

    def __call__(self, info):
        client = self.client
        deferred = self._deferred_of(info)
        if client is None:
            return
        with client.pipeline() as pipe:
            for name, fields, failed in deferred:
                self._add_timed(pipe, name, fields, failed)
            ms = info.duration * 1000.0
            pipe.timing(self.request_name, ms)
            if info.button is not None:
                model, method = info.button
                pipe.timing(f"{self.button_name}.{name_part(model)}.{name_part(method)}", ms)
            pipe.incr(f"{self.status_name}.{info.status_class}")
            if info.sql_count is not None:
                pipe.incr(f"{self.sql_name}.queries", info.sql_count)
                pipe.timing(f"{self.sql_name}.time", (info.sql_time or 0.0) * 1000.0)
            now = time.monotonic()
            if now - self._memory_at >= MEMORY_EVERY:
                self._memory_at = now
                rss = resident_memory()
                if rss is not None:
                    pipe.timing(self.memory_name, rss)

    # -- events sink ----------------------------------------------------------------------

    def on_event(self, event, fields):
        client = self.client
        if client is None:
            return
        if event == "store":
            name = f"{self.store_name}.{name_part(fields['kind'])}.{name_part(fields['op'])}"
            self._timed(client, name, fields)
        elif event == "session":
            self._timed(client, f"{self.session_name}.{name_part(fields['op'])}", fields)
        elif event == "cron":
            self._timed(client, self.cron_name, fields, failed="failed")
        elif event == "migration":
            with client.pipeline() as pipe:
                for key in ("moved", "bytes", "skipped"):
                    if fields.get(key):
                        pipe.incr(f"{self.migration_name}.{key}", fields[key])
        elif event == "collection":
            with client.pipeline() as pipe:
                pipe.incr(f"{self.gc_name}.{fields['scope']}.{fields['outcome']}")
                for key in ("deleted", "kept", "busy"):
                    if fields.get(key):
                        pipe.incr(f"{self.gc_name}.objects.{key}", fields[key])
        elif event == "worker_recycle":
            client.incr(f"{self.recycle_name}.{name_part(fields['reason'])}")

    def _timed(self, client, name, fields, failed="errors"):
        info = observe.current()
        if info is not None and info.duration is None:  # in a request: in its packet
            local = self._local
            if getattr(local, "info", None) is not info:
                local.info, local.deferred = info, []
            local.deferred.append((name, fields, failed))
            return
        with client.pipeline() as pipe:
            self._add_timed(pipe, name, fields, failed)

    def _deferred_of(self, info):
        """The timings deferred to ``info``'s packet (forgotten after)."""
        local = self._local
        if getattr(local, "info", None) is not info:
            return ()
        local.info = None
        return local.deferred

    @staticmethod
    def _add_timed(pipe, name, fields, failed):
        pipe.timing(name, fields["seconds"] * 1000.0)
        if not fields["ok"]:
            pipe.incr(f"{name}.{failed}")
