"""The cloud platform's startup checks: a matrix of environments and variable sets."""

import pytest

from stateless_odoo.errors import ConfigError
from stateless_odoo.platform_checks import (
    PlatformMisconfigured,
    check,
    environment_kind,
    is_unsafe,
)

S3 = {
    "AWS_HOST": "sos-ch-dk-2.exo.io",
    "AWS_ACCESS_KEY_ID": "EXO123",
    "AWS_SECRET_ACCESS_KEY": "not-shown-secret",
}
SWIFT = {
    "SWIFT_AUTH_URL": "https://auth.cloud.ovh.net/v3",
    "SWIFT_ACCOUNT": "acme",
    "SWIFT_PASSWORD": "not-shown-secret",
}


def good(env, kind="s3"):
    """Seed 001's variables for ``env`` (sessions in Redis, attachments per env)."""
    variables = {
        "RUNNING_ENV": env,
        "ODOO_SESSION_REDIS": "1",
        "ODOO_SESSION_REDIS_HOST": "redis",
        "ODOO_SESSION_REDIS_PASSWORD": "not-shown-secret",
        "ODOO_SESSION_REDIS_PREFIX": f"acme-odoo-{env}",
    }
    if env in ("prod", "integration"):
        variables.update(S3 if kind == "s3" else SWIFT)
        container = "AWS_BUCKETNAME" if kind == "s3" else "SWIFT_WRITE_CONTAINER"
        variables[container] = f"acme-odoo-{env}"
    return variables


def location_for(env, kind="s3"):
    return {"prod": kind, "integration": kind, "test": "db"}.get(env, "file")


@pytest.mark.parametrize("kind", ["s3", "swift"])
@pytest.mark.parametrize("env", ["prod", "integration", "test", "dev", "labs-feature-x"])
def test_good_environments_pass(env, kind):
    assert check(good(env, kind), location=location_for(env, kind)) == []


@pytest.mark.parametrize(
    ("env", "change", "variable"),
    [
        ("prod", {"ODOO_SESSION_REDIS": "0"}, "ODOO_SESSION_REDIS"),
        ("prod", {"ODOO_SESSION_REDIS": "maybe"}, "ODOO_SESSION_REDIS"),
        ("prod", {"ODOO_SESSION_REDIS_HOST": None}, "ODOO_SESSION_REDIS_HOST"),
        (
            "prod",
            {"ODOO_SESSION_REDIS_PREFIX": "acme-odoo-integration"},
            "ODOO_SESSION_REDIS_PREFIX",
        ),
        (
            "integration",
            {"ODOO_SESSION_REDIS_PREFIX": "acme-odoo-prod"},
            "ODOO_SESSION_REDIS_PREFIX",
        ),
        ("test", {"ODOO_SESSION_REDIS_PREFIX": "acme-odoo-prod"}, "ODOO_SESSION_REDIS_PREFIX"),
        ("prod", {"AWS_BUCKETNAME": "acme-odoo-integration"}, "AWS_BUCKETNAME"),
        ("integration", {"AWS_BUCKETNAME": "acme-odoo-prod"}, "AWS_BUCKETNAME"),
        ("prod", {"AWS_ACCESS_KEY_ID": None}, "AWS_ACCESS_KEY_ID"),
        ("prod", {"AWS_SECRET_ACCESS_KEY": ""}, "AWS_SECRET_ACCESS_KEY"),
        ("prod", {"RUNNING_ENV": "production"}, "RUNNING_ENV"),
        ("prod", {"RUNNING_ENV": None}, "RUNNING_ENV"),
    ],
)
def test_each_single_mistake_is_named(env, change, variable):
    variables = good(env)
    for name, value in change.items():
        if value is None:
            variables.pop(name, None)
        else:
            variables[name] = value
    problems = check(variables, location=location_for(env))
    assert [p.variable for p in problems] == [variable]
    assert "not-shown-secret" not in str(problems[0])


def test_attachment_location_per_environment():
    assert [p.variable for p in check(good("prod"), location="file")] == ["ir_attachment.location"]
    problems = check(good("test"), location="s3")
    assert [p.variable for p in problems] == ["ir_attachment.location"]
    assert "'db'" in problems[0].message
    # swift prod with its variables missing
    variables = good("prod", "swift")
    del variables["SWIFT_PASSWORD"]
    assert [p.variable for p in check(variables, location="swift")] == ["SWIFT_PASSWORD"]


def test_several_mistakes_are_reported_at_once():
    variables = good("prod")
    variables.update(ODOO_SESSION_REDIS_PREFIX="", AWS_BUCKETNAME="shared-bucket")
    del variables["AWS_ACCESS_KEY_ID"]
    problems = check(variables, location="s3")
    assert {p.variable for p in problems} == {
        "ODOO_SESSION_REDIS_PREFIX",
        "AWS_ACCESS_KEY_ID",
        "AWS_BUCKETNAME",
    }
    error = PlatformMisconfigured(problems, "prod")
    text = str(error)
    assert "3 problem(s)" in text and "ODOO_CLOUD_PLATFORM_UNSAFE=1" in text
    assert all(p.variable in text for p in problems)
    assert isinstance(error, ConfigError)


def test_running_env_from_server_environment_wins():
    variables = good("prod")
    variables["RUNNING_ENV"] = "garbage"
    assert check(variables, running_env="prod", location="s3") == []


def test_unsafe_is_a_boolean():
    assert is_unsafe({"ODOO_CLOUD_PLATFORM_UNSAFE": "1"})
    assert is_unsafe({"ODOO_CLOUD_PLATFORM_UNSAFE": "yes"})
    assert not is_unsafe({})
    with pytest.raises(ConfigError, match="ODOO_CLOUD_PLATFORM_UNSAFE"):
        is_unsafe({"ODOO_CLOUD_PLATFORM_UNSAFE": "please"})


def test_environment_kinds():
    assert environment_kind("labs-42") == "labs"
    assert environment_kind("prod") == "prod"
    assert environment_kind("staging") is None
