"""Environment variables parsed into typed values, with errors that name the variable.

All reading of ``os.environ`` by the suite goes through :class:`EnvReader`, so that a bad
value always produces the same kind of message::

    ConfigError: AWS_READ_TIMEOUT: 'abc' is not a number of seconds (example: 30)

Secrets are wrapped in :class:`Secret`, whose ``repr`` and ``str`` never show the value,
and are never echoed in error messages.
"""

import os
import re

from .errors import ConfigError

TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n", "f"})


class Secret:
    """A string that does not show itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value):
        self._value = value

    def reveal(self):
        return self._value

    def __repr__(self):
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other):
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self):
        return hash(self._value)

    def __bool__(self):
        return bool(self._value)


class EnvReader:
    """Typed access to an environment mapping (``os.environ`` by default).

    Every getter takes the variable name, an optional default and, where it makes
    sense, ``aliases``: older names accepted when the main name is not set (the first
    one set wins). An empty value counts as not set.
    """

    def __init__(self, environ=None):
        self.environ = os.environ if environ is None else environ

    def _lookup(self, name, aliases=()):
        for candidate in (name, *aliases):
            value = self.environ.get(candidate)
            if value is not None and value.strip() != "":
                return candidate, value.strip()
        return name, None

    def is_set(self, name, aliases=()):
        return self._lookup(name, aliases)[1] is not None

    def str(self, name, default=None, *, required=False, aliases=()):
        _found, value = self._lookup(name, aliases)
        if value is None:
            if required:
                raise ConfigError(name, "is not set" + _also(aliases))
            return default
        return value

    def secret(self, name, *, required=False, aliases=()):
        value = self.str(name, required=required, aliases=aliases)
        return None if value is None else Secret(value)

    def bool(self, name, default=False, *, aliases=()):
        found, value = self._lookup(name, aliases)
        if value is None:
            return default
        word = value.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConfigError(
            found, f"{value!r} is not a boolean (use 1/0, true/false, yes/no or on/off)"
        )

    def int(self, name, default=None, *, minimum=None, maximum=None, aliases=()):
        found, value = self._lookup(name, aliases)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(found, f"{value!r} is not a whole number") from None
        _check_range(found, number, minimum, maximum)
        return number

    def float(self, name, default=None, *, minimum=None, maximum=None, aliases=()):
        found, value = self._lookup(name, aliases)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(found, f"{value!r} is not a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(found, f"{value!r} is not a finite number")
        _check_range(found, number, minimum, maximum)
        return number

    def seconds(self, name, default, *, maximum=3600.0, aliases=()):
        """A positive duration in seconds (fractions allowed)."""
        found, value = self._lookup(name, aliases)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(
                found, f"{value!r} is not a number of seconds (example: 30)"
            ) from None
        if not 0 < number <= maximum:
            raise ConfigError(found, f"{value!r} must be more than 0 and at most {maximum:g}")
        return number

    def duration(self, name, default, *, aliases=()):
        """A duration of 0 or more seconds; a number of seconds or a number with a unit:
        ``s``, ``m``, ``h``, ``d`` (``30d``, ``12h``, ``90m``)."""
        found, value = self._lookup(name, aliases)
        if value is None:
            return default
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdSMHD]?)", value)
        if not match:
            raise ConfigError(
                found, f"{value!r} is not a duration (examples: 0, 3600, 90m, 12h, 30d)"
            )
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2).lower()]
        return float(match.group(1)) * unit

    def size(self, name, default, *, minimum=1, aliases=()):
        """A size in bytes; accepts suffixes K, M, G (powers of 1024): ``16M``."""
        found, value = self._lookup(name, aliases)
        if value is None:
            return default
        match = re.fullmatch(r"(\d+)\s*([kKmMgG]?)[iI]?[bB]?", value)
        if not match:
            raise ConfigError(found, f"{value!r} is not a size (examples: 1048576, 512K, 16M)")
        number = int(match.group(1)) * 1024 ** " KMG".index(match.group(2).upper() or " ")
        _check_range(found, number, minimum, None)
        return number

    def choice(self, name, choices, default=None, *, aliases=()):
        found, value = self._lookup(name, aliases)
        if value is None:
            return default
        word = value.lower()
        if word not in choices:
            raise ConfigError(found, f"{value!r} is not one of: {', '.join(sorted(choices))}")
        return word


def _also(aliases):
    if not aliases:
        return ""
    return f" (nor its older name{'s' if len(aliases) > 1 else ''} {', '.join(aliases)})"


def _check_range(name, number, minimum, maximum):
    if minimum is not None and number < minimum:
        raise ConfigError(name, f"{number!r} is below the minimum {minimum!r}")
    if maximum is not None and number > maximum:
        raise ConfigError(name, f"{number!r} is above the maximum {maximum!r}")


def server_environment(option=None, environ=None):
    """The server environment's name: Odoo's ``running_env`` option (OCA
    server_environment's) when given, else ``RUNNING_ENV``; ``None`` when neither is
    set. The one place where it is resolved."""
    env = environ if isinstance(environ, EnvReader) else EnvReader(environ)
    return option or env.str("RUNNING_ENV") or None


def render_db_placeholder(variable, template, db_name):
    """Replace ``{db}`` in a container/bucket name template with the database name."""
    if "{db}" not in template:
        return template
    if not db_name:
        raise ConfigError(
            variable,
            f"{template!r} contains {{db}} but no database name is known here",
        )
    return template.replace("{db}", db_name)


class ConfigErrors:
    """The configuration errors of one reading of a store's variables, all of them.

    A settings reader goes on after a bad value (``read`` gives ``default`` for it) so
    that every bad variable is named at once: the store raises one error naming them
    all, the startup checks report each of them.
    """

    def __init__(self):
        self.errors = []

    def read(self, getter, *args, default=None, **kwargs):
        """``getter(*args, **kwargs)``, or ``default`` when it raises a ConfigError."""
        try:
            return getter(*args, **kwargs)
        except ConfigError as exc:
            self.errors.append(exc)
            return default

    def add(self, variable, message):
        self.errors.append(ConfigError(variable, message))

    def __bool__(self):
        return bool(self.errors)


class EnvSettings:
    """Settings whose ``read_env(environ)`` returns ``(settings or None, errors)``: every
    bad variable of one reading (see :class:`ConfigErrors`)."""

    @classmethod
    def read_env(cls, environ=None):
        raise NotImplementedError

    @classmethod
    def from_env(cls, environ=None):
        """Read the settings; raise a ConfigError naming every bad variable (its
        ``variable`` is the first one's)."""
        settings, errors = cls.read_env(environ)
        if errors:
            first, *others = errors
            if not others:
                raise first
            also = "; ".join(str(error) for error in others)
            raise ConfigError(first.variable, f"{first.message} (and {also})")
        return settings


class EnvMemo:
    """What ``parse()`` made of ``os.environ``, parsed again only when the environment
    changed since (a variable set, changed or removed, as ``unittest.mock.patch.dict``
    does in tests).

    For settings read on every request (the attachment settings of each served file): a
    parse is tens of microseconds, comparing the environment with the one parsed about
    one. A parse that raises is not kept: each call raises again, with the same message.
    """

    __slots__ = ("_last", "_parse")

    def __init__(self, parse):
        self._parse = parse
        self._last = None  # (the environment parsed, the result)

    @staticmethod
    def _environment():
        # os.environ's own dict of encoded names and values (CPython's _Environ keeps
        # it in step with putenv): comparing it is a dict comparison, where reading
        # os.environ decodes each name and value
        data = getattr(os.environ, "_data", None)
        return data if isinstance(data, dict) else dict(os.environ)

    def get(self):
        environment = self._environment()
        last = self._last
        if last is not None and last[0] == environment:
            return last[1]
        result = self._parse()
        self._last = (dict(environment), result)
        return result
