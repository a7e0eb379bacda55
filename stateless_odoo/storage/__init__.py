"""Object stores: one interface, S3 and Swift implementations.

``build_store("s3" | "swift", environ, db_name=...)`` builds the store an environment
configures; implementations are imported on demand so that a deployment on S3 does not
need the Swift libraries and the other way round.
"""

from ..errors import ConfigError
from .base import (
    CHUNK_SIZE,
    DeleteResult,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    content_disposition,
)

KINDS = ("s3", "swift")

#: the variable naming each kind's container (bucket), ``{db}`` allowed
CONTAINER_VARIABLE = {"s3": "AWS_BUCKETNAME", "swift": "SWIFT_WRITE_CONTAINER"}

__all__ = [
    "CHUNK_SIZE",
    "CONTAINER_VARIABLE",
    "KINDS",
    "DeleteResult",
    "ObjectInfo",
    "ObjectReader",
    "ObjectStore",
    "build_store",
    "config_errors",
    "content_disposition",
    "parse_object_url",
    "store_class",
]


def store_class(kind):
    """The :class:`ObjectStore` class of ``kind``, imported now."""
    if kind == "s3":
        from .s3 import S3Store

        return S3Store
    if kind == "swift":
        from .swift import SwiftStore

        return SwiftStore
    raise ConfigError("storage kind", f"{kind!r} is not one of: {', '.join(KINDS)}")


def build_store(kind, environ=None, *, db_name=None, read_only=False, key_prefix=None):
    """The store of ``kind`` configured by ``environ`` (``os.environ`` by default).
    ``key_prefix``: ``""`` for a store given whole keys (default: the variables')."""
    return store_class(kind).from_env(
        environ, db_name=db_name, read_only=read_only, key_prefix=key_prefix
    )


def read_settings(kind, environ=None):
    """``(settings, errors)`` of the ``kind`` store, read from the environment without
    building the store: the settings are ``None`` when a variable is bad."""
    return store_class(kind).settings_class.read_env(environ)


def config_errors(kind, environ=None, *, db_name=None):
    """Every :class:`ConfigError` of the ``kind`` store's configuration, read as
    :func:`build_store` reads it (the same parsing) but without building the store: no
    client, no connection. ``[]`` when :func:`build_store` would succeed. A bucket or
    container name holding ``{db}`` is checked only when ``db_name`` is given."""
    settings, errors = read_settings(kind, environ)
    if settings is None:
        return errors
    if db_name is None and "{db}" in settings.container_template:
        return []
    try:
        settings.container(db_name)
    except ConfigError as exc:
        return [exc]
    return []


def parse_object_url(url):
    """Split ``s3://bucket/key`` or ``swift://container/key`` into its three parts.

    Returns ``(scheme, container, key)``, or ``None`` when ``url`` is not an object URL
    (a local filestore path such as ``ab/abcdef...``).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in KINDS:
        return None
    container, slash, key = rest.partition("/")
    if not container or not slash or not key:
        return None
    return scheme, container, key
