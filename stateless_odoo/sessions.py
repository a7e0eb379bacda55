"""HTTP sessions in Redis, with the store API of Odoo 18's ``FilesystemSessionStore``.

The session class is injected (Odoo's ``odoo.http.Session`` in production), so this
module never imports Odoo. Layout in Redis: one key per session,
``session:<prefix>:<identifier>`` where the identifier is the first 42 characters of the
84-character session id, the part Odoo records in ``res.device.log``. The value holds
a hash of the whole id and the session data, so that

- device revocation (``delete_from_identifiers``) and the presence check of identifiers
  are single commands, never a scan of the keyspace;
- knowing a key name (or an identifier) is not enough to use a session: ``get`` also
  needs the second half of the id, compared in constant time;
- nothing in Redis is a usable session id.

Every write is one ``SET ... EX``: a session's time to live is refreshed each time Odoo
saves it. Redis errors become :class:`SessionStoreUnavailable`, whose message names the
Redis server and never a session id.
"""

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import events
from .config import EnvReader, Secret
from .errors import ConfigError, StatelessOdooError
from .process import PerProcess

_logger = logging.getLogger(__name__)

#: Odoo 18 session ids and device identifiers
SID_RE = re.compile(r"^[A-Za-z0-9_-]{84}$")
IDENTIFIER_RE = re.compile(r"^[A-Za-z0-9_-]{42}$")
IDENTIFIER_LENGTH = 42

DEFAULT_EXPIRATION = 7 * 24 * 3600  # Odoo's SESSION_LIFETIME
DEFAULT_EXPIRATION_ANONYMOUS = 3 * 3600


class SessionStoreUnavailable(StatelessOdooError):
    """Redis could not be reached or did not answer in time."""


@dataclass(frozen=True)
class RedisSessionSettings:
    enabled: bool
    url: str | None = None
    host: str = "localhost"
    port: int = 6379
    password: Secret | None = field(default=None, repr=False)
    db: int = 0
    prefix: str = ""
    expiration: int | None = None
    expiration_anonymous: int = DEFAULT_EXPIRATION_ANONYMOUS
    sentinels: tuple = ()
    sentinel_master: str | None = None
    connect_timeout: float = 2.0
    read_timeout: float = 2.0

    @classmethod
    def from_env(cls, environ=None):
        """Read the variables of the older ``session_redis`` addon, and a few more.

        ==================================== =============================================
        ODOO_SESSION_REDIS                   on/off (default off: nothing else is read)
        ODOO_SESSION_REDIS_URL               ``redis://[user:password@]host:port/db``,
                                             ``rediss://`` for TLS; else HOST/PORT/PASSWORD
        ODOO_SESSION_REDIS_HOST              default ``localhost``
        ODOO_SESSION_REDIS_PORT              default 6379
        ODOO_SESSION_REDIS_PASSWORD          password
        ODOO_SESSION_REDIS_DB                database index (default 0)
        ODOO_SESSION_REDIS_PREFIX            namespace of the keys (one per environment)
        ODOO_SESSION_REDIS_EXPIRATION        seconds a logged-in session lives unused
                                             (default: Odoo's sessions.max_inactivity_seconds)
        ODOO_SESSION_REDIS_EXPIRATION_ANONYMOUS  same for anonymous sessions (default 3 h)
        ODOO_SESSION_REDIS_SENTINEL_HOST     sentinel host(s), comma-separated, ``host``
                                             or ``host:port``
        ODOO_SESSION_REDIS_SENTINEL_PORT     default port of the sentinels (26379)
        ODOO_SESSION_REDIS_SENTINEL_MASTER_NAME  the master's name (required with sentinels)
        ODOO_SESSION_REDIS_CONNECT_TIMEOUT   seconds (default 2)
        ODOO_SESSION_REDIS_READ_TIMEOUT      seconds (default 2)
        ==================================== =============================================
        """
        env = environ if isinstance(environ, EnvReader) else EnvReader(environ)
        if not env.bool("ODOO_SESSION_REDIS", False):
            return cls(enabled=False)
        url = env.str("ODOO_SESSION_REDIS_URL")
        if url and not re.match(r"^(redis|rediss|unix)://", url):
            raise ConfigError(
                "ODOO_SESSION_REDIS_URL", "must start with redis://, rediss:// or unix://"
            )
        sentinel_port = env.int("ODOO_SESSION_REDIS_SENTINEL_PORT", 26379, minimum=1, maximum=65535)
        sentinels = tuple(
            _host_port("ODOO_SESSION_REDIS_SENTINEL_HOST", item, sentinel_port)
            for item in (env.str("ODOO_SESSION_REDIS_SENTINEL_HOST") or "").split(",")
            if item.strip()
        )
        master = env.str("ODOO_SESSION_REDIS_SENTINEL_MASTER_NAME")
        if sentinels and not master:
            raise ConfigError(
                "ODOO_SESSION_REDIS_SENTINEL_MASTER_NAME",
                "is not set but ODOO_SESSION_REDIS_SENTINEL_HOST is",
            )
        return cls(
            enabled=True,
            url=url,
            host=env.str("ODOO_SESSION_REDIS_HOST", "localhost"),
            port=env.int("ODOO_SESSION_REDIS_PORT", 6379, minimum=1, maximum=65535),
            password=env.secret("ODOO_SESSION_REDIS_PASSWORD"),
            db=env.int("ODOO_SESSION_REDIS_DB", 0, minimum=0),
            prefix=env.str("ODOO_SESSION_REDIS_PREFIX", ""),
            expiration=env.int("ODOO_SESSION_REDIS_EXPIRATION", None, minimum=60),
            expiration_anonymous=env.int(
                "ODOO_SESSION_REDIS_EXPIRATION_ANONYMOUS",
                DEFAULT_EXPIRATION_ANONYMOUS,
                minimum=60,
            ),
            sentinels=sentinels,
            sentinel_master=master,
            connect_timeout=env.seconds("ODOO_SESSION_REDIS_CONNECT_TIMEOUT", 2.0),
            read_timeout=env.seconds("ODOO_SESSION_REDIS_READ_TIMEOUT", 2.0),
        )

    def where(self):
        """The Redis server, for messages: never a password."""
        if self.sentinels:
            hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"Redis master {self.sentinel_master!r} of sentinels {hosts}"
        if self.url:
            return f"Redis {re.sub(r'//[^@/]*@', '//', self.url)}"
        return f"Redis {self.host}:{self.port}/{self.db}"

    def make_client(self, single_connection=False):
        """A client of the configured Redis. ``single_connection``: one connection,
        connected now, instead of a pool checkout per command (a poll and two getpid
        calls less per command), for a process that serves one request at a time: its
        threads would take turns on it, each behind the others' timeouts. Not with
        sentinels: their pool follows the master through a failover."""
        options = {
            "socket_connect_timeout": self.connect_timeout,
            "socket_timeout": self.read_timeout,
            "health_check_interval": 30,
            # one immediate retry on a broken connection (a Redis restarted, a master
            # demoted by a failover), none on a timeout: a Redis down still fails fast
            "retry": Retry(NoBackoff(), 1),
            "retry_on_error": [redis.exceptions.ConnectionError],
        }
        password = self.password.reveal() if self.password else None
        if self.sentinels:
            sentinel = redis.sentinel.Sentinel(
                list(self.sentinels),
                socket_connect_timeout=self.connect_timeout,
                socket_timeout=self.read_timeout,
            )
            return sentinel.master_for(
                self.sentinel_master, password=password, db=self.db, **options
            )
        if self.url:
            if password:
                options["password"] = password
            pool = redis.ConnectionPool.from_url(self.url, **options)
        else:
            pool = redis.ConnectionPool(
                host=self.host, port=self.port, password=password, db=self.db, **options
            )
        return redis.Redis(connection_pool=pool, single_connection_client=single_connection)


def _host_port(variable, item, default_port):
    host, _, port = item.strip().partition(":")
    if not host:
        raise ConfigError(variable, f"{item.strip()!r} has no host")
    if not port:
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(variable, f"{item.strip()!r} has no valid port")
    return host, int(port)


def generate_key():
    """An Odoo 18 session id: 84 URL-safe base64 characters (as Odoo makes them)."""
    key = str(time.time()).encode() + os.urandom(64)
    return base64.urlsafe_b64encode(hashlib.sha512(key).digest()[:-1]).decode()


def _sid_hash(sid):
    return hashlib.sha256(sid.encode()).hexdigest()


class RedisSessionStore:
    """Odoo 18's session store API over Redis.

    ``session_class(data, sid, new)`` builds sessions (``odoo.http.Session``).
    ``expiration`` is the time to live of logged-in sessions in seconds, or a callable
    returning it (Odoo's ``sessions.max_inactivity_seconds``, read when saving);
    ``on_rotate(session, env)`` runs when a session gets a new id (Odoo recomputes the
    session token there). ``single_connection`` (or a callable answering it, asked in
    each process): see :meth:`RedisSessionSettings.make_client`.
    """

    def __init__(
        self,
        settings,
        session_class,
        *,
        expiration=None,
        on_rotate=None,
        client=None,
        single_connection=False,
    ):
        self.settings = settings
        self.session_class = session_class
        self._expiration = (
            settings.expiration if settings.expiration is not None else expiration
        ) or DEFAULT_EXPIRATION
        self.on_rotate = on_rotate
        self._client = PerProcess(
            lambda: (
                client
                or settings.make_client(
                    single_connection() if callable(single_connection) else single_connection
                )
            )
        )
        self.key_prefix = f"session:{settings.prefix}:" if settings.prefix else "session:"

    @property
    def client(self):
        """This process's client, made at first use (a single-connection client
        connects then: inside :meth:`_call`, whose errors name Redis)."""
        return self._client.get()

    # -- keys and errors ----------------------------------------------------------------

    def _key(self, sid_or_identifier):
        return f"{self.key_prefix}{sid_or_identifier[:IDENTIFIER_LENGTH]}"

    def _unavailable(self, exc, action):
        # the message names the server and the action, never a key (half a session id)
        return SessionStoreUnavailable(
            f"session store: {action} failed: {self.settings.where()} is unreachable or"
            f" too slow ({type(exc).__name__})"
        )

    def _call(self, action, method, *args, **kwargs):
        """``method`` (the name of a client method, or a callable) with ``args``. Redis
        errors, also those of making this process's client, become
        SessionStoreUnavailable."""
        with events.timed("session", op=action):
            return self._call_redis(action, method, *args, **kwargs)

    def _call_redis(self, action, method, *args, **kwargs):
        try:
            fn = getattr(self.client, method) if isinstance(method, str) else method
            return fn(*args, **kwargs)
        except redis.exceptions.RedisError as exc:
            raise self._error(exc, action) from None

    def _error(self, exc, action):
        if isinstance(exc, redis.exceptions.AuthenticationError):  # a ConnectionError
            return SessionStoreUnavailable(
                f"session store: {action} failed: {self.settings.where()} refused the"
                " password (ODOO_SESSION_REDIS_PASSWORD or the URL's)"
            )
        if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            return self._unavailable(exc, action)
        return SessionStoreUnavailable(
            f"session store: {action} failed on {self.settings.where()}: {type(exc).__name__}"
        )

    def expiration_for(self, session):
        if session.get("uid"):
            expiration = self._expiration
            return int(expiration() if callable(expiration) else expiration)
        return self.settings.expiration_anonymous

    # -- Odoo's store API ----------------------------------------------------------------

    def generate_key(self, salt=None):
        return generate_key()

    def is_valid_key(self, key):
        return bool(key) and SID_RE.match(key) is not None

    def new(self):
        return self.session_class({}, self.generate_key(), True)

    def get(self, sid):
        """The session of ``sid``, or a new, empty session when there is none.

        The new session gets a new id, but Odoo 18 then puts back the id the browser
        sent (``Request._get_session_and_dbname``), as with its file store: logging in
        rotates the id, which is what protects against session fixation.
        """
        if not self.is_valid_key(sid):
            return self.new()
        raw = self._call("get", "get", self._key(sid))
        if raw is None:
            return self.new()
        try:
            payload = json.loads(raw)
            stored_hash, data = payload["h"], payload["d"]
            if not isinstance(data, dict):
                raise TypeError("session data is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            _logger.warning("session store: unreadable session payload discarded (%s)", exc)
            return self.new()
        if not hmac.compare_digest(stored_hash, _sid_hash(sid)):
            return self.new()
        return self.session_class(data, sid, False)

    def save(self, session):
        payload = json.dumps({"h": _sid_hash(session.sid), "d": dict(session)})
        ttl = self.expiration_for(session)
        self._call("save", "set", self._key(session.sid), payload, ex=ttl)

    def save_if_modified(self, session):
        if getattr(session, "is_dirty", False) or getattr(session, "should_save", False):
            self.save(session)

    def delete(self, session):
        self._call("delete", "delete", self._key(session.sid))

    def rotate(self, session, env=None):
        self.delete(session)
        session.sid = self.generate_key()
        if self.on_rotate and session.get("uid") and env is not None:
            self.on_rotate(session, env)
        session.should_rotate = False
        self.save(session)

    def vacuum(self, max_lifetime=None):
        """Nothing to do: Redis expires sessions by their time to live."""

    def delete_from_identifiers(self, identifiers):
        keys = [self._key(i) for i in identifiers if i and IDENTIFIER_RE.match(i)]
        if keys:
            self._call("revoke devices", "delete", *keys)

    def get_missing_session_identifiers(self, identifiers):
        identifiers = [i for i in identifiers if i and IDENTIFIER_RE.match(i)]
        if not identifiers:
            return set()
        found = self._call("check identifiers", self._exist, identifiers)
        return {i for i, exists in zip(identifiers, found, strict=True) if not exists}

    def _exist(self, identifiers):
        pipe = self.client.pipeline(transaction=False)
        for identifier in identifiers:
            pipe.exists(self._key(identifier))
        return pipe.execute()

    def ping(self):
        return self._call("ping", "ping")

    # -- moving from file sessions -------------------------------------------------------

    def import_filesystem_sessions(self, path, max_lifetime=DEFAULT_EXPIRATION):
        """Copy Odoo's file sessions (``<path>/<sid[:2]>/<sid>``) into Redis.

        Each keeps the time it has left (its file's age counts); expired, unreadable and
        already imported sessions are skipped. Returns ``(imported, skipped)``. Running
        it again is harmless.
        """
        imported = skipped = 0
        now = time.time()
        for file in Path(path).glob("*/*"):
            sid = file.name
            if not self.is_valid_key(sid) or not file.is_file():
                skipped += 1
                continue
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
                age = now - file.stat().st_mtime
            except (OSError, ValueError):
                skipped += 1
                continue
            if not isinstance(data, dict):
                skipped += 1
                continue
            session = self.session_class(data, sid, False)
            ttl = min(self.expiration_for(session), max_lifetime) - age
            if ttl < 1:
                skipped += 1
                continue
            payload = json.dumps({"h": _sid_hash(sid), "d": data})
            if self._call("import", "set", self._key(sid), payload, ex=int(ttl), nx=True):
                imported += 1
            else:
                skipped += 1
        return imported, skipped
