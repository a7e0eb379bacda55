"""Environment variables -> typed settings: every bad value names its variable."""

import os
from unittest import mock

import pytest

from stateless_odoo.attachments.settings import AttachmentSettings
from stateless_odoo.config import EnvMemo, EnvReader, Secret, render_db_placeholder
from stateless_odoo.errors import ConfigError
from stateless_odoo.storage import build_store, parse_object_url
from stateless_odoo.storage.s3 import S3Settings
from stateless_odoo.storage.swift import SwiftSettings

S3_OK = {
    "AWS_HOST": "sos-ch-dk-2.exo.io",
    "AWS_REGION": "ch-dk-2",
    "AWS_ACCESS_KEY_ID": "EXO123",
    "AWS_SECRET_ACCESS_KEY": "very-secret-value",
    "AWS_BUCKETNAME": "acme-odoo-prod",
}
SWIFT_OK = {
    "SWIFT_AUTH_URL": "https://auth.cloud.ovh.net/v3",
    "SWIFT_ACCOUNT": "user-abc",
    "SWIFT_PASSWORD": "very-secret-value",
    "SWIFT_WRITE_CONTAINER": "acme-odoo-prod",
    "SWIFT_PROJECT_NAME": "1234567890",
    "SWIFT_REGION_NAME": "GRA",
}


def error_for(callable_, *args, **kwargs):
    with pytest.raises(ConfigError) as info:
        callable_(*args, **kwargs)
    return info.value


# -- EnvReader -------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["1", "true", "True", "YES", "on", "y", " t "])
def test_bool_true_spellings(word):
    assert EnvReader({"X": word}).bool("X") is True


@pytest.mark.parametrize("word", ["0", "false", "No", "OFF", "n", "f"])
def test_bool_false_spellings(word):
    assert EnvReader({"X": word}).bool("X", default=True) is False


def test_bool_unset_or_empty_gives_default():
    assert EnvReader({}).bool("X", default=True) is True
    assert EnvReader({"X": "  "}).bool("X", default=True) is True


def test_bool_garbage_names_variable_and_value():
    error = error_for(
        EnvReader({"ODOO_CLOUD_PLATFORM_UNSAFE": "maybe"}).bool, "ODOO_CLOUD_PLATFORM_UNSAFE"
    )
    assert error.variable == "ODOO_CLOUD_PLATFORM_UNSAFE"
    assert "'maybe'" in str(error) and "not a boolean" in str(error)


def test_int_and_range():
    env = EnvReader({"N": "12", "BAD": "12.5", "NEG": "-1"})
    assert env.int("N") == 12
    assert "not a whole number" in str(error_for(env.int, "BAD"))
    assert "below the minimum" in str(error_for(env.int, "NEG", minimum=0))
    assert "above the maximum" in str(error_for(env.int, "N", maximum=10))


@pytest.mark.parametrize("value", ["abc", "0", "-3", "nan", "inf", "99999"])
def test_seconds_refuses_nonsense(value):
    error = error_for(EnvReader({"AWS_READ_TIMEOUT": value}).seconds, "AWS_READ_TIMEOUT", 30)
    assert error.variable == "AWS_READ_TIMEOUT"


def test_seconds_accepts_fractions():
    assert EnvReader({"T": "0.5"}).seconds("T", 30) == 0.5
    assert EnvReader({}).seconds("T", 30) == 30


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1048576", 1048576),
        ("512K", 512 * 1024),
        ("16M", 16 << 20),
        ("1g", 1 << 30),
        ("8MiB", 8 << 20),
        ("64MB", 64 << 20),
    ],
)
def test_size_suffixes(value, expected):
    assert EnvReader({"S": value}).size("S", 1) == expected


def test_size_garbage():
    assert "not a size" in str(error_for(EnvReader({"S": "16 megs"}).size, "S", 1))


def test_choice():
    env = EnvReader({"C": "Path"})
    assert env.choice("C", {"path", "virtual"}) == "path"
    assert "not one of: a, b" in str(error_for(env.choice, "C", {"a", "b"}))


def test_aliases_main_name_wins():
    env = EnvReader({"NEW": "n", "OLD": "o"})
    assert env.str("NEW", aliases=("OLD",)) == "n"
    assert EnvReader({"OLD": "o"}).str("NEW", aliases=("OLD",)) == "o"
    error = error_for(EnvReader({}).str, "NEW", required=True, aliases=("OLD",))
    assert str(error) == "NEW: is not set (nor its older name OLD)"


def test_error_from_alias_names_the_alias():
    error = error_for(EnvReader({"OLD": "x"}).int, "NEW", aliases=("OLD",))
    assert error.variable == "OLD"


def test_secret_never_shows():
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2"
    assert secret == Secret("hunter2") and bool(secret)


def test_db_placeholder():
    assert render_db_placeholder("V", "acme-{db}", "prod") == "acme-prod"
    assert render_db_placeholder("V", "acme", None) == "acme"
    assert error_for(render_db_placeholder, "V", "acme-{db}", None).variable == "V"


# -- S3 settings -----------------------------------------------------------------------


def test_s3_settings_from_seed_contract():
    s = S3Settings.from_env(S3_OK)
    assert s.endpoint_url == "https://sos-ch-dk-2.exo.io"
    assert s.region == "ch-dk-2"
    assert s.addressing_style == "path"
    assert s.bucket() == "acme-odoo-prod"
    assert s.secret_key.reveal() == "very-secret-value"


def test_s3_settings_repr_hides_secret():
    s = S3Settings.from_env(S3_OK)
    assert "very-secret-value" not in repr(s)
    assert "very-secret-value" not in str(s)


def test_s3_endpoint_keeps_explicit_scheme():
    s = S3Settings.from_env({**S3_OK, "AWS_HOST": "http://127.0.0.1:9000"})
    assert s.endpoint_url == "http://127.0.0.1:9000"


def test_s3_endpoint_garbage():
    error = error_for(S3Settings.from_env, {**S3_OK, "AWS_HOST": "ftp://x"})
    assert error.variable == "AWS_HOST"


def test_s3_no_host_means_aws_and_auto_addressing():
    env = dict(S3_OK)
    del env["AWS_HOST"]
    s = S3Settings.from_env(env)
    assert s.endpoint_url is None and s.addressing_style == "auto"


def test_s3_missing_bucket():
    env = dict(S3_OK)
    del env["AWS_BUCKETNAME"]
    assert str(error_for(S3Settings.from_env, env)) == "AWS_BUCKETNAME: is not set"


@pytest.mark.parametrize("missing", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
def test_s3_half_credentials(missing):
    env = dict(S3_OK)
    del env[missing]
    error = error_for(S3Settings.from_env, env)
    assert error.variable == missing
    assert "very-secret-value" not in str(error)


def test_s3_no_credentials_at_all_is_allowed():
    # boto3's own chain (instance profile, ~/.aws) then applies
    env = {k: v for k, v in S3_OK.items() if not k.startswith("AWS_ACCESS") and "SECRET" not in k}
    assert S3Settings.from_env(env).access_key is None


def test_s3_bucket_placeholder():
    s = S3Settings.from_env({**S3_OK, "AWS_BUCKETNAME": "acme-{db}"})
    assert s.bucket("prod") == "acme-prod"
    error = error_for(s.bucket, "my_db")  # underscore: not a valid bucket name
    assert error.variable == "AWS_BUCKETNAME" and "'acme-my_db'" in str(error)


@pytest.mark.parametrize("name", ["ab", "Acme", "acme..prod", "-acme", "a" * 64])
def test_s3_invalid_bucket_names(name):
    s = S3Settings.from_env({**S3_OK, "AWS_BUCKETNAME": name})
    assert error_for(s.bucket).variable == "AWS_BUCKETNAME"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AWS_READ_TIMEOUT", "soon"),
        ("AWS_CONNECT_TIMEOUT", "0"),
        ("AWS_MAX_ATTEMPTS", "0"),
        ("AWS_MULTIPART_THRESHOLD", "1K"),
        ("AWS_MULTIPART_CHUNKSIZE", "lots"),
        ("AWS_ADDRESSING_STYLE", "sideways"),
        ("AWS_SERVER_SIDE_ENCRYPTION", "rot13"),
        ("AWS_MAX_POOL_CONNECTIONS", "-5"),
    ],
)
def test_s3_bad_optional_values(variable, value):
    error = error_for(S3Settings.from_env, {**S3_OK, variable: value})
    assert error.variable == variable
    assert "very-secret-value" not in str(error)


def test_every_bad_store_variable_is_named_at_first_use():
    error = error_for(
        S3Settings.from_env,
        {**S3_OK, "AWS_READ_TIMEOUT": "soon", "AWS_ADDRESSING_STYLE": "sideways"},
    )
    assert error.variable == "AWS_ADDRESSING_STYLE"  # the first read, for who handles one
    assert str(error).startswith("AWS_ADDRESSING_STYLE: 'sideways'")
    assert "(and AWS_READ_TIMEOUT: " in str(error) and "'soon'" in str(error)
    assert "very-secret-value" not in str(error)
    one = error_for(S3Settings.from_env, {**S3_OK, "AWS_READ_TIMEOUT": "soon"})
    assert "(and " not in str(one)


def test_s3_kms_key_requires_kms():
    error = error_for(S3Settings.from_env, {**S3_OK, "AWS_SSE_KMS_KEY_ID": "k"})
    assert error.variable == "AWS_SSE_KMS_KEY_ID"
    s = S3Settings.from_env(
        {**S3_OK, "AWS_SERVER_SIDE_ENCRYPTION": "aws:kms", "AWS_SSE_KMS_KEY_ID": "k"}
    )
    assert s.sse == "aws:kms"


# -- Swift settings --------------------------------------------------------------------


def test_swift_settings_from_seed_contract():
    s = SwiftSettings.from_env(SWIFT_OK)
    assert s.auth_version == "3"
    assert s.project_name == "1234567890"
    assert s.region_name == "GRA"
    assert s.container() == "acme-odoo-prod"
    assert "very-secret-value" not in repr(s)


def test_swift_tenant_name_is_the_old_name_of_project_name():
    env = dict(SWIFT_OK)
    env["SWIFT_TENANT_NAME"] = env.pop("SWIFT_PROJECT_NAME")
    assert SwiftSettings.from_env(env).project_name == "1234567890"


def test_swift_keystone_needs_a_project():
    env = dict(SWIFT_OK)
    del env["SWIFT_PROJECT_NAME"]
    error = error_for(SwiftSettings.from_env, env)
    assert error.variable == "SWIFT_PROJECT_NAME" and "SWIFT_TENANT_NAME" in str(error)


@pytest.mark.parametrize(
    ("url", "version"),
    [
        ("https://auth.cloud.ovh.net/v3", "3"),
        ("https://auth.cloud.ovh.net/v3/", "3"),
        ("https://keystone.example/v2.0", "2"),
        ("http://127.0.0.1:8080/auth/v1.0", "1"),
        ("http://127.0.0.1:8080/auth/v1.0/", "1"),
    ],
)
def test_swift_auth_version_from_url(url, version):
    env = {**SWIFT_OK, "SWIFT_AUTH_URL": url}
    assert SwiftSettings.from_env(env).auth_version == version


def test_swift_v1_needs_no_project():
    env = {k: v for k, v in SWIFT_OK.items() if k != "SWIFT_PROJECT_NAME"}
    env["SWIFT_AUTH_URL"] = "http://127.0.0.1:8080/auth/v1.0"
    assert SwiftSettings.from_env(env).auth_version == "1"


def test_swift_unknown_auth_path_asks_for_version():
    env = {**SWIFT_OK, "SWIFT_AUTH_URL": "https://identity.example/"}
    assert error_for(SwiftSettings.from_env, env).variable == "SWIFT_AUTH_VERSION"
    env["SWIFT_AUTH_VERSION"] = "3"
    assert SwiftSettings.from_env(env).auth_version == "3"


@pytest.mark.parametrize(
    "missing", ["SWIFT_AUTH_URL", "SWIFT_ACCOUNT", "SWIFT_PASSWORD", "SWIFT_WRITE_CONTAINER"]
)
def test_swift_required(missing):
    env = dict(SWIFT_OK)
    del env[missing]
    assert error_for(SwiftSettings.from_env, env).variable == missing


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SWIFT_AUTH_URL", "auth.cloud.ovh.net"),
        ("SWIFT_AUTH_VERSION", "4"),
        ("SWIFT_INTERFACE", "private"),
        ("SWIFT_READ_TIMEOUT", "x"),
        ("SWIFT_MAX_ATTEMPTS", "100"),
    ],
)
def test_swift_bad_values(variable, value):
    error = error_for(SwiftSettings.from_env, {**SWIFT_OK, variable: value})
    assert error.variable == variable
    assert "very-secret-value" not in str(error)


def test_swift_container_placeholder_and_validity():
    s = SwiftSettings.from_env({**SWIFT_OK, "SWIFT_WRITE_CONTAINER": "acme-{db}"})
    assert s.container("my_db") == "acme-my_db"  # Swift allows underscores
    assert error_for(s.container, "a/b").variable == "SWIFT_WRITE_CONTAINER"
    assert error_for(s.container).variable == "SWIFT_WRITE_CONTAINER"


# -- building stores -------------------------------------------------------------------


def test_build_store_unknown_kind():
    assert "'ftp'" in str(error_for(build_store, "ftp", {}))


def test_build_store_does_not_connect():
    # creating a store is lazy: no network until the first call
    store = build_store("s3", {**S3_OK, "AWS_HOST": "http://127.0.0.1:9"})
    assert store.name == "s3://acme-odoo-prod"
    store = build_store("swift", SWIFT_OK)
    assert store.name == "swift://acme-odoo-prod"
    assert "very-secret-value" not in repr(store)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket/ab/cdef", ("s3", "bucket", "ab/cdef")),
        ("swift://container/key", ("swift", "container", "key")),
        ("ab/abcdef0123", None),
        ("s3://bucket", None),
        ("s3:///key", None),
        ("ftp://x/y", None),
    ],
)
def test_parse_object_url(url, expected):
    assert parse_object_url(url) == expected


def test_settings_read_on_every_request_are_parsed_again_only_when_the_environment_changes():
    parses = []

    def parse():
        parses.append(1)
        return AttachmentSettings.from_env()

    memo = EnvMemo(parse)
    with mock.patch.dict(os.environ, {"ODOO_ATTACHMENT_SERVING": "redirect"}):
        first = memo.get()
        assert memo.get() is first and first.serving == "redirect"
        assert len(parses) == 1
        os.environ["ODOO_ATTACHMENT_SERVING"] = "x-accel-redirect"
        assert memo.get().serving == "x-accel-redirect"
        del os.environ["ODOO_ATTACHMENT_SERVING"]
        assert memo.get().serving == "stream"
        os.environ["ODOO_SOMETHING_ELSE"] = "1"  # any change: parsed again, same answer
        assert memo.get().serving == "stream"
        assert len(parses) == 4
        # a bad value raises on every call, naming the variable; nothing stale is kept
        os.environ["ODOO_ATTACHMENT_SERVING"] = "sideways"
        for _ in range(2):
            assert error_for(memo.get).variable == "ODOO_ATTACHMENT_SERVING"
        os.environ["ODOO_ATTACHMENT_SERVING"] = "redirect"
        assert memo.get().serving == "redirect"
    assert AttachmentSettings.current() == AttachmentSettings.from_env()
