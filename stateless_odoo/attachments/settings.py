"""The variables of the attachment addons (each store reads its own, see
:mod:`stateless_odoo.storage`)."""

from dataclasses import dataclass

from ..config import EnvMemo, EnvReader
from ..errors import ConfigError
from .rule import KeepInDatabase

SERVING_MODES = ("stream", "redirect", "x-accel-redirect")

#: how long an object no row names is kept before the collection deletes it: longer
#: than the backups a team usually restores (ODOO_ATTACHMENT_GC_RETENTION)
DEFAULT_GC_RETENTION = 30 * 86400.0


@dataclass(frozen=True)
class AttachmentSettings:
    """The variables of the attachment addons (the stores read their own)."""

    disabled: bool = False
    serving: str = "stream"
    url_expiration: float = 60.0
    x_accel_prefix: str = "/_object_storage/"
    keep_in_database: KeepInDatabase | None = None  # None: the database parameter
    migration_batch: int = 500
    migration_threads: int = 8
    cache_size: int = 64 * 1024 * 1024
    cache_max_object: int = 1024 * 1024
    url_cache: int = 4096
    gc_unnamespaced: bool = False
    create_container: bool = True
    gc_retention: float = DEFAULT_GC_RETENTION

    @classmethod
    def from_env(cls, environ=None):
        env = EnvReader(environ)
        keep = env.str("ODOO_ATTACHMENT_KEEP_IN_DATABASE")
        prefix = env.str("ODOO_ATTACHMENT_X_ACCEL_PREFIX", "/_object_storage/")
        if not prefix.startswith("/"):
            raise ConfigError(
                "ODOO_ATTACHMENT_X_ACCEL_PREFIX", f"{prefix!r} must be a path starting with /"
            )
        return cls(
            disabled=env.bool("DISABLE_ATTACHMENT_STORAGE", False),
            serving=env.choice("ODOO_ATTACHMENT_SERVING", SERVING_MODES, "stream"),
            url_expiration=env.seconds("ODOO_ATTACHMENT_URL_EXPIRATION", 60.0, maximum=86400),
            x_accel_prefix=prefix if prefix.endswith("/") else prefix + "/",
            keep_in_database=None
            if keep is None
            else KeepInDatabase.parse(keep, source="ODOO_ATTACHMENT_KEEP_IN_DATABASE"),
            migration_batch=env.int("ODOO_ATTACHMENT_MIGRATION_BATCH", 500, minimum=1),
            migration_threads=env.int(
                "ODOO_ATTACHMENT_MIGRATION_THREADS", 8, minimum=1, maximum=64
            ),
            cache_size=env.size("ODOO_ATTACHMENT_CACHE_SIZE", 64 * 1024 * 1024, minimum=0),
            cache_max_object=env.size("ODOO_ATTACHMENT_CACHE_MAX_OBJECT", 1024 * 1024, minimum=0),
            url_cache=env.int("ODOO_ATTACHMENT_URL_CACHE", 4096, minimum=0),
            gc_unnamespaced=env.bool("ODOO_ATTACHMENT_GC_UNNAMESPACED", False),
            create_container=env.bool("ODOO_ATTACHMENT_CREATE_CONTAINER", True),
            gc_retention=env.duration("ODOO_ATTACHMENT_GC_RETENTION", DEFAULT_GC_RETENTION),
        )

    @classmethod
    def current(cls):
        """:meth:`from_env` of ``os.environ``, parsed again only when the environment
        changed (they are asked for on every served attachment)."""
        return _CURRENT.get()


_CURRENT = EnvMemo(AttachmentSettings.from_env)
