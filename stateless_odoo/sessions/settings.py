"""The variables of the Redis session store, and the client they configure."""

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..config import EnvReader, Secret
from ..errors import ConfigError

DEFAULT_EXPIRATION_ANONYMOUS = 3 * 3600


@dataclass(frozen=True)
class RedisSessionSettings:
    enabled: bool
    url: str | None = field(default=None, repr=False)  # may hold a password
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
        """Read the ``ODOO_SESSION_REDIS_*`` variables of the older ``session_redis``
        addon, and a few more (the table is in docs/deployment.md, "Sessions:
        session_redis").
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
            # from the parsed parts: never the user information (a password with an
            # @ in it included) nor the query string (?password=...)
            parts = urlsplit(self.url)
            if parts.scheme == "unix":
                return f"Redis unix://{parts.path}"
            host = parts.hostname or "localhost"
            host = f"[{host}]" if ":" in host else host
            try:
                port = f":{parts.port}" if parts.port else ""
            except ValueError:
                port = ""
            return f"Redis {parts.scheme}://{host}{port}{parts.path}"
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
