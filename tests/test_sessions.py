"""The Redis session store against the real Redis servers of scripts/services.sh."""

import json
import logging
import os
import pickle
import shutil
import socket
import subprocess
import time
import uuid

import pytest
import redis

from stateless_odoo.errors import ConfigError
from stateless_odoo.sessions.settings import RedisSessionSettings
from stateless_odoo.sessions.store import RedisSessionStore, SessionStoreUnavailable, generate_key


class Session(dict):
    """The shape of ``odoo.http.Session`` the store relies on: a mapping built as
    ``Session(data, sid, new)`` with ``sid``, ``is_new``, ``is_dirty``,
    ``should_rotate``. The store gets its session class injected; this is that class
    for tests without Odoo (the Odoo tier uses Odoo's own)."""

    def __init__(self, data, sid, new=False):
        super().__init__(data)
        self.sid = sid
        self.is_new = new
        self.is_dirty = False
        self.should_rotate = False


def settings_for(url, **extra):
    env = {
        "ODOO_SESSION_REDIS": "1",
        "ODOO_SESSION_REDIS_URL": url,
        "ODOO_SESSION_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
    }
    env.update(extra)
    return RedisSessionSettings.from_env(env)


@pytest.fixture
def store(services):
    return RedisSessionStore(settings_for(services["TEST_REDIS_URL"]), Session)


def logged_in(store, uid=2, **data):
    session = store.new()
    session.update({"uid": uid, "login": "admin", "db": "prod", **data})
    store.save(session)
    return session


# -- settings ------------------------------------------------------------------------------


def test_off_by_default_and_reads_nothing_else():
    settings = RedisSessionSettings.from_env({"ODOO_SESSION_REDIS_PORT": "garbage"})
    assert settings.enabled is False


def test_seed_contract_variables():
    settings = RedisSessionSettings.from_env(
        {
            "ODOO_SESSION_REDIS": "1",
            "ODOO_SESSION_REDIS_HOST": "redis",
            "ODOO_SESSION_REDIS_PASSWORD": "hunter2-secret",
            "ODOO_SESSION_REDIS_PREFIX": "acme-odoo-prod",
            "ODOO_SESSION_REDIS_EXPIRATION": "86400",
        }
    )
    assert (settings.host, settings.port, settings.prefix) == ("redis", 6379, "acme-odoo-prod")
    assert settings.expiration == 86400
    assert "hunter2-secret" not in repr(settings) + settings.where()


def test_where_hides_url_password():
    settings = settings_for("redis://user:hunter2-secret@redis.example:6380/2")
    assert settings.where() == "Redis redis://redis.example:6380/2"


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("redis://redis.example/0?password=hunter2-secret", "Redis redis://redis.example/0"),
        ("redis://:hunter2@secret@redis.example:6380/1", "Redis redis://redis.example:6380/1"),
        ("rediss://u:hunter2-secret@[::1]:6390/0?ssl_ca_certs=/ca", "Redis rediss://[::1]:6390/0"),
        ("unix:///run/redis.sock?password=hunter2-secret", "Redis unix:///run/redis.sock"),
    ],
)
def test_no_password_of_the_url_in_messages_nor_repr(url, where):
    settings = settings_for(url)
    assert settings.where() == where
    for secret in ("hunter2", "secret"):
        assert secret not in repr(settings) + settings.where()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ODOO_SESSION_REDIS", "perhaps"),
        ("ODOO_SESSION_REDIS_PORT", "eighty"),
        ("ODOO_SESSION_REDIS_URL", "http://redis:6379"),
        ("ODOO_SESSION_REDIS_EXPIRATION", "soon"),
        ("ODOO_SESSION_REDIS_EXPIRATION_ANONYMOUS", "5"),
        ("ODOO_SESSION_REDIS_SENTINEL_HOST", "a:99999"),
        ("ODOO_SESSION_REDIS_READ_TIMEOUT", "0"),
    ],
)
def test_bad_values_name_the_variable(variable, value):
    env = {"ODOO_SESSION_REDIS": "1", variable: value}
    with pytest.raises(ConfigError) as info:
        RedisSessionSettings.from_env(env)
    assert info.value.variable == variable


def test_sentinels_list_and_master_required():
    env = {
        "ODOO_SESSION_REDIS": "1",
        "ODOO_SESSION_REDIS_SENTINEL_HOST": "s1, s2:26380,s3",
        "ODOO_SESSION_REDIS_SENTINEL_PORT": "26400",
    }
    with pytest.raises(ConfigError) as info:
        RedisSessionSettings.from_env(env)
    assert info.value.variable == "ODOO_SESSION_REDIS_SENTINEL_MASTER_NAME"
    env["ODOO_SESSION_REDIS_SENTINEL_MASTER_NAME"] = "mymaster"
    settings = RedisSessionSettings.from_env(env)
    assert settings.sentinels == (("s1", 26400), ("s2", 26380), ("s3", 26400))


# -- the store API ----------------------------------------------------------------------------


def test_keys_are_odoo_session_ids(store):
    key = store.generate_key()
    assert len(key) == 84 and store.is_valid_key(key)
    assert not store.is_valid_key(key[:-1]) and not store.is_valid_key("../" + key[3:])
    assert not store.is_valid_key("") and not store.is_valid_key(None)


def test_round_trip(store):
    session = logged_in(store, context={"lang": "fr_FR"})
    again = store.get(session.sid)
    assert again.sid == session.sid and not again.is_new
    assert dict(again) == dict(session)


def test_unknown_or_invalid_id_gives_a_new_session_with_a_new_id(store):
    for sid in (generate_key(), "not-a-session-id", ""):
        session = store.get(sid)
        assert session.is_new and session.sid != sid and store.is_valid_key(session.sid)


def test_knowing_the_identifier_is_not_enough(store):
    session = logged_in(store)
    forged = session.sid[:42] + generate_key()[:42]
    assert store.get(forged).is_new
    assert store.client.exists(store._key(session.sid))
    raw = store.client.get(store._key(session.sid)).decode()
    assert session.sid not in raw and session.sid[42:] not in raw


def test_time_to_live_logged_in_and_anonymous(services):
    settings = settings_for(
        services["TEST_REDIS_URL"], ODOO_SESSION_REDIS_EXPIRATION_ANONYMOUS="600"
    )
    store = RedisSessionStore(settings, Session, expiration=lambda: 5000)
    anonymous = store.new()
    store.save(anonymous)
    assert 590 <= store.client.ttl(store._key(anonymous.sid)) <= 600
    user = logged_in(store)
    assert 4990 <= store.client.ttl(store._key(user.sid)) <= 5000
    store.client.expire(store._key(user.sid), 100)
    store.save(user)  # saving refreshes the time to live
    assert store.client.ttl(store._key(user.sid)) > 4900


def test_expiration_variable_overrides_odoo_setting(services):
    settings = settings_for(services["TEST_REDIS_URL"], ODOO_SESSION_REDIS_EXPIRATION="86400")
    store = RedisSessionStore(settings, Session, expiration=lambda: 5000)
    user = logged_in(store)
    assert store.client.ttl(store._key(user.sid)) > 86000


def test_save_if_modified(store):
    session = store.new()
    store.save_if_modified(session)
    assert store.get(session.sid).is_new
    session.is_dirty = True
    store.save_if_modified(session)
    assert not store.get(session.sid).is_new


def test_delete(store):
    session = logged_in(store)
    store.delete(session)
    assert store.get(session.sid).is_new


def test_a_forged_cookie_neither_overwrites_nor_deletes_another_session(store, caplog):
    """Keys are made of the id's first half, which Odoo logs and keeps in
    res_device_log: a cookie of that half and any other 42 characters gets a new
    session, which Odoo saves under the cookie's id."""
    victim = logged_in(store, secret_note="the victim's")
    forged_sid = victim.sid[:42] + "x" * 42
    forged = store.get(forged_sid)
    assert forged.is_new and not forged.get("uid")
    forged.sid = forged_sid  # as Odoo 18 puts back the id the browser sent
    forged["uid"] = 99
    with caplog.at_level(logging.WARNING, logger="stateless_odoo.sessions.store"):
        store.save(forged)
    assert "forged cookie" in caplog.text and victim.sid not in caplog.text
    store.delete(forged)  # /web/session/logout with the forged cookie
    again = store.get(victim.sid)
    assert (again.get("uid"), again.get("secret_note")) == (2, "the victim's")
    store.delete(victim)
    assert store.get(victim.sid).is_new


def test_rotate(store):
    calls = []
    store.on_rotate = lambda session, env: calls.append(env) or session.update(token="new")
    session = logged_in(store)
    old = session.sid
    session.should_rotate = True
    store.rotate(session, env="the env")
    assert session.sid != old and not session.should_rotate
    assert store.get(old).is_new
    assert store.get(session.sid)["token"] == "new"
    assert calls == ["the env"]


def test_revoke_devices_by_identifier(store):
    sessions = [logged_in(store, uid=i) for i in range(3)]
    store.delete_from_identifiers([sessions[0].sid[:42], sessions[1].sid[:42], "bad/../id", ""])
    assert store.get(sessions[0].sid).is_new and store.get(sessions[1].sid).is_new
    assert not store.get(sessions[2].sid).is_new


def test_missing_identifiers(store):
    present = logged_in(store)
    absent = generate_key()[:42]
    assert store.get_missing_session_identifiers([present.sid[:42], absent, "x"]) == {absent}
    assert store.get_missing_session_identifiers([]) == set()


def test_vacuum_is_harmless(store):
    session = logged_in(store)
    store.vacuum(max_lifetime=0)
    assert not store.get(session.sid).is_new


def test_prefixes_keep_environments_apart(services):
    prod = RedisSessionStore(settings_for(services["TEST_REDIS_URL"]), Session)
    integration = RedisSessionStore(settings_for(services["TEST_REDIS_URL"]), Session)
    session = logged_in(prod)
    assert integration.get(session.sid).is_new
    integration.delete_from_identifiers([session.sid[:42]])
    assert not prod.get(session.sid).is_new


@pytest.mark.parametrize(
    "payload",
    [b"not json", b'{"d": {}}', b'{"h": "x"}', b'{"h": "x", "d": [1]}', b"\xff\xfe", b"[]"],
)
def test_corrupt_payload_gives_a_new_session_and_a_quiet_log(store, payload, caplog):
    session = logged_in(store)
    store.client.set(store._key(session.sid), payload)
    with caplog.at_level(logging.WARNING, logger="stateless_odoo.sessions.store"):
        again = store.get(session.sid)
    assert again.is_new and again.sid != session.sid
    assert session.sid[:42] not in caplog.text


def test_many_sessions_revoked_at_once(store):
    sessions = [store.new() for _ in range(2000)]
    pipe = store.client.pipeline(transaction=False)
    for session in sessions:
        session["uid"] = 1
        pipe.set(store._key(session.sid), json.dumps({"h": "x", "d": {}}), ex=60)
    pipe.execute()
    store.delete_from_identifiers([s.sid[:42] for s in sessions[:1500]])
    missing = store.get_missing_session_identifiers([s.sid[:42] for s in sessions])
    assert len(missing) == 1500


# -- authentication, sentinel ---------------------------------------------------------------


def test_password_redis_by_url_and_by_variables(services):
    by_url = RedisSessionStore(settings_for(services["TEST_REDIS_AUTH_URL"]), Session)
    logged_in(by_url)
    by_vars = RedisSessionStore(
        RedisSessionSettings.from_env(
            {
                "ODOO_SESSION_REDIS": "on",
                "ODOO_SESSION_REDIS_HOST": services["TEST_REDIS_AUTH_HOST"],
                "ODOO_SESSION_REDIS_PORT": services["TEST_REDIS_AUTH_PORT"],
                "ODOO_SESSION_REDIS_PASSWORD": services["TEST_REDIS_AUTH_PASSWORD"],
            }
        ),
        Session,
    )
    assert by_vars.ping()


def test_wrong_password_is_a_clear_error_without_the_password(services):
    settings = RedisSessionSettings.from_env(
        {
            "ODOO_SESSION_REDIS": "1",
            "ODOO_SESSION_REDIS_HOST": services["TEST_REDIS_AUTH_HOST"],
            "ODOO_SESSION_REDIS_PORT": services["TEST_REDIS_AUTH_PORT"],
            "ODOO_SESSION_REDIS_PASSWORD": "wrong-password-xyz",
        }
    )
    store = RedisSessionStore(settings, Session)
    with pytest.raises(SessionStoreUnavailable) as info:
        store.get(generate_key())
    assert "ODOO_SESSION_REDIS_PASSWORD" in str(info.value)
    assert "wrong-password-xyz" not in str(info.value)


def test_through_sentinel(services):
    settings = RedisSessionSettings.from_env(
        {
            "ODOO_SESSION_REDIS": "1",
            "ODOO_SESSION_REDIS_SENTINEL_HOST": services["TEST_REDIS_SENTINEL_HOST"],
            "ODOO_SESSION_REDIS_SENTINEL_PORT": services["TEST_REDIS_SENTINEL_PORT"],
            "ODOO_SESSION_REDIS_SENTINEL_MASTER_NAME": services["TEST_REDIS_SENTINEL_MASTER"],
            "ODOO_SESSION_REDIS_PREFIX": f"sentinel-{uuid.uuid4().hex[:6]}",
        }
    )
    store = RedisSessionStore(settings, Session)
    session = logged_in(store)
    # the same session is in the plain Redis the sentinel points at
    plain = redis.Redis.from_url(services["TEST_REDIS_URL"])
    assert plain.exists(store._key(session.sid))


# -- Redis down, Redis back -------------------------------------------------------------------


def test_redis_down_fails_fast_and_names_redis_not_the_session(closed_port):
    store = RedisSessionStore(settings_for(f"redis://127.0.0.1:{closed_port}/0"), Session)
    sid = generate_key()
    started = time.monotonic()
    with pytest.raises(SessionStoreUnavailable) as info:
        store.get(sid)
    assert time.monotonic() - started < 5
    assert f"127.0.0.1:{closed_port}" in str(info.value)
    assert sid[:42] not in str(info.value)


def test_redis_down_at_first_use_then_started_serves_without_a_new_store(tmp_path):
    """The client of a process is made (and connected) at first use: a Redis that is
    not there yet fails that use, and the next one after it started is served."""
    port = _free_port()
    settings = settings_for(f"redis://127.0.0.1:{port}/0")
    store = RedisSessionStore(settings, Session, single_connection=lambda: True)
    with pytest.raises(SessionStoreUnavailable, match=f"127.0.0.1:{port}"):
        logged_in(store)
    proc = _start_redis(port, tmp_path / "late")
    try:
        session = logged_in(store)
        assert not store.get(session.sid).is_new
        assert store.client.connection is not None  # the single connection, pinned
        assert store.get_missing_session_identifiers([session.sid[:42], "x" * 42]) == {"x" * 42}
    finally:
        proc.kill()
        proc.wait()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis(port, tmp_path, *extra):
    tmp_path.mkdir(parents=True, exist_ok=True)
    command = [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--dir", str(tmp_path), *extra]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    for _ in range(100):
        try:
            client.ping()
            return proc
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def test_redis_goes_away_and_comes_back(tmp_path):
    """A Redis of this test's own (the harness's is shared): stopped, then restarted on
    the same port; the same store object works again without being rebuilt."""
    port = _free_port()
    proc = _start_redis(port, tmp_path)
    store = RedisSessionStore(settings_for(f"redis://127.0.0.1:{port}/0"), Session)
    try:
        session = logged_in(store)
        proc.terminate()
        proc.wait(10)
        with pytest.raises(SessionStoreUnavailable):
            store.get(session.sid)
        with pytest.raises(SessionStoreUnavailable):
            store.save(session)
        proc = _start_redis(port, tmp_path)
        store.save(session)  # this Redis keeps nothing: the session is written again
        assert store.get(session.sid)["uid"] == 2
    finally:
        proc.kill()
        proc.wait()


def test_client_is_rebuilt_after_fork(store):
    session = logged_in(store)
    parent_client = store.client
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            answer = (store.client is not parent_client, store.get(session.sid)["uid"])
        except BaseException as exc:
            answer = ("error", repr(exc))
        os.write(write, pickle.dumps(answer))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pickle.loads(pipe.read())
    os.waitpid(pid, 0)
    assert answer == (True, 2)


# -- moving from file sessions ----------------------------------------------------------------


def test_import_filesystem_sessions(store, tmp_path):
    now = time.time()

    def write(sid, data, age):
        folder = tmp_path / sid[:2]
        folder.mkdir(exist_ok=True)
        path = folder / sid
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        os.utime(path, (now - age, now - age))
        return sid

    fresh = write(generate_key(), {"uid": 2, "login": "admin"}, age=3600)
    anonymous = write(generate_key(), {"context": {}}, age=60)
    expired = write(generate_key(), {"uid": 2}, age=8 * 24 * 3600)
    write(generate_key(), "{not json", age=10)
    write("not-a-sid", {"uid": 1}, age=10)

    imported, skipped = store.import_filesystem_sessions(tmp_path)
    assert (imported, skipped) == (2, 3)
    assert store.get(fresh)["login"] == "admin"
    ttl = store.client.ttl(store._key(fresh))
    assert 7 * 24 * 3600 - 3700 < ttl <= 7 * 24 * 3600 - 3600
    assert not store.get(anonymous).is_new
    assert store.get(expired).is_new
    # a second run changes nothing, and never overwrites a session Redis already has
    assert store.import_filesystem_sessions(tmp_path) == (0, 5)


def test_sentinel_failover_is_followed(tmp_path):
    """A master, a replica and a sentinel of this test's own; a real failover."""
    master_port, replica_port, sentinel_port = _free_port(), _free_port(), _free_port()
    procs = [_start_redis(master_port, tmp_path / "m")]
    procs.append(
        _start_redis(replica_port, tmp_path / "r", "--replicaof", "127.0.0.1", str(master_port))
    )
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor failover-test 127.0.0.1 {master_port} 1\n"
        "sentinel down-after-milliseconds failover-test 1000\n"
        "sentinel failover-timeout failover-test 5000\n"
    )
    procs.append(
        subprocess.Popen(
            [shutil.which("redis-server"), str(conf), "--sentinel"], stdout=subprocess.DEVNULL
        )
    )
    try:
        sentinel = redis.Redis(port=sentinel_port, socket_connect_timeout=0.2)
        _wait(lambda: sentinel.execute_command("SENTINEL", "REPLICAS", "failover-test"))
        settings = RedisSessionSettings.from_env(
            {
                "ODOO_SESSION_REDIS": "1",
                "ODOO_SESSION_REDIS_SENTINEL_HOST": f"127.0.0.1:{sentinel_port}",
                "ODOO_SESSION_REDIS_SENTINEL_MASTER_NAME": "failover-test",
            }
        )
        store = RedisSessionStore(settings, Session)
        before = logged_in(store)
        _wait(lambda: redis.Redis(port=replica_port).exists(store._key(before.sid)))
        sentinel.execute_command("SENTINEL", "FAILOVER", "failover-test")
        _wait(
            lambda: (
                int(
                    sentinel.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "failover-test"
                    )[1]
                )
                == replica_port
            )
        )
        # once the sentinel has demoted the old master, the same store object writes to
        # the new one (until then the old master takes writes: Redis replication is
        # asynchronous, a failover can lose the last writes)
        old_master = redis.Redis(port=master_port)
        _wait(lambda: old_master.info("replication")["role"] == "slave")
        after = logged_in(store)
        assert redis.Redis(port=replica_port).exists(store._key(after.sid))
        assert not store.get(before.sid).is_new
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _wait(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except redis.exceptions.RedisError:
            pass
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_redis_hanging_is_bounded_by_the_read_timeout(hanging_port):
    """A Redis that accepts and never answers (stuck, or a network black hole)."""
    settings = settings_for(
        f"redis://127.0.0.1:{hanging_port}/0",
        ODOO_SESSION_REDIS_READ_TIMEOUT="0.5",
        ODOO_SESSION_REDIS_CONNECT_TIMEOUT="0.5",
    )
    store = RedisSessionStore(settings, Session)
    sid = generate_key()
    started = time.monotonic()
    with pytest.raises(SessionStoreUnavailable) as info:
        store.get(sid)
    assert time.monotonic() - started < 5  # no retry on a timeout: fails fast
    assert "TimeoutError" in str(info.value) and sid[:42] not in str(info.value)


# -- TLS ---------------------------------------------------------------------------------------


def test_tls_redis_with_a_private_ca(services):
    """rediss:// with the CA given in the URL (redis-py passes ssl_* query keys on)."""
    url = f"{services['TEST_REDIS_TLS_URL']}?ssl_ca_certs={services['TEST_REDIS_TLS_CA']}"
    store = RedisSessionStore(settings_for(url), Session)
    session = logged_in(store)
    assert store.get(session.sid)["uid"] == 2
    assert "stateless-tls-password" not in store.settings.where()


def test_tls_redis_untrusted_certificate_is_refused(services):
    store = RedisSessionStore(settings_for(services["TEST_REDIS_TLS_URL"]), Session)
    with pytest.raises(SessionStoreUnavailable) as info:
        store.get(generate_key())
    assert f"127.0.0.1:{services['TEST_REDIS_TLS_PORT']}" in str(info.value)
    assert "stateless-tls-password" not in str(info.value)


def test_plain_connection_to_tls_redis_fails_cleanly(services):
    url = f"redis://:x@127.0.0.1:{services['TEST_REDIS_TLS_PORT']}/0"
    store = RedisSessionStore(settings_for(url), Session)
    with pytest.raises(SessionStoreUnavailable):
        store.get(generate_key())
