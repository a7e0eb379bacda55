"""The cloud platform's startup checks: is this environment configured as it must be?

Pure logic over the environment variables (and the database's ``ir_attachment.location``,
given by the caller); ``cloud_platform`` runs it when a database loads and refuses to
serve it when :func:`check` finds problems. Every problem names its variable and what
was expected; all problems are reported at once. Rules (seed 001, the older addon):

- ``RUNNING_ENV`` is ``prod``, ``integration``, ``test``, ``dev`` or ``labs...``;
- prod, integration and test keep sessions in Redis (``ODOO_SESSION_REDIS`` on, a host,
  URL or sentinel given) with a prefix ``<client>-odoo-<env>`` for prod and never a
  ``-odoo-prod`` one elsewhere;
- prod and integration keep attachments in the object store of the platform's kind
  (``ir_attachment.location`` = ``s3`` or ``swift``, its variables set), prod in a
  ``<client>-odoo-prod`` bucket or container and no other environment in one;
- test keeps attachments in the database (``ir_attachment.location`` = ``db``);
- dev and labs are not checked.

``ODOO_CLOUD_PLATFORM_UNSAFE`` (a boolean) bypasses the checks; the caller warns loudly.
"""

import re
from dataclasses import dataclass

from .config import EnvReader
from .errors import ConfigError

ENVIRONMENTS = ("prod", "integration", "test", "dev")
KINDS = ("s3", "swift")
_PROD_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*-odoo-prod$")
_ANY_PROD = re.compile(r"-odoo-prod$")

#: the variables of each store kind that must be set (values not shown in messages)
STORE_VARIABLES = {
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_BUCKETNAME"),
    "swift": ("SWIFT_AUTH_URL", "SWIFT_ACCOUNT", "SWIFT_PASSWORD", "SWIFT_WRITE_CONTAINER"),
}
#: the variable holding the bucket or container name of each kind
CONTAINER_VARIABLE = {"s3": "AWS_BUCKETNAME", "swift": "SWIFT_WRITE_CONTAINER"}


@dataclass(frozen=True)
class Problem:
    variable: str
    message: str

    def __str__(self):
        return f"{self.variable}: {self.message}"


class PlatformMisconfigured(ConfigError):
    """The environment is not configured as the running environment requires."""

    def __init__(self, problems, running_env):
        self.problems = list(problems)
        self.running_env = running_env
        self.variable = ", ".join(dict.fromkeys(p.variable for p in self.problems))
        lines = "\n".join(f"  - {p}" for p in self.problems)
        Exception.__init__(
            self,
            f"the environment is not configured for {running_env!r}"
            f" ({len(self.problems)} problem(s)); fix them or set"
            f" ODOO_CLOUD_PLATFORM_UNSAFE=1 to start anyway:\n{lines}",
        )


def is_unsafe(environ=None):
    """``ODOO_CLOUD_PLATFORM_UNSAFE`` as a boolean; a value that is not one is an error."""
    return EnvReader(environ).bool("ODOO_CLOUD_PLATFORM_UNSAFE", False)


def environment_kind(running_env):
    """``prod``, ``integration``, ``test``, ``dev`` or ``labs`` (``labs-*``), else None."""
    if running_env in ENVIRONMENTS:
        return running_env
    if running_env and running_env.startswith("labs"):
        return "labs"
    return None


def check(environ=None, *, running_env=None, location=None, kind=None):
    """The problems of this environment, ``[]`` when it is fine.

    ``running_env``: server_environment's ``running_env`` when known (else
    ``RUNNING_ENV``); ``location``: the database's ``ir_attachment.location``; ``kind``:
    the platform's store kind (``s3``/``swift``) when recorded, else guessed from
    ``location``."""
    env = EnvReader(environ)
    problems = []
    running_env = running_env or env.str("RUNNING_ENV")
    which = environment_kind(running_env)
    if which is None:
        shown = "not set" if not running_env else f"{running_env!r} is not"
        problems.append(
            Problem(
                "RUNNING_ENV",
                f"{shown} one of prod, integration, test, dev, labs-*",
            )
        )
        return problems
    if which in ("dev", "labs"):
        return problems
    problems += _check_sessions(env, which)
    problems += _check_attachments(env, which, location, kind)
    return problems


def _check_sessions(env, which):
    problems = []
    try:
        enabled = env.bool("ODOO_SESSION_REDIS", False)
    except ConfigError as exc:
        return [Problem(exc.variable, str(exc).partition(": ")[2])]
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
    problems += _check_prod_name("ODOO_SESSION_REDIS_PREFIX", prefix, which)
    return problems


def _check_attachments(env, which, location, kind):
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
    kind = kind or (location if location in KINDS else None)
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
    container_variable = CONTAINER_VARIABLE[kind]
    container = env.str(container_variable, "")
    if container:
        problems += _check_prod_name(container_variable, container, which)
    return problems


def _check_prod_name(variable, value, which):
    if which == "prod" and not _PROD_NAME.match(value):
        return [Problem(variable, f"{value!r} is not a <client>-odoo-prod name, as prod needs")]
    if which != "prod" and _ANY_PROD.search(value):
        return [Problem(variable, f"{value!r} is production's: {which} must not use it")]
    return []
