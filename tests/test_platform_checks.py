"""The cloud platform's startup checks: a matrix of environments and variable sets."""

import pytest

from stateless_odoo.errors import ConfigError
from stateless_odoo.platform_checks import (
    PlatformMisconfigured,
    check,
    environment_kind,
    is_unsafe,
    platform_location,
    probe,
    probe_settings,
)

from .conftest import s3_environ, swift_environ

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
        ("test", {"ODOO_SESSION_REDIS_PREFIX": None}, "ODOO_SESSION_REDIS_PREFIX"),
        ("integration", {"ODOO_SESSION_REDIS_PREFIX": "acme"}, "ODOO_SESSION_REDIS_PREFIX"),
        ("test", {"ODOO_SESSION_REDIS_PREFIX": "-odoo-test"}, "ODOO_SESSION_REDIS_PREFIX"),
        ("prod", {"AWS_BUCKETNAME": "acme-odoo-integration"}, "AWS_BUCKETNAME"),
        ("integration", {"AWS_BUCKETNAME": "acme-odoo-prod"}, "AWS_BUCKETNAME"),
        ("prod", {"AWS_ACCESS_KEY_ID": None}, "AWS_ACCESS_KEY_ID"),
        ("prod", {"AWS_SECRET_ACCESS_KEY": ""}, "AWS_SECRET_ACCESS_KEY"),
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


def test_other_environments_never_use_production_names():
    # dev, labs and names the platform does not know (seed 001: "at least" these four)
    for env in ("dev", "labs-42", "staging", "production"):
        assert check({**good("integration"), "RUNNING_ENV": env}, location="s3") == []
        problems = check({**good("prod"), "RUNNING_ENV": env}, location="s3")
        assert [p.variable for p in problems] == ["ODOO_SESSION_REDIS_PREFIX", "AWS_BUCKETNAME"]
        assert f"only RUNNING_ENV=prod may use it, not {env!r}" in problems[0].message
    # without a store location, only the session prefix
    variables = {**good("prod"), "RUNNING_ENV": "dev"}
    assert [p.variable for p in check(variables, location="db")] == ["ODOO_SESSION_REDIS_PREFIX"]


def test_production_names_as_the_older_addon_matched_them():
    for name in ("acme-odoo-prod", "acme-odoo-prod-ch", "acme-odoo-prod2"):
        assert check({**good("prod"), "AWS_BUCKETNAME": name}, location="s3") == []
        problems = check({**good("integration"), "AWS_BUCKETNAME": name}, location="s3")
        assert [p.variable for p in problems] == ["AWS_BUCKETNAME"]
    # {db} rendered with the database's name, when it is known
    variables = {**good("prod"), "AWS_BUCKETNAME": "{db}-files"}
    assert check(variables, location="s3") == []
    assert check(variables, location="s3", db_name="acme-odoo-prod") == [], "renders"
    problems = check(variables, location="s3", db_name="acme")
    assert [p.message for p in problems] == [
        "'acme-files' is not a <client>-odoo-prod name, as prod needs"
    ]
    integration = {**good("integration"), "AWS_BUCKETNAME": "{db}"}
    assert [p.variable for p in check(integration, location="s3", db_name="acme-odoo-prod")] == [
        "AWS_BUCKETNAME"
    ]
    # the older addon's escape from the name rule
    variables = {**good("prod"), "AWS_BUCKETNAME": "legacy", "AWS_BUCKETNAME_UNSTRUCTURED": "1"}
    assert check(variables, location="s3") == []
    variables["AWS_BUCKETNAME_UNSTRUCTURED"] = "perhaps"
    assert [p.variable for p in check(variables, location="s3")] == ["AWS_BUCKETNAME_UNSTRUCTURED"]


def test_the_location_is_the_store_checked():
    # a recorded platform does not hide the store really in use
    variables = good("prod", "s3")
    problems = check(variables, location="swift", kind="s3")
    assert [p.variable for p in problems] == [
        "ir_attachment.location",
        "SWIFT_AUTH_URL",
        "SWIFT_ACCOUNT",
        "SWIFT_PASSWORD",
        "SWIFT_WRITE_CONTAINER",
    ]
    assert "cloud.platform.kind stores attachments in s3" in problems[0].message


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


def test_the_prefix_message_says_what_is_expected():
    variables = good("integration")
    del variables["ODOO_SESSION_REDIS_PREFIX"]
    (problem,) = check(variables, location="s3")
    assert problem.message == (
        "is not set, it must be <client>-odoo-integration, the prefix of integration's sessions"
    )


def test_a_location_no_installed_addon_serves():
    problems = check(good("prod"), location="s3", installed_kinds=("swift",))
    assert [p.variable for p in problems] == ["ir_attachment.location"]
    assert "attachment_s3 is not installed" in problems[0].message
    # even where nothing else is checked
    problems = check({"RUNNING_ENV": "dev"}, location="swift", installed_kinds=())
    assert [p.variable for p in problems] == ["ir_attachment.location"]
    assert check(good("prod"), location="s3", installed_kinds=("s3",)) == []


@pytest.mark.parametrize(
    ("platform", "which", "location"),
    [
        ("exoscale", "prod", "s3"),
        ("exoscale", "integration", "s3"),
        ("exoscale", "labs", "s3"),
        ("ovh", "prod", "swift"),
        ("ovh", "test", "db"),
        ("exoscale", "dev", "db"),
    ],
)
def test_platform_location(platform, which, location):
    assert platform_location(platform, which) == location


def test_platform_location_refuses_unknown_platforms_and_environments():
    with pytest.raises(ConfigError, match="'aws' is not one of: exoscale, ovh"):
        platform_location("aws", "prod")
    with pytest.raises(ConfigError, match="RUNNING_ENV"):
        platform_location("ovh", None)


def test_probe_settings():
    assert probe_settings({}) == (False, 3.0)
    assert probe_settings(
        {"ODOO_CLOUD_PLATFORM_PROBES": "on", "ODOO_CLOUD_PLATFORM_PROBE_TIMEOUT": "0.5"}
    ) == (True, 0.5)
    with pytest.raises(ConfigError, match="ODOO_CLOUD_PLATFORM_PROBES"):
        probe_settings({"ODOO_CLOUD_PLATFORM_PROBES": "sometimes"})
    with pytest.raises(ConfigError, match="ODOO_CLOUD_PLATFORM_PROBE_TIMEOUT"):
        probe_settings({"ODOO_CLOUD_PLATFORM_PROBE_TIMEOUT": "soon"})


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_probe_passes_against_the_real_services(services, make_fresh_store, kind):
    store = make_fresh_store(kind)
    environ = (s3_environ if kind == "s3" else swift_environ)(services, store.container)
    environ.update(ODOO_SESSION_REDIS="1", ODOO_SESSION_REDIS_URL=services["TEST_REDIS_URL"])
    assert probe(environ, kind=kind, timeout=5) == []


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_probe_names_a_missing_bucket(services, kind):
    environ = (s3_environ if kind == "s3" else swift_environ)(services, "acme-odoo-missing")
    (problem,) = probe(environ, kind=kind, sessions=False, timeout=5)
    variable = "AWS_BUCKETNAME" if kind == "s3" else "SWIFT_WRITE_CONTAINER"
    assert problem.variable == variable
    assert "does not exist" in problem.message
    assert services["TEST_S3_SECRET_KEY"] not in problem.message


def test_probe_names_redis_down_and_a_hung_store(services, closed_port, hanging_port):
    environ = s3_environ(services, "acme-odoo-prod", AWS_HOST=f"http://127.0.0.1:{hanging_port}")
    environ.update(
        ODOO_SESSION_REDIS="1",
        ODOO_SESSION_REDIS_HOST="127.0.0.1",
        ODOO_SESSION_REDIS_PORT=str(closed_port),
        ODOO_SESSION_REDIS_PASSWORD="not-shown-secret",
    )
    problems = probe(environ, kind="s3", timeout=0.5)
    assert {p.variable for p in problems} == {"ODOO_SESSION_REDIS_HOST", "AWS_BUCKETNAME"}
    by_variable = {p.variable: p.message for p in problems}
    assert f"127.0.0.1:{closed_port}" in by_variable["ODOO_SESSION_REDIS_HOST"]
    assert "timed out after 0.5 s" in by_variable["AWS_BUCKETNAME"]
    assert "not-shown-secret" not in str(problems)
