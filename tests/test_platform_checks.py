"""The cloud platform's startup checks: a matrix of environments and variable sets."""

import types

import pytest

from stateless_odoo.errors import ConfigError
from stateless_odoo.observability import odoo_hookup
from stateless_odoo.observability.health import HealthCheck
from stateless_odoo.platform.checks import (
    PlatformMisconfigured,
    check,
    check_database,
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
    "SWIFT_PROJECT_NAME": "1234567890",  # keystone v3 needs one
}


def good(env, kind="s3"):
    """The older addons' variables for ``env`` (sessions in Redis, attachments per env)."""
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
    # dev, labs and the project's own environments (a project has at least these four)
    own = {"ODOO_CLOUD_PLATFORM_ENVIRONMENTS": "staging, Demo"}
    for env in ("dev", "labs-42", "staging", "demo"):
        assert check({**good("integration"), **own, "RUNNING_ENV": env}, location="s3") == []
        problems = check({**good("prod"), **own, "RUNNING_ENV": env}, location="s3")
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


def test_the_same_environment_by_another_spelling_gets_its_rules():
    """'Prod', 'prod ' (a trailing space), 'production' and 'prd' gave no problem at
    all: file sessions and the local filestore were accepted in production."""
    for spelling in ("Prod", "prod ", " PROD", "production", "prd"):
        assert environment_kind(spelling) == "prod"
        problems = check({"RUNNING_ENV": spelling}, location="file")
        assert {p.variable for p in problems} >= {"ODOO_SESSION_REDIS", "ir_attachment.location"}
        assert check({**good("prod"), "RUNNING_ENV": spelling}, location="s3") == []
    assert environment_kind("Integration") == "integration"
    assert environment_kind("development") == "dev"


def test_an_unknown_environment_is_refused_unless_the_project_lists_it():
    for name in ("staging", "prdo", "labsfoo"):
        problems = check({**good("integration"), "RUNNING_ENV": name}, location="s3")
        assert [p.variable for p in problems] == ["RUNNING_ENV"]
        assert "ODOO_CLOUD_PLATFORM_ENVIRONMENTS" in problems[0].message
    listed = {**good("integration"), "ODOO_CLOUD_PLATFORM_ENVIRONMENTS": "staging,qa"}
    assert check({**listed, "RUNNING_ENV": "Staging"}, location="s3") == []


def test_environment_kinds():
    assert environment_kind("labs-42") == "labs"
    assert environment_kind("labs") == "labs"
    assert environment_kind("labsfoo") is None  # not a labs-* name
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


# -- the store's whole configuration, read as the store reads it -------------------------


@pytest.mark.parametrize("env", ["prod", "integration"])
@pytest.mark.parametrize(
    ("kind", "change", "variable", "says"),
    [
        ("swift", {"SWIFT_PROJECT_NAME": None}, "SWIFT_PROJECT_NAME", "keystone v3 needs"),
        ("swift", {"SWIFT_READ_TIMEOUT": "soon"}, "SWIFT_READ_TIMEOUT", "'soon' is not a"),
        ("swift", {"SWIFT_AUTH_URL": "https://id.example/"}, "SWIFT_AUTH_VERSION", "1, 2"),
        ("swift", {"SWIFT_INTERFACE": "private"}, "SWIFT_INTERFACE", "'private' is not"),
        ("s3", {"AWS_READ_TIMEOUT": "soon"}, "AWS_READ_TIMEOUT", "'soon' is not a"),
        ("s3", {"AWS_READ_TIMEOUT": "-1"}, "AWS_READ_TIMEOUT", "must be more than 0"),
        ("s3", {"AWS_ADDRESSING_STYLE": "sideways"}, "AWS_ADDRESSING_STYLE", "'sideways'"),
        ("s3", {"AWS_HOST": "ftp://x"}, "AWS_HOST", "not an http(s)"),
        ("s3", {"AWS_MULTIPART_CHUNKSIZE": "1K"}, "AWS_MULTIPART_CHUNKSIZE", "minimum"),
    ],
)
def test_a_bad_store_value_is_a_problem(env, kind, change, variable, says):
    variables = good(env, kind)
    for name, value in change.items():
        if value is None:
            variables.pop(name, None)
        else:
            variables[name] = value
    (problem,) = check(variables, location=kind)
    assert problem.variable == variable
    assert says in problem.message
    assert str(problem).startswith(f"{variable}: ") and "\n" not in str(problem)
    assert "not-shown-secret" not in str(problem)


def test_every_bad_store_value_is_named_once_and_at_once():
    variables = good("prod", "swift")
    del variables["SWIFT_PROJECT_NAME"]
    del variables["SWIFT_PASSWORD"]  # "is not set" as before, not a second time
    variables.update(SWIFT_READ_TIMEOUT="soon", SWIFT_MAX_ATTEMPTS="0")
    problems = check(variables, location="swift")
    assert [p.variable for p in problems] == [
        "SWIFT_PASSWORD",
        "SWIFT_PROJECT_NAME",
        "SWIFT_READ_TIMEOUT",
        "SWIFT_MAX_ATTEMPTS",
    ]
    assert problems[0].message == "is not set (prod stores attachments in swift)"
    # the recorded platform's store, when the location is not a store
    variables = {**good("prod", "s3"), "AWS_READ_TIMEOUT": "soon"}
    problems = check(variables, location="db", kind="s3")
    assert [p.variable for p in problems] == ["ir_attachment.location", "AWS_READ_TIMEOUT"]


@pytest.mark.parametrize(
    ("kind", "extra", "worst"),
    [
        # 2 calls x (3 attempts x (5 + 10) s + botocore's back-off of at most 1 + 2 s)
        ("s3", {}, 96),
        # 2 x (3 x 15 + 0.5 + 1) + one keystone authentication of 10 s
        ("swift", {}, 103),
        # v1 authenticates with (connect, read): 15 s
        ("swift", {"SWIFT_AUTH_URL": "https://auth.example.net/auth/v1.0"}, 108),
        ("s3", {"AWS_READ_TIMEOUT": "30"}, 216),
        ("s3", {"AWS_MAX_ATTEMPTS": "1", "AWS_CONNECT_TIMEOUT": "2"}, 24),
    ],
)
def test_store_worst_write_below_limit_time_real(kind, extra, worst):
    from stateless_odoo.storage import read_settings

    variables = {**good("prod", kind), **extra}
    settings, errors = read_settings(kind, variables)
    assert errors == []
    assert settings.worst_write_seconds() == worst
    # Odoo's default limit_time_real is 120 s: the defaults fit, with room to spare
    expected = [] if worst < 120 else [settings.timing_variables[1]]
    problems = check(variables, location=kind, limit_time_real=120)
    assert [p.variable for p in problems] == expected
    if expected:
        (problem,) = problems
        assert f"for {worst} s, not less than Odoo's limit_time_real of 120 s" in str(problem)
        assert all(name in str(problem) for name in settings.timing_variables)


def test_store_timing_is_checked_only_where_a_worker_kills_slow_requests():
    variables = {**good("prod", "s3"), "AWS_READ_TIMEOUT": "30"}
    # threaded server (no limit) and test (attachments in the database): no problem
    assert check(variables, location="s3", limit_time_real=None) == []
    assert check(variables, location="s3", limit_time_real=0) == []
    test_env = {**good("test"), "AWS_READ_TIMEOUT": "30", **S3, "AWS_BUCKETNAME": "x"}
    assert check(test_env, location="db", limit_time_real=120) == []
    # integration too; a lower limit refuses the defaults
    (problem,) = check(good("integration", "swift"), location="swift", limit_time_real=60)
    assert problem.variable == "SWIFT_READ_TIMEOUT"
    assert "103 s" in problem.message and "60 s" in problem.message
    # a bad value is named once, as itself
    variables["AWS_READ_TIMEOUT"] = "soon"
    problems = check(variables, location="s3", limit_time_real=120)
    assert [p.variable for p in problems] == ["AWS_READ_TIMEOUT"]
    assert "'soon'" in problems[0].message


def test_a_good_store_configuration_has_no_problem():
    for kind in ("s3", "swift"):
        assert check(good("prod", kind), location=kind) == []
    # every optional variable, with a good value
    s3 = {
        **good("prod", "s3"),
        "AWS_REGION": "ch-dk-2",
        "AWS_ADDRESSING_STYLE": "virtual",
        "AWS_SERVER_SIDE_ENCRYPTION": "aws:kms",
        "AWS_SSE_KMS_KEY_ID": "key",
        "AWS_CONNECT_TIMEOUT": "2.5",
        "AWS_READ_TIMEOUT": "60",
        "AWS_MAX_ATTEMPTS": "5",
        "AWS_MULTIPART_THRESHOLD": "64M",
        "AWS_MULTIPART_CHUNKSIZE": "16M",
        "AWS_MAX_POOL_CONNECTIONS": "32",
    }
    assert check(s3, location="s3") == []
    swift = {
        **good("integration", "swift"),
        "SWIFT_PROJECT_NAME": "",
        "SWIFT_TENANT_NAME": "1234567890",  # the old name
        "SWIFT_AUTH_VERSION": "3",
        "SWIFT_REGION_NAME": "GRA",
        "SWIFT_INTERFACE": "internal",
        "SWIFT_READ_TIMEOUT": "60",
        "SWIFT_MAX_ATTEMPTS": "5",
    }
    assert check(swift, location="swift") == []
    # keystone v1 needs no project
    v1 = {**good("prod", "swift"), "SWIFT_AUTH_URL": "http://swift.example/auth/v1.0"}
    del v1["SWIFT_PROJECT_NAME"]
    assert check(v1, location="swift") == []


def test_the_bucket_name_is_checked_as_the_store_renders_it():
    variables = {**good("prod"), "AWS_BUCKETNAME": "Acme-odoo-prod"}
    (problem,) = check(variables, location="s3")
    assert problem.variable == "AWS_BUCKETNAME"
    assert "is not a valid bucket name" in problem.message
    # {db}: only once the database is known
    variables["AWS_BUCKETNAME"] = "{db}"
    assert check(variables, location="s3") == []
    (problem,) = check(variables, location="s3", db_name="acme-odoo-prod_2")
    assert problem.variable == "AWS_BUCKETNAME"
    assert "'acme-odoo-prod_2' is not a valid bucket name" in problem.message
    # named once, when the production name rule already names it
    variables = {**good("integration"), "AWS_BUCKETNAME": "acme-odoo-prod_x"}
    assert [p.variable for p in check(variables, location="s3")] == ["AWS_BUCKETNAME"]


def test_secrets_never_appear_in_store_problems():
    secret = "s3cr3t-value-never-shown"
    for kind, extra in (
        ("s3", {"AWS_SECRET_ACCESS_KEY": secret, "AWS_ACCESS_KEY_ID": ""}),
        ("swift", {"SWIFT_PASSWORD": secret, "SWIFT_TEMP_URL_KEY": secret}),
    ):
        variables = {**good("prod", kind), **extra}
        variables.update(AWS_READ_TIMEOUT="soon", SWIFT_READ_TIMEOUT="soon")
        problems = check(variables, location=kind)
        assert problems
        assert secret not in str(PlatformMisconfigured(problems, "prod"))


def test_a_store_configuration_error_is_named_once_with_probes(services):
    variables = {
        **good("prod", "swift"),
        "SWIFT_AUTH_URL": services["TEST_KEYSTONE_URL"],
        "SWIFT_READ_TIMEOUT": "soon",
        "ODOO_SESSION_REDIS_HOST": "",
        "ODOO_SESSION_REDIS_URL": services["TEST_REDIS_URL"],
        "ODOO_CLOUD_PLATFORM_PROBES": "1",
    }
    del variables["SWIFT_PROJECT_NAME"]
    problems = check_database(variables, location="swift", db_name="acme")
    assert [p.variable for p in problems] == ["SWIFT_PROJECT_NAME", "SWIFT_READ_TIMEOUT"]
    # probe() alone reports them too, instead of dropping them: the store is not probed
    problems = probe(variables, kind="swift", timeout=5)
    assert [p.variable for p in problems] == ["SWIFT_PROJECT_NAME", "SWIFT_READ_TIMEOUT"]
    assert "not-shown-secret" not in str(problems)


# -- the deep health check's object stores (odoo_glue) ----------------------------------


def fake_odoo(db_name=""):
    return types.SimpleNamespace(tools=types.SimpleNamespace(config={"db_name": db_name}))


def store_health(environ, db_name=""):
    check = HealthCheck(timeout=10)
    for kind, store_check in odoo_hookup._store_checks(fake_odoo(db_name), environ):
        check.add(f"object_storage_{kind}", store_check)
    return check.run()


def test_deep_health_fails_on_a_store_configuration_error(services, make_fresh_store):
    store = make_fresh_store("s3")
    environ = s3_environ(services, store.container)
    ok, report = store_health(environ)
    assert ok, report
    assert set(report["checks"]) == {"object_storage_s3"}

    ok, report = store_health({**environ, "AWS_READ_TIMEOUT": "soon"})
    assert not ok
    error = report["checks"]["object_storage_s3"]["error"]
    assert error.startswith("invalid configuration: AWS_READ_TIMEOUT: 'soon'"), error
    assert services["TEST_S3_SECRET_KEY"] not in error

    swift = {
        "SWIFT_AUTH_URL": services["TEST_KEYSTONE_URL"],
        "SWIFT_ACCOUNT": services["TEST_KEYSTONE_USER"],
        "SWIFT_PASSWORD": "not-shown-secret",
        "SWIFT_WRITE_CONTAINER": "acme-odoo-prod",
    }
    ok, report = store_health({**environ, **swift})
    assert not ok
    assert report["checks"]["object_storage_s3"]["status"] == "pass"
    error = report["checks"]["object_storage_swift"]["error"]
    assert "SWIFT_PROJECT_NAME: is not set" in error
    assert "not-shown-secret" not in error


def test_deep_health_skips_what_it_cannot_check(services, make_fresh_store):
    # a kind whose bucket or container is not set is not configured here
    assert store_health({"AWS_ACCESS_KEY_ID": "x", "SWIFT_AUTH_URL": "x"}) == (
        True,
        {"status": "pass", "checks": {}},
    )
    # {db} and no database given (a server of several databases): not checked
    environ = s3_environ(services, "{db}", AWS_READ_TIMEOUT="10")
    assert store_health(environ)[1]["checks"] == {}
    # ... but its configuration still is
    ok, report = store_health({**environ, "AWS_MAX_ATTEMPTS": "0"})
    assert not ok and "AWS_MAX_ATTEMPTS" in report["checks"]["object_storage_s3"]["error"]
    # with the configured database, the rendered bucket
    store = make_fresh_store("s3")
    ok, report = store_health(environ, db_name=store.container)
    assert ok, report
