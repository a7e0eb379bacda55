"""The cloud platform's startup checks: is this environment configured as it must be?

Pure logic over the environment variables (and the database's ``ir_attachment.location``,
given by the caller); ``cloud_platform`` runs it when a database loads and refuses to
serve it when :func:`check` finds problems. Every problem names its variable and what
was expected; all problems are reported at once. Rules (those of the older Camptocamp
``cloud_platform`` addon):

- ``RUNNING_ENV`` is set: ``prod``, ``integration``, ``test``, ``dev`` (whatever the
  case and surrounding spaces; ``production``, ``prd``, ``development`` and ``testing``
  are their names too), ``labs-<name>``, or one of the project's own environments
  listed in ``ODOO_CLOUD_PLATFORM_ENVIRONMENTS``; anything else (a typo in production)
  is a problem;
- prod, integration and test keep sessions in Redis (``ODOO_SESSION_REDIS`` on, a host,
  URL or sentinel given) with the prefix ``<client>-odoo-<env>...`` of their environment;
- prod and integration keep attachments in the object store (``ir_attachment.location``
  = ``s3`` or ``swift``, the platform's kind when recorded, its variables set, and the
  whole store configuration readable as the store reads it, without connecting);
- a ``<client>-odoo-prod...`` bucket, container or session prefix in prod, and in no
  other environment, dev, labs and other names included (matched from the start, as the
  older addon did; ``AWS_BUCKETNAME_UNSTRUCTURED`` / ``SWIFT_WRITE_CONTAINER_UNSTRUCTURED``
  skip the name rule of the bucket or container);
- test keeps attachments in the database (``ir_attachment.location`` = ``db``);
- a location whose store addon is not installed is a problem everywhere.

``ODOO_CLOUD_PLATFORM_UNSAFE`` (a boolean) bypasses the checks; the caller warns loudly.
``ODOO_CLOUD_PLATFORM_PROBES`` (a boolean, default off) adds :func:`probe`: Redis
answers a PING and the store its bucket or container, each within
``ODOO_CLOUD_PLATFORM_PROBE_TIMEOUT`` seconds (default 3).
"""

import dataclasses
import functools
import re
from dataclasses import dataclass

from ..config import EnvReader, render_db_placeholder, server_environment
from ..errors import ConfigError
from ..observability import health
from ..storage import CONTAINER_VARIABLE, KINDS, config_errors, read_settings

ENVIRONMENTS = ("prod", "integration", "test", "dev")
#: the providers the older addons supported and the object store each uses
PLATFORMS = {"exoscale": "s3", "ovh": "swift"}
#: a production name, as the older addon matched it (from the start, any suffix)
_PROD_NAME = re.compile(r"[A-Za-z0-9._-]+-odoo-prod")
_CLIENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"

#: the variables of each store kind that must be set (values not shown in messages)
STORE_VARIABLES = {
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_BUCKETNAME"),
    "swift": ("SWIFT_AUTH_URL", "SWIFT_ACCOUNT", "SWIFT_PASSWORD", "SWIFT_WRITE_CONTAINER"),
}


@dataclass(frozen=True)
class Problem:
    variable: str
    message: str

    def __str__(self):
        return f"{self.variable}: {self.message}"

    @classmethod
    def of(cls, error):
        """The problem a :class:`ConfigError` describes."""
        return cls(error.variable, error.message)


class PlatformMisconfigured(ConfigError):
    """The environment is not configured as the running environment requires."""

    def __init__(self, problems, running_env):
        self.problems = list(problems)
        self.running_env = running_env
        self.variable = ", ".join(dict.fromkeys(p.variable for p in self.problems))
        lines = "\n".join(f"  - {p}" for p in self.problems)
        self.message = (
            f"the environment is not configured for"
            f" {repr(running_env) if running_env else 'an unknown running environment'}"
            f" ({len(self.problems)} problem(s)); fix them or set"
            f" ODOO_CLOUD_PLATFORM_UNSAFE=1 to start anyway:\n{lines}"
        )
        # the message alone, without ConfigError's "variable: " prefix
        Exception.__init__(self, self.message)


def is_unsafe(environ=None):
    """``ODOO_CLOUD_PLATFORM_UNSAFE`` as a boolean; a value that is not one is an error."""
    return EnvReader(environ).bool("ODOO_CLOUD_PLATFORM_UNSAFE", False)


#: names that clearly mean one of ENVIRONMENTS (after case and spaces are dropped)
ALIASES = {"production": "prod", "prd": "prod", "development": "dev", "testing": "test"}


def environment_kind(running_env):
    """``prod``, ``integration``, ``test``, ``dev`` or ``labs`` (``labs-*``), else None.
    Case and surrounding spaces do not count, and :data:`ALIASES` are their name:
    ``Prod``, ``prod `` and ``production`` are prod."""
    name = (running_env or "").strip().lower()
    name = ALIASES.get(name, name)
    if name in ENVIRONMENTS:
        return name
    if name == "labs" or name.startswith("labs-"):
        return "labs"
    return None


def custom_environments(environ=None):
    """The project's own environment names (ODOO_CLOUD_PLATFORM_ENVIRONMENTS, comma
    separated): checked as dev is, never with production's names."""
    value = EnvReader(environ).str("ODOO_CLOUD_PLATFORM_ENVIRONMENTS", "")
    return {name.strip().lower() for name in value.split(",") if name.strip()}


def platform_location(platform, which):
    """The ``ir_attachment.location`` a platform's install sets for an environment kind:
    the platform's object store in prod, integration and labs, the database in test and
    dev (as the older addons did: test keeps attachments in the database)."""
    try:
        kind = PLATFORMS[platform]
    except KeyError:
        raise ConfigError(
            "platform kind", f"{platform!r} is not one of: {', '.join(PLATFORMS)}"
        ) from None
    if which not in ("prod", "integration", "test", "dev", "labs"):
        raise ConfigError(
            "RUNNING_ENV", "is not set or not one of prod, integration, test, dev, labs-*"
        )
    return kind if which in ("prod", "integration", "labs") else "db"


def check(
    environ=None,
    *,
    running_env=None,
    location=None,
    kind=None,
    installed_kinds=None,
    db_name=None,
    limit_time_real=None,
):
    """The problems of this environment, ``[]`` when it is fine.

    ``running_env``: server_environment's ``running_env`` when known (else
    ``RUNNING_ENV``); ``location``: the database's ``ir_attachment.location``; ``kind``:
    the platform's store kind (``s3``/``swift``) when recorded; ``installed_kinds``: the
    store kinds whose addon is installed, when known; ``db_name``: to render ``{db}`` in
    a bucket or container name; ``limit_time_real``: Odoo's limit of a request's real
    time when a worker enforces it (prefork), which a slow store must fail before.
    prod, integration and test get every rule; dev, labs and other names only "never
    production's bucket, container or prefix"."""
    env = EnvReader(environ)
    running_env = server_environment(running_env, env)
    if not running_env:
        return [
            Problem(
                "RUNNING_ENV",
                "is not set, it must be one of prod, integration, test, dev, labs-*",
            )
        ]
    problems = []
    store_kind = location if location in KINDS else None
    if installed_kinds is not None and store_kind and store_kind not in installed_kinds:
        problems.append(
            Problem(
                "ir_attachment.location",
                f"is {location!r} but the addon attachment_{location} is not installed",
            )
        )
    if kind and store_kind and kind != store_kind:
        problems.append(
            Problem(
                "ir_attachment.location",
                f"is {location!r} but the platform recorded in cloud.platform.kind"
                f" stores attachments in {kind}",
            )
        )
    which = environment_kind(running_env)
    if which is None and running_env.strip().lower() not in custom_environments(env.environ):
        return [
            *problems,
            Problem(
                "RUNNING_ENV",
                f"{running_env!r} is not one of prod, integration, test, dev, labs-<name>:"
                " a project's other environments are listed in"
                " ODOO_CLOUD_PLATFORM_ENVIRONMENTS",
            ),
        ]
    if which in ("prod", "integration", "test"):
        problems += _check_sessions(env, which)
        problems += _check_attachments(env, which, location, store_kind or kind, db_name)
        if which != "test":
            problems += _check_store_timing(env, store_kind or kind, limit_time_real, problems)
        return problems
    # dev, labs and any other environment: never production's names
    prefix = env.str("ODOO_SESSION_REDIS_PREFIX", "")
    if prefix:
        problems += _check_prod_name("ODOO_SESSION_REDIS_PREFIX", prefix, running_env)
    if store_kind:
        problems += _check_container(env, store_kind, running_env, db_name)
    return problems


def _check_sessions(env, which):
    problems = []
    try:
        enabled = env.bool("ODOO_SESSION_REDIS", False)
    except ConfigError as exc:
        return [Problem.of(exc)]
    if not enabled:
        return [Problem("ODOO_SESSION_REDIS", f"must be on in {which} (sessions in Redis)")]
    if not any(
        env.is_set(name)
        for name in (
            "ODOO_SESSION_REDIS_URL",
            "ODOO_SESSION_REDIS_HOST",
            "ODOO_SESSION_REDIS_SENTINEL_HOST",
        )
    ):
        problems.append(
            Problem(
                "ODOO_SESSION_REDIS_HOST",
                "is not set, nor ODOO_SESSION_REDIS_URL or ODOO_SESSION_REDIS_SENTINEL_HOST",
            )
        )
    prefix = env.str("ODOO_SESSION_REDIS_PREFIX", "")
    if not re.match(rf"{_CLIENT}-odoo-{which}", prefix):
        shown = f"{prefix!r} is not" if prefix else "is not set, it must be"
        problems.append(
            Problem(
                "ODOO_SESSION_REDIS_PREFIX",
                f"{shown} <client>-odoo-{which}, the prefix of {which}'s sessions",
            )
        )
    return problems


def _check_attachments(env, which, location, kind, db_name):
    if which == "test":
        if location is not None and location != "db":
            return [
                Problem(
                    "ir_attachment.location",
                    f"is {location!r}: test keeps attachments in the database ('db')",
                )
            ]
        return []
    problems = []
    if location is not None and location not in KINDS:
        problems.append(
            Problem(
                "ir_attachment.location",
                f"is {location!r}: {which} keeps attachments in the object store"
                f" ({' or '.join(KINDS)})",
            )
        )
    if kind is None:
        return problems
    for name in STORE_VARIABLES[kind]:
        if not env.is_set(name):
            problems.append(Problem(name, f"is not set ({which} stores attachments in {kind})"))
    problems += _check_container(env, kind, which, db_name)
    return problems + _check_store(env, kind, db_name, {p.variable for p in problems})


def _check_store(env, kind, db_name, named=()):
    """Every configuration error of the ``kind`` store, read by the store's own parsing
    (:func:`stateless_odoo.storage.config_errors`: no client, no connection), one
    problem per variable; a variable in ``named`` is already reported."""
    try:
        errors = config_errors(kind, env, db_name=db_name)
    except ImportError:
        # the store's library is missing: its addon is not installed, which is a
        # problem of its own (the location's, or the environment's)
        return []
    named = set(named)
    problems = []
    for error in errors:
        if error.variable not in named:
            named.add(error.variable)
            problems.append(Problem.of(error))
    return problems


def _check_store_timing(env, kind, limit_time_real, problems):
    """A store that answers just before its timeouts must still fail a request before
    Odoo's ``limit_time_real`` kills the worker: then the user gets a clear error and
    the log names the store, instead of a bare 502 and a killed worker."""
    if kind is None or (limit_time_real or 0) <= 0:
        return []
    try:
        settings, _errors = read_settings(kind, env)
    except ImportError:
        return []
    named = {p.variable for p in problems}
    if settings is None or named.intersection(settings.timing_variables):
        return []  # a bad value is already a problem of its own
    worst = settings.worst_write_seconds()
    if worst < limit_time_real:
        return []
    connect, read, attempts = settings.timing_variables
    return [
        Problem(
            read,
            f"with {connect}={settings.connect_timeout:g}, {read}={settings.read_timeout:g}"
            f" and {attempts}={settings.max_attempts}, a slow store can hold an attachment"
            f" write for {worst:g} s, not less than Odoo's limit_time_real of"
            f" {limit_time_real:g} s, which kills the worker first; lower them or raise"
            " limit_time_real",
        )
    ]


def _check_container(env, kind, which, db_name):
    """The bucket or container name's rule, unless ``<variable>_UNSTRUCTURED`` (the
    older addon's escape) is on; ``{db}`` is rendered when the database is known."""
    variable = CONTAINER_VARIABLE[kind]
    value = env.str(variable, "")
    try:
        unstructured = env.bool(f"{variable}_UNSTRUCTURED", False)
    except ConfigError as exc:
        return [Problem.of(exc)]
    if not value or unstructured or ("{db}" in value and db_name is None):
        return []
    return _check_prod_name(variable, render_db_placeholder(variable, value, db_name), which)


def _check_prod_name(variable, value, which):
    if which == "prod" and not _PROD_NAME.match(value):
        return [Problem(variable, f"{value!r} is not a <client>-odoo-prod name, as prod needs")]
    if which != "prod" and _PROD_NAME.match(value):
        return [
            Problem(
                variable,
                f"{value!r} is a production name (<client>-odoo-prod): only RUNNING_ENV=prod"
                f" may use it, not {which!r}",
            )
        ]
    return []


def probe_settings(environ=None):
    """``(enabled, timeout)`` of the connectivity probes; bad values are errors."""
    env = EnvReader(environ)
    enabled = env.bool("ODOO_CLOUD_PLATFORM_PROBES", False)
    timeout = env.seconds("ODOO_CLOUD_PLATFORM_PROBE_TIMEOUT", health.DEFAULT_TIMEOUT, maximum=60)
    return enabled, timeout


def probe(environ=None, *, kind=None, sessions=True, db_name=None, timeout=None):
    """Connectivity problems: Redis answers a PING (when ``sessions``), the ``kind``
    store its bucket or container; all at once, each within ``timeout`` seconds. A
    store whose configuration is invalid is not probed: its configuration errors are
    the problems (as :func:`check` reports them for prod and integration)."""
    configuration, answers = _probe(environ, kind, sessions, db_name, timeout)
    return configuration + answers


def _probe(environ, kind, sessions, db_name, timeout):
    """``(configuration problems, connectivity problems)`` of :func:`probe`."""
    from ..sessions.settings import RedisSessionSettings  # redis is imported only to probe

    env = EnvReader(environ)
    timeout = timeout or health.DEFAULT_TIMEOUT
    checks = health.HealthCheck(timeout)
    blame = {}
    configuration = []
    settings = None
    if sessions:
        try:
            settings = RedisSessionSettings.from_env(env)
        except ConfigError as exc:
            # not probed: its configuration is the problem (named once by check_database)
            configuration.append(Problem.of(exc))
    if settings is not None and settings.enabled:
        settings = dataclasses.replace(settings, connect_timeout=timeout, read_timeout=timeout)
        checks.add("redis", lambda: settings.make_client().ping())
        blame["redis"] = ("ODOO_SESSION_REDIS_HOST", settings.where())
    if kind in KINDS:
        from ..storage import build_store

        store = None
        errors = _check_store(env, kind, db_name)
        if not errors:
            try:
                store = build_store(kind, environ, db_name=db_name, read_only=True)
            except ConfigError as exc:  # a name with {db}, no database given
                errors = [Problem.of(exc)]
        configuration += errors  # a store whose configuration is invalid is not probed
        if store is not None:
            checks.add(kind, functools.partial(store.exists, health.HEALTH_KEY))
            blame[kind] = (CONTAINER_VARIABLE[kind], f"the {kind} store")
    _ok, report = checks.run()
    answers = [
        Problem(blame[name][0], f"{blame[name][1]} does not answer: {entry['error']}")
        for name, entry in report["checks"].items()
        if entry["status"] != "pass"
    ]
    return configuration, answers


def check_database(
    environ=None,
    *,
    running_env=None,
    platform=None,
    location=None,
    installed_kinds=None,
    db_name=None,
    probes=None,
    limit_time_real=None,
):
    """:func:`check` for a database's recorded settings (``cloud.platform.kind``,
    ``ir_attachment.location``, the installed store addons), plus :func:`probe` when
    ``probes`` (default: ``ODOO_CLOUD_PLATFORM_PROBES``). Bad values of the checks' own
    variables raise :class:`ConfigError`."""
    env = EnvReader(environ)
    enabled, timeout = probe_settings(environ)
    kind = PLATFORMS.get(platform)
    problems = []
    if platform and not kind:
        problems.append(
            Problem("cloud.platform.kind", f"{platform!r} is not one of {', '.join(PLATFORMS)}")
        )
    running_env = server_environment(running_env, env)
    problems += check(
        environ,
        running_env=running_env,
        location=location,
        kind=kind,
        installed_kinds=installed_kinds,
        db_name=db_name,
        limit_time_real=limit_time_real,
    )
    which = environment_kind(running_env)
    if (enabled if probes is None else probes) and which not in (None, "dev", "labs"):
        usable = installed_kinds if installed_kinds is not None else KINDS
        configuration, answers = _probe(
            environ, location if location in usable else None, True, db_name, timeout
        )
        # a configuration error check() has already named is not named twice
        named = {p.variable for p in problems}
        problems += [p for p in configuration if p.variable not in named] + answers
    return problems
