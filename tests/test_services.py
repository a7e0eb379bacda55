"""The services harness itself: what the suite's next layers rely on is really there."""

import pytest
import redis
import redis.sentinel
import requests


def test_plain_redis(services):
    client = redis.Redis.from_url(services["TEST_REDIS_URL"], socket_timeout=5)
    client.set("harness:probe", b"1", ex=10)
    assert client.get("harness:probe") == b"1"


def test_redis_with_password_refuses_anonymous_clients(services):
    anonymous = redis.Redis(
        host=services["TEST_REDIS_AUTH_HOST"],
        port=int(services["TEST_REDIS_AUTH_PORT"]),
        socket_timeout=5,
    )
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    authenticated = redis.Redis.from_url(services["TEST_REDIS_AUTH_URL"], socket_timeout=5)
    assert authenticated.ping()


def test_sentinel_knows_the_master(services):
    sentinel = redis.sentinel.Sentinel(
        [(services["TEST_REDIS_SENTINEL_HOST"], int(services["TEST_REDIS_SENTINEL_PORT"]))],
        socket_timeout=5,
    )
    host, port = sentinel.discover_master(services["TEST_REDIS_SENTINEL_MASTER"])
    assert f"redis://{host}:{port}/0" == services["TEST_REDIS_URL"]
    master = sentinel.master_for(services["TEST_REDIS_SENTINEL_MASTER"], socket_timeout=5)
    assert master.ping()


def test_swift_proxy_is_healthy(services):
    answer = requests.get(f"{services['TEST_S3_ENDPOINT']}/healthcheck", timeout=5)
    assert answer.status_code == 200 and answer.text == "OK"


def test_tls_redis(services):
    client = redis.Redis.from_url(
        services["TEST_REDIS_TLS_URL"], ssl_ca_certs=services["TEST_REDIS_TLS_CA"]
    )
    assert client.ping()
