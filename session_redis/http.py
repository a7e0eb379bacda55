"""Install the Redis session store in place of Odoo's file store.

Server-wide (``--load=web,session_redis``): ``post_load`` runs once per process image,
before prefork workers fork, so every worker, thread and the websocket process use the
store; each process opens its own Redis connections on first use.
"""

import logging

import odoo
from odoo import http
from odoo.service import security
from werkzeug.exceptions import ServiceUnavailable

from stateless_odoo.errors import ConfigError
from stateless_odoo.sessions.settings import RedisSessionSettings
from stateless_odoo.sessions.store import RedisSessionStore

_logger = logging.getLogger(__name__)


class RedisUnavailable(ServiceUnavailable):
    """A 503 whose description names Redis; logged by Odoo's request handler."""

    loglevel = logging.ERROR


def _serves_one_request_at_a_time():
    """A prefork worker (not the threaded server, nor the gevent websocket process)."""
    return bool(odoo.tools.config.get("workers")) and not getattr(odoo, "evented", False)


def _max_inactivity():
    """Odoo's ``sessions.max_inactivity_seconds`` of the current request's database."""
    env = None
    try:
        env = http.request.env if http.request else None
    except (AttributeError, RuntimeError):
        env = None
    return http.get_session_max_inactivity(env)


def _compute_token(session, env):
    session.session_token = security.compute_session_token(session, env)


def post_load():
    try:
        settings = RedisSessionSettings.from_env()
    except ConfigError as exc:
        # a half-configured Redis must not silently fall back to sessions on disk
        raise SystemExit(f"session_redis: {exc}") from None
    if not settings.enabled:
        _logger.info("session_redis: ODOO_SESSION_REDIS is off, sessions stay on disk")
        return
    http.root.session_store = RedisSessionStore(
        settings,
        http.Session,
        expiration=_max_inactivity,
        on_rotate=_compute_token,
        single_connection=_serves_one_request_at_a_time,
        unavailable=RedisUnavailable,
    )
    _logger.info("session_redis: HTTP sessions in %s", settings.where())
