"""Typed errors of the suite.

Every error names what went wrong in words an operator can act on: the environment
variable, the object key, the container. None of them ever carries a secret.
"""


class StatelessOdooError(Exception):
    """Base class of every error raised by the suite."""


class ConfigError(StatelessOdooError, ValueError):
    """An environment variable is missing or holds a value that cannot be used.

    ``variable`` is the name of the variable; the message says what was expected.
    """

    def __init__(self, variable, message):
        self.variable = variable
        self.message = message
        super().__init__(f"{variable}: {message}")


class StorageError(StatelessOdooError):
    """An object store operation failed.

    ``store`` is the store's URL-like name (``s3://bucket``), ``key`` the object key
    when the error concerns one object.
    """

    def __init__(self, message, *, store=None, key=None):
        self.store = store
        self.key = key
        where = ""
        if store and key:
            where = f" [{store}/{key}]"
        elif store:
            where = f" [{store}]"
        super().__init__(f"{message}{where}")


class ObjectNotFound(StorageError):
    """The object (or its container) does not exist."""


class AccessDenied(StorageError):
    """The credentials were refused or do not allow the operation."""


class StoreUnavailable(StorageError):
    """The store could not be reached or did not answer in time, after retries."""


class StoreMisconfigured(StorageError):
    """The store is reachable but the configuration does not match it."""


class ReadOnlyStore(StorageError):
    """A write or delete was attempted on a store opened read-only.

    Raised when a database restored from another environment tries to write or delete
    in that environment's container.
    """
