"""Object stores against the real Swift of scripts/services.sh, through its S3 API and
its native API."""

import hashlib
import io
import os
import pickle
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from stateless_odoo.errors import (
    AccessDenied,
    ObjectNotFound,
    ReadOnlyStore,
    StoreMisconfigured,
    StoreUnavailable,
)
from stateless_odoo.storage import build_store
from stateless_odoo.storage.s3 import S3Store

from .conftest import make_store, s3_environ, swift_environ, unique_name


def put_many(store, keys, payload=b"x"):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: store.put(k, payload), keys))


# -- round trips -------------------------------------------------------------------------


def test_round_trip_bytes(store):
    data = os.urandom(3000)
    info = store.put("ab/abcdef", data, content_type="application/pdf")
    assert info.size == 3000
    assert info.etag == hashlib.md5(data).hexdigest()
    head = store.head("ab/abcdef")
    assert head.size == 3000
    assert head.content_type == "application/pdf"
    assert store.get_bytes("ab/abcdef") == data
    assert store.exists("ab/abcdef")


def test_empty_object_is_not_an_error(store):
    store.put("empty", b"")
    assert store.get_bytes("empty") == b""
    assert store.head("empty").size == 0


def test_put_from_file_object_of_unknown_size(store):
    data = os.urandom(300_000)

    class Stream(io.RawIOBase):  # no seek, no len: size unknown to the store
        def __init__(self):
            self.inner = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buffer):
            return self.inner.readinto(buffer)

    info = store.put("streamed", Stream())
    assert info.size == 300_000
    assert store.get_bytes("streamed") == data


def test_put_from_file_object_of_known_size(store, tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(100_000))
    with path.open("rb") as handle:
        store.put("from-file", handle, size=100_000)
    assert store.get_bytes("from-file") == path.read_bytes()


def test_streamed_read_in_chunks_and_by_read(store):
    data = os.urandom(1_000_000)
    store.put("big", data)
    with store.open("big", chunk_size=65536) as reader:
        assert reader.info.size == 1_000_000
        chunks = list(reader)
    assert max(len(c) for c in chunks) <= 65536
    assert b"".join(chunks) == data
    with store.open("big") as reader:
        head = reader.read(10)
        rest = reader.read()
    assert head + rest == data


def test_ranged_read_streams_only_the_part(store):
    payload = os.urandom(300_000)
    store.put("ranged", payload)
    with store.open("ranged", byte_range=(1000, 2000)) as reader:
        assert reader.info.size == 1000
        assert reader.readall() == payload[1000:2000]
    with store.open("ranged", byte_range=(299_990, 300_000), chunk_size=4) as reader:
        assert b"".join(reader) == payload[-10:]
    with pytest.raises(ValueError):
        store.open("ranged", byte_range=(5, 5))


def test_overwrite(store):
    store.put("k", b"one")
    store.put("k", b"two")
    assert store.get_bytes("k") == b"two"


def test_unicode_and_slashes_in_keys(store):
    key = "db/checklist/é à/ü.bin"
    store.put(key, b"content")
    assert store.get_bytes(key) == b"content"
    assert [i.key for i in store.list("db/checklist/")] == [key]


# -- missing objects and containers -----------------------------------------------------------


def test_missing_object_is_an_error_naming_the_key(store):
    with pytest.raises(ObjectNotFound) as info:
        store.get_bytes("no/such/key")
    assert info.value.key == "no/such/key"
    assert "no/such/key" in str(info.value) and store.container in str(info.value)
    with pytest.raises(ObjectNotFound):
        store.head("no/such/key")
    assert not store.exists("no/such/key")


@pytest.mark.parametrize("kind", ["s3", "swift"])
@pytest.mark.parametrize("operation", ["list", "head", "get", "exists", "put"])
def test_missing_container_is_a_configuration_error(services, kind, operation):
    """A misspelt bucket must not look like 'every attachment is missing'."""
    store = make_store(kind, services, container=unique_name("absent"))
    calls = {
        "list": lambda: list(store.list()),
        "head": lambda: store.head("k"),
        "get": lambda: store.get_bytes("k"),
        "exists": lambda: store.exists("k"),
        "put": lambda: store.put("k", b"v"),
    }
    with pytest.raises(StoreMisconfigured) as info:
        calls[operation]()
    variable = "AWS_BUCKETNAME" if kind == "s3" else "SWIFT_WRITE_CONTAINER"
    assert variable in str(info.value)


# -- delete and list ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_delete_many_in_batches_and_list_pages(kind, make_fresh_store):
    # a batch of 1,000 deletes takes the one-replica Swift several seconds on a loaded
    # machine: a read timeout above the fixtures' 10 s
    store = make_fresh_store(kind, AWS_READ_TIMEOUT="60", SWIFT_READ_TIMEOUT="60")
    keys = [f"many/{i:05d}" for i in range(1150)]  # more than one batch, one page
    put_many(store, keys)
    listed = [info.key for info in store.list("many/")]
    assert listed == keys
    result = store.delete_many([*keys, "many/never-existed"])
    if isinstance(store, S3Store):  # S3 does not tell deleted from absent
        assert result.deleted == len(keys) + 1
    else:
        assert (result.deleted, result.not_found) == (len(keys), 1)
    assert list(store.list("many/")) == []


def test_delete_missing_key_is_not_an_error(store):
    store.delete("absent")
    store.put("present", b"1")
    store.delete_many(["present", "present"])
    assert not store.exists("present")


def test_copy_inside_the_store(store, make_fresh_store):
    """A server-side copy: in the same container, and from another container of the
    same account read through a read-only view (a database duplicated, renamed)."""
    store.put("src/a", b"content to copy", content_type="application/pdf")
    info = store.copy("src/a", "dst/a")
    assert info.size == len(b"content to copy")
    assert store.get_bytes("dst/a") == b"content to copy"
    assert store.exists("src/a")
    other = make_fresh_store(store.scheme)
    other.put("theirs", b"from another container")
    store.copy("theirs", "mine", source=store.readonly_view(other.container))
    assert store.get_bytes("mine") == b"from another container"
    with pytest.raises(ObjectNotFound) as info:
        store.copy("absent", "dst/absent")
    assert "absent" in str(info.value) and "does not exist" in str(info.value)
    with pytest.raises(ReadOnlyStore):
        store.readonly_view(other.container).copy("theirs", "again")
    # above the multipart threshold: uploaded in parts, copied whole
    big = os.urandom(17 * 1024 * 1024)
    store.put("big", big)
    store.copy("big", "big-copy")
    assert store.get_bytes("big-copy") == big


def test_list_by_prefix(store):
    for key in ("a/1", "a/2", "b/1", "ab/1"):
        store.put(key, b"x")
    assert [i.key for i in store.list("a/")] == ["a/1", "a/2"]
    assert [i.key for i in store.list("a")] == ["a/1", "a/2", "ab/1"]
    assert {i.key for i in store.list()} == {"a/1", "a/2", "b/1", "ab/1"}
    assert all(i.size == 1 for i in store.list())


# -- key prefix -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_key_prefix_is_added_and_hidden(services, make_fresh_store, kind):
    variable = "AWS_KEY_PREFIX" if kind == "s3" else "SWIFT_KEY_PREFIX"
    plain = make_fresh_store(kind)
    prefixed = build_store(
        kind,
        (s3_environ if kind == "s3" else swift_environ)(
            services, plain.container, **{variable: "odoo/"}
        ),
    )
    prefixed.put("ab/cd", b"x")
    assert [i.key for i in plain.list()] == ["odoo/ab/cd"]
    assert [i.key for i in prefixed.list()] == ["ab/cd"]
    assert prefixed.get_bytes("ab/cd") == b"x"


# -- presigned / temp URLs ------------------------------------------------------------------


def test_presigned_url_serves_the_object_with_its_file_name(store):
    data = os.urandom(5000)
    store.put("doc", data, content_type="application/pdf")
    url = store.presigned_get_url("doc", expires=60, filename="Facture été 2026.pdf")
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200
    assert answer.content == data
    disposition = answer.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert "Facture%20%C3%A9t%C3%A9%202026.pdf" in disposition
    assert answer.headers["Content-Type"] == "application/pdf"


@pytest.mark.parametrize("key", ["a b/c d.pdf", "é/ü ñ.bin", "100%/x+y&z=1"])
def test_presigned_url_of_keys_that_need_quoting(store, key):
    store.put(key, b"quoted")
    answer = requests.get(store.presigned_get_url(key, filename="x.bin"), timeout=10)
    assert answer.status_code == 200 and answer.content == b"quoted"


def test_presigned_url_inline(store):
    store.put("img", b"png", content_type="image/png")
    url = store.presigned_get_url("img", filename="a.png", inline=True)
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].startswith("inline")


def test_s3_presigned_url_overrides_content_type(make_fresh_store):
    store = make_fresh_store("s3")
    store.put("k", b"x", content_type="application/octet-stream")
    url = store.presigned_get_url("k", content_type="text/plain")
    assert requests.get(url, timeout=10).headers["Content-Type"].startswith("text/plain")


def test_presigned_url_expires(store):
    store.put("doc", b"secret")
    url = store.presigned_get_url("doc", expires=1)
    time.sleep(2.1)
    answer = requests.get(url, timeout=10)
    assert answer.status_code in (401, 403)
    assert b"secret" not in answer.content


def test_presigned_url_is_tied_to_its_object(store):
    store.put("one", b"1")
    store.put("two", b"2")
    url = store.presigned_get_url("one")
    tampered = url.replace("/one?", "/two?")
    assert requests.get(tampered, timeout=10).status_code in (401, 403)


def test_swift_temp_url_key_from_settings(make_fresh_store, services):
    store = make_fresh_store("swift", SWIFT_TEMP_URL_KEY=services["TEST_SWIFT_TEMP_URL_KEY"])
    store.put("k", b"v")
    assert requests.get(store.presigned_get_url("k"), timeout=10).content == b"v"


def test_swift_wrong_temp_url_key_is_refused_by_the_server(make_fresh_store):
    store = make_fresh_store("swift", SWIFT_TEMP_URL_KEY="not-the-key")
    store.put("k", b"v")
    assert requests.get(store.presigned_get_url("k"), timeout=10).status_code == 401


def _proxy_log(services):
    return Path(services["STATELESS_SERVICES_DIR"]) / "log" / "swift-proxy.log"


def _proxy_log_lines(services, start, needle, count, timeout=10):
    """The Swift proxy's access lines written after byte ``start`` that contain
    ``needle``, once ``count`` of them are there (the log is written asynchronously)."""
    log = _proxy_log(services)
    deadline = time.monotonic() + timeout
    while True:
        with log.open("rb") as handle:
            handle.seek(start)
            lines = [
                line
                for line in handle.read().decode(errors="replace").splitlines()
                if needle in line
            ]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_newest_head_sees_a_delete_at_once(make_fresh_store, kind):
    store = make_fresh_store(kind)
    store.put("ab/gone", b"content")
    assert store.exists("ab/gone", newest=True)
    assert store.head("ab/gone", newest=True).size == 7
    store.delete("ab/gone")
    assert not store.exists("ab/gone", newest=True)


def test_swift_newest_head_asks_every_replica(services, make_fresh_store):
    # The harness's Swift keeps one replica, so a stale answer cannot be produced
    # here; what can be seen is the request: X-Newest on the deduplication HEAD (the
    # proxy logs that one header, see scripts/services/proxy-server.conf.in), and not
    # on a plain HEAD, which stays a one-replica read.
    store = make_fresh_store("swift")
    store.put("ab/newest", b"content")
    start = _proxy_log(services).stat().st_size
    assert store.exists("ab/newest", newest=True)
    assert not store.exists("ab/plain")
    newest = _proxy_log_lines(services, start, f"HEAD /v1/AUTH_test/{store.container}/ab/newest", 1)
    plain = _proxy_log_lines(services, start, f"HEAD /v1/AUTH_test/{store.container}/ab/plain", 1)
    assert len(newest) == 1 and "X-Newest:%20true" in newest[0], newest
    assert len(plain) == 1 and "X-Newest" not in plain[0], plain


# -- one Swift, two APIs ------------------------------------------------------------------------


def test_s3_and_swift_see_the_same_objects(services, make_fresh_store):
    via_s3 = make_fresh_store("s3")
    via_swift = make_store("swift", services, container=via_s3.container)
    data = os.urandom(10_000)
    via_s3.put("from/s3", data, content_type="image/png")
    assert via_swift.get_bytes("from/s3") == data
    assert via_swift.head("from/s3").content_type == "image/png"
    via_swift.put("from/swift", data[::-1])
    assert via_s3.get_bytes("from/swift") == data[::-1]
    assert [i.key for i in via_s3.list("from/")] == ["from/s3", "from/swift"]
    via_swift.delete_many(["from/s3"])
    assert not via_s3.exists("from/s3")


# -- read-only stores (another environment's container) -------------------------------------


def test_read_only_view_reads_but_never_writes(services, make_fresh_store, store):
    kind = "s3" if isinstance(store, S3Store) else "swift"
    prod = make_fresh_store(kind)
    prod.put("prod/object", b"prod data")
    view = store.readonly_view(prod.container)
    assert view.read_only and view.name == prod.name
    assert view.get_bytes("prod/object") == b"prod data"
    with pytest.raises(ReadOnlyStore) as info:
        view.put("prod/object", b"overwritten")
    assert prod.container in str(info.value)
    with pytest.raises(ReadOnlyStore):
        view.delete_many(["prod/object"])
    with pytest.raises(ReadOnlyStore):
        view.ensure_container()
    assert prod.get_bytes("prod/object") == b"prod data"


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_store_built_read_only(services, make_fresh_store, kind):
    existing = make_fresh_store(kind)
    environ = (s3_environ if kind == "s3" else swift_environ)(services, existing.container)
    store = build_store(kind, environ, read_only=True)
    with pytest.raises(ReadOnlyStore):
        store.put("x", b"x")


# -- credentials --------------------------------------------------------------------------------


def test_s3_wrong_secret(services, make_fresh_store):
    good = make_fresh_store("s3")
    bad = make_store(
        "s3", services, container=good.container, AWS_SECRET_ACCESS_KEY="wrong-secret-xyz"
    )
    with pytest.raises(AccessDenied) as info:
        bad.put("k", b"v")
    assert "AWS_SECRET_ACCESS_KEY" in str(info.value)
    assert "wrong-secret-xyz" not in str(info.value)


def test_swift_wrong_password(services):
    bad = make_store("swift", services, SWIFT_PASSWORD="wrong-password-xyz")
    with pytest.raises(AccessDenied) as info:
        bad.head("k")
    assert "SWIFT_PASSWORD" in str(info.value)
    assert "wrong-password-xyz" not in str(info.value)


def test_s3_other_account_is_denied(services, make_fresh_store):
    mine = make_fresh_store("s3")
    mine.put("k", b"v")
    other = make_store(
        "s3",
        services,
        container=mine.container,
        AWS_ACCESS_KEY_ID=services["TEST_S3_OTHER_ACCESS_KEY"],
        AWS_SECRET_ACCESS_KEY=services["TEST_S3_OTHER_SECRET_KEY"],
    )
    # s3api looks the bucket up in the caller's own account: NoSuchBucket, not 403
    with pytest.raises((AccessDenied, StoreMisconfigured)):
        other.get_bytes("k")
    with pytest.raises((AccessDenied, StoreMisconfigured)):
        other.put("k", b"overwrite")
    assert mine.get_bytes("k") == b"v"


def test_swift_other_account_is_denied(services, make_fresh_store):
    mine = make_fresh_store("swift")
    mine.put("k", b"v")
    other_clients = make_store(
        "swift",
        services,
        SWIFT_ACCOUNT=services["TEST_SWIFT_OTHER_ACCOUNT"],
        SWIFT_PASSWORD=services["TEST_SWIFT_OTHER_PASSWORD"],
    )
    # the other user addresses our account's container by its storage URL
    conn = other_clients.connection
    url, token = conn.get_auth()
    ours = mine.connection.get_auth()[0]
    from swiftclient import client as swift_client

    with pytest.raises(swift_client.ClientException) as info:
        swift_client.get_object(ours, token, mine.container, "k")
    assert info.value.http_status == 403
    assert url != ours


# -- unreachable and hanging endpoints --------------------------------------------------------


def _unreachable_store(kind, services, port, **extra):
    if kind == "s3":
        extra.setdefault("AWS_HOST", f"http://127.0.0.1:{port}")
        extra.setdefault("AWS_MAX_ATTEMPTS", "2")
    else:
        extra.setdefault("SWIFT_AUTH_URL", f"http://127.0.0.1:{port}/auth/v1.0")
        extra.setdefault("SWIFT_MAX_ATTEMPTS", "2")
    return make_store(kind, services, **extra)


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_endpoint_down(services, closed_port, kind):
    store = _unreachable_store(kind, services, closed_port)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        store.get_bytes("k")
    assert time.monotonic() - started < 15
    assert store.container in str(info.value)
    with pytest.raises(StoreUnavailable):
        store.put("k", b"v")


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_endpoint_hanging_is_bounded_by_the_read_timeout(services, hanging_port, kind):
    prefix = "AWS" if kind == "s3" else "SWIFT"
    store = _unreachable_store(kind, services, hanging_port, **{f"{prefix}_READ_TIMEOUT": "1"})
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.get_bytes("k")
    elapsed = time.monotonic() - started
    # two attempts of one second each, plus back-off: what the platform checks count
    # against Odoo's limit_time_real (worst_call_seconds) bounds what happens
    assert elapsed <= store.settings.worst_call_seconds() + 0.5, elapsed
    assert elapsed >= 2 * store.settings.read_timeout - 0.1, elapsed


# -- processes ----------------------------------------------------------------------------------


def test_client_is_rebuilt_after_fork(store):
    store.put("k", b"parent")
    parent_client = store.client if isinstance(store, S3Store) else store.connection
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read)
            child_client = store.client if isinstance(store, S3Store) else store.connection
            store.put("k2", b"child")
            answer = (child_client is not parent_client, store.get_bytes("k"))
        except BaseException as exc:  # report anything to the parent
            answer = ("error", repr(exc))
        os.write(write, pickle.dumps(answer))
        os._exit(0)
    os.close(write)
    answer = read_child_answer(read, pid)
    assert answer == (True, b"parent")
    assert store.get_bytes("k2") == b"child"
    # the parent still uses its own client
    assert (store.client if isinstance(store, S3Store) else store.connection) is parent_client


def read_child_answer(read, pid, timeout=60):
    """The child's pickled answer; a child stuck (a lock inherited locked) fails."""
    import select

    ready, _, _ = select.select([read], [], [], timeout)
    if not ready:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child did not answer")
    with os.fdopen(read, "rb") as pipe:
        answer = pickle.loads(pipe.read())
    os.waitpid(pid, 0)
    return answer


def test_threads_share_one_store(store):
    keys = [f"t/{i}" for i in range(64)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: store.put(k, k.encode()), keys))
        values = list(pool.map(store.get_bytes, keys))
    assert values == [k.encode() for k in keys]


# -- keystone v3 (the harness's Keystone and its keystone-authenticated Swift proxy) ----------


def keystone_environ(services, container, **extra):
    env = {
        "SWIFT_AUTH_URL": services["TEST_KEYSTONE_URL"],
        "SWIFT_ACCOUNT": services["TEST_KEYSTONE_USER"],
        "SWIFT_PASSWORD": services["TEST_KEYSTONE_PASSWORD"],
        "SWIFT_PROJECT_NAME": services["TEST_KEYSTONE_PROJECT"],
        "SWIFT_REGION_NAME": services["TEST_KEYSTONE_REGION"],
        "SWIFT_WRITE_CONTAINER": container,
        "SWIFT_CONNECT_TIMEOUT": "5",
        "SWIFT_READ_TIMEOUT": "15",
    }
    env.update(extra)
    return env


@pytest.fixture
def keystone_store(services):
    store = build_store("swift", keystone_environ(services, unique_name("ks")))
    assert store.settings.auth_version == "3"
    store.ensure_container()
    yield store
    store.delete_many([info.key for info in store.list()])
    store.connection.delete_container(store.container)


def test_keystone_v3_round_trip_and_temp_url(services, keystone_store):
    data = os.urandom(70_000)
    keystone_store.put("ks/object", data, content_type="application/pdf")
    assert keystone_store.get_bytes("ks/object") == data
    url = keystone_store.presigned_get_url("ks/object", filename="é.pdf")
    assert url.startswith(services["TEST_KEYSTONE_SWIFT_STORAGE_URL"])
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200 and answer.content == data
    assert [i.key for i in keystone_store.list("ks/")] == ["ks/object"]


def test_keystone_token_is_shared_by_threads(services):
    """One authentication per process, whatever the number of threads: providers
    rate-limit keystone. The real plugin runs; the test only counts its calls."""
    store = build_store("swift", keystone_environ(services, unique_name("ks")))
    auth = store._clients.get().session.auth
    calls = []
    real = auth.get_auth_ref
    auth.get_auth_ref = lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs)
    store.ensure_container()
    keys = [f"t/{i}" for i in range(32)]
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: store.put(k, b"x"), keys))
        assert len(calls) == 1
    finally:
        store.delete_many(keys)
        store.connection.delete_container(store.container)


@pytest.mark.parametrize(
    ("variable", "value", "error", "named"),
    [
        ("SWIFT_PASSWORD", "wrong-password-xyz", AccessDenied, "SWIFT_PASSWORD"),
        ("SWIFT_PROJECT_NAME", "no-such-project", AccessDenied, "SWIFT_PROJECT_NAME"),
        ("SWIFT_REGION_NAME", "RegionNowhere", StoreMisconfigured, "SWIFT_REGION_NAME"),
    ],
)
def test_keystone_bad_settings(services, variable, value, error, named):
    store = build_store("swift", keystone_environ(services, "c", **{variable: value}))
    with pytest.raises(error) as info:
        store.head("k")
    assert named in str(info.value)
    assert "wrong-password-xyz" not in str(info.value)


def test_keystone_down(services, closed_port):
    store = build_store(
        "swift",
        keystone_environ(services, "c", SWIFT_AUTH_URL=f"http://127.0.0.1:{closed_port}/v3"),
    )
    with pytest.raises(StoreUnavailable):
        store.head("k")
