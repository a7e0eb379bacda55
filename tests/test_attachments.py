"""The attachment rules, keys and stores (Odoo-free), against the real Swift."""

import time
import uuid

import pytest
import requests

from stateless_odoo.attachments.caches import ObjectCache, PresignedUrls
from stateless_odoo.attachments.migration import find_update_module
from stateless_odoo.attachments.rule import KeepInDatabase
from stateless_odoo.attachments.settings import AttachmentSettings
from stateless_odoo.attachments.stores import AttachmentStores, StorageDisabled, object_key
from stateless_odoo.errors import ConfigError, ReadOnlyStore, StoreMisconfigured

from .conftest import s3_environ, swift_environ

SHA = "a" * 40


def test_default_rule_keeps_small_images_and_all_js_css():
    rule = KeepInDatabase()
    assert rule.keeps("image/png", 51200)
    assert not rule.keeps("image/png", 51201)
    assert rule.keeps("application/javascript", 10**9)
    assert rule.keeps("text/css", 10**9)
    assert not rule.keeps("application/pdf", 10)
    assert not rule.keeps(None, 10)


def test_rule_parses_json_and_the_older_addons_literal():
    assert KeepInDatabase.parse('{"image/": 10}').limits == {"image/": 10}
    assert KeepInDatabase.parse("{'text/': 0}").keeps("text/plain", 10**6)
    assert KeepInDatabase.parse("") == KeepInDatabase()
    assert not KeepInDatabase.parse("{}").keeps("image/png", 1)


@pytest.mark.parametrize("text", ["nonsense", "[1]", '{"image/": -1}', '{"image/": "5"}'])
def test_bad_rule_names_its_source(text):
    with pytest.raises(ConfigError) as err:
        KeepInDatabase.parse(text, source="ODOO_ATTACHMENT_KEEP_IN_DATABASE")
    assert err.value.variable == "ODOO_ATTACHMENT_KEEP_IN_DATABASE"


def test_settings_defaults_and_errors():
    settings = AttachmentSettings.from_env({})
    assert (settings.serving, settings.disabled, settings.keep_in_database) == (
        "stream",
        False,
        None,
    )
    assert (settings.url_cache, settings.gc_unnamespaced) == (4096, False)
    assert AttachmentSettings.from_env({"DISABLE_ATTACHMENT_STORAGE": "1"}).disabled
    assert AttachmentSettings.from_env({"ODOO_ATTACHMENT_GC_UNNAMESPACED": "1"}).gc_unnamespaced
    prefix = AttachmentSettings.from_env({"ODOO_ATTACHMENT_X_ACCEL_PREFIX": "/objects"})
    assert prefix.x_accel_prefix == "/objects/"
    for name, value in [
        ("ODOO_ATTACHMENT_SERVING", "ftp"),
        ("ODOO_ATTACHMENT_URL_EXPIRATION", "0"),
        ("ODOO_ATTACHMENT_X_ACCEL_PREFIX", "objects"),
        ("ODOO_ATTACHMENT_KEEP_IN_DATABASE", "{"),
        ("ODOO_ATTACHMENT_MIGRATION_THREADS", "0"),
        ("DISABLE_ATTACHMENT_STORAGE", "maybe"),
        ("ODOO_ATTACHMENT_CACHE_SIZE", "lots"),
        ("ODOO_ATTACHMENT_URL_CACHE", "-1"),
        ("ODOO_ATTACHMENT_GC_UNNAMESPACED", "maybe"),
    ]:
        with pytest.raises(ConfigError) as err:
            AttachmentSettings.from_env({name: value})
        assert err.value.variable == name


def test_object_cache_is_a_bounded_lru():
    cache = ObjectCache(max_bytes=10, max_object=4)
    assert not cache.accepts(5) and not cache.accepts(0) and cache.accepts(4)
    cache.put("a", b"1234")
    cache.put("big", b"12345")  # above max_object: not kept
    cache.put("b", b"5678")
    assert cache.get("a") == b"1234"  # a is now the most recent
    cache.put("c", b"9abc")  # 12 bytes > 10: the least recent (b) goes
    assert (cache.get("b"), cache.get("big")) == (None, None)
    assert cache.get("a") and cache.get("c")
    assert (cache.hits, cache.misses) == (3, 2)
    off = ObjectCache(0, 1024)
    off.put("a", b"1")
    assert off.get("a") is None


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_presigned_urls_are_reused_for_half_their_lifetime(kind, make_fresh_store, services):
    extra = {"SWIFT_TEMP_URL_KEY": services["TEST_SWIFT_TEMP_URL_KEY"]} if kind == "swift" else {}
    store = make_fresh_store(kind, **extra)
    store.put("ab/doc", b"content")
    clock = _Clock()
    urls = PresignedUrls(2, clock=clock)
    first = urls.get(store, "ab/doc", expires=60, filename="a.pdf", content_type="application/pdf")
    clock.now += 29.9
    again = urls.get(store, "ab/doc", expires=60, filename="a.pdf", content_type="application/pdf")
    assert again == first and (urls.hits, urls.misses) == (1, 1)
    # whatever the URL encodes is in the key: another name, type or disposition is
    # another URL
    other = urls.get(store, "ab/doc", expires=60, filename="b.pdf", content_type="application/pdf")
    inline = urls.get(
        store, "ab/doc", expires=60, filename="a.pdf", content_type="application/pdf", inline=True
    )
    assert len({first, other, inline}) == 3
    answer = requests.get(other, timeout=10)
    assert answer.content == b"content" and "b.pdf" in answer.headers["Content-Disposition"]
    # bounded: two kept, the least recent (first) went
    assert len(urls._items) == 2
    clock.now += 0.2  # past half the lifetime of the first: a new signature
    assert (urls.hits, urls.misses) == (1, 3)
    urls.get(store, "ab/doc", expires=60, filename="a.pdf", content_type="application/pdf")
    assert urls.misses == 4


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_a_reused_presigned_url_is_still_valid(kind, make_fresh_store, services):
    # real time: a URL handed out at the end of its reuse window still works
    extra = {"SWIFT_TEMP_URL_KEY": services["TEST_SWIFT_TEMP_URL_KEY"]} if kind == "swift" else {}
    store = make_fresh_store(kind, **extra)
    store.put("ab/doc", b"content")
    urls = PresignedUrls(16)
    first = urls.get(store, "ab/doc", expires=4)
    time.sleep(1.9)
    assert urls.get(store, "ab/doc", expires=4) == first
    assert requests.get(first, timeout=10).content == b"content"
    time.sleep(0.2)
    assert urls.get(store, "ab/doc", expires=4) != first
    off = PresignedUrls(0)
    assert off.get(store, "ab/doc", expires=60) and not off._items


def test_keys_are_content_addressed_per_database():
    assert object_key("prod", SHA) == f"prod/aa/{SHA}"
    assert object_key("prod", SHA, "odoo/") == f"odoo/prod/aa/{SHA}"
    with pytest.raises(ValueError):
        object_key("prod", "not-a-sha")
    with pytest.raises(ConfigError):
        object_key("../etc", SHA)


def test_update_module_is_found_up_the_stack():
    def _register_hook():
        return find_update_module()

    def another_addon_override():
        return _register_hook()

    def load_modules(registry, update_module=False):
        return another_addon_override()

    assert load_modules(None, update_module={"sale": 1}) == {"sale": 1}
    assert load_modules(None, update_module=True) is True
    assert load_modules(None) is False
    assert _register_hook() is None


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_stores_write_here_and_only_read_elsewhere(kind, services, make_fresh_store):
    prod = make_fresh_store(kind)
    mine = make_fresh_store(kind)
    environ = (s3_environ if kind == "s3" else swift_environ)(services, mine.container)
    stores = AttachmentStores(kind, "integration", environ)
    store, key, url = stores.place(SHA)
    assert url == f"{kind}://{mine.container}/integration/aa/{SHA}"
    assert stores.locate(url) == (store, key)
    store.put(key, b"mine")
    assert mine.get_bytes(key) == b"mine"
    assert stores.owns(url)
    prod.put(f"prod/aa/{SHA}", b"prod")
    prod_url = f"{kind}://{prod.container}/prod/aa/{SHA}"
    view, key = stores.locate(prod_url)
    assert view.get_bytes(key) == b"prod"
    with pytest.raises(ReadOnlyStore):
        view.put(key, b"overwritten")
    with pytest.raises(ReadOnlyStore):
        view.delete(key)
    assert not stores.owns(prod_url)
    # another database on the same bucket
    assert not stores.owns(f"{kind}://{mine.container}/prod/aa/{SHA}")
    other = "swift" if kind == "s3" else "s3"
    with pytest.raises(StorageDisabled):
        stores.locate(f"{other}://{mine.container}/integration/aa/{SHA}")


def test_disabled_storage_never_writes(services, make_fresh_store):
    mine = make_fresh_store("s3")
    stores = AttachmentStores("s3", "prod", s3_environ(services, mine.container), disabled=True)
    with pytest.raises(StorageDisabled):
        stores.write_store  # noqa: B018
    store, key, url = stores.place(SHA)
    assert not stores.owns(url)
    with pytest.raises(ReadOnlyStore):
        store.put(key, b"x")


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_a_missing_container_is_created_before_the_first_write(kind, services):
    """As the older addons did: with a bucket per database ({db}), every new database's
    first attachment finds its bucket. ODOO_ATTACHMENT_CREATE_CONTAINER=0 for
    credentials that may not create one: the write then fails naming the variable."""
    name = f"created-{uuid.uuid4().hex[:10]}"
    environ = (s3_environ if kind == "s3" else swift_environ)(services, name)
    refused = AttachmentStores(kind, "newdb", environ, create_container=False)
    refused.ready_for_writes()
    store, key, _url = refused.place(SHA)
    with pytest.raises(StoreMisconfigured, match=r"AWS_BUCKETNAME|SWIFT_WRITE_CONTAINER"):
        store.put(key, b"first")
    stores = AttachmentStores(kind, "newdb", environ)
    stores.ready_for_writes()
    store, key, _url = stores.place(SHA)
    try:
        store.put(key, b"first")
        assert store.get_bytes(key) == b"first"
        stores.ready_for_writes()  # once per process: no second check
    finally:
        store.delete(key)
        if kind == "s3":
            store.client.delete_bucket(Bucket=name)
        else:
            store.connection.delete_container(name)
