"""Per-process caches of the attachment addons: small objects' bytes and signed URLs.
Both are read only after Odoo's access check."""

import collections
import threading
import time


class ObjectCache:
    """A per-process LRU of small objects' bytes, keyed by ``store_fname``.

    Objects are content-addressed, so a cached copy is never stale: the key names the
    content. Only code that already passed Odoo's access check reads it. Bounded by
    ``max_bytes`` in total and ``max_object`` per object; 0 disables it.
    """

    def __init__(self, max_bytes, max_object):
        self.max_bytes = max_bytes
        self.max_object = min(max_object, max_bytes)
        self._items = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def accepts(self, size):
        return size is not None and 0 < size <= self.max_object

    def get(self, url):
        with self._lock:
            data = self._items.get(url)
            if data is None:
                self.misses += 1
                return None
            self._items.move_to_end(url)
            self.hits += 1
            return data

    def put(self, url, data):
        if not self.accepts(len(data)):
            return
        with self._lock:
            if url in self._items:
                return
            self._items[url] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes:
                _url, old = self._items.popitem(last=False)
                self._bytes -= len(old)


class PresignedUrls:
    """A per-process cache of the presigned (S3) or temporary (Swift) URLs of the
    redirect and X-Accel-Redirect modes: signing one costs about a millisecond with
    botocore, a third of what the whole 302 otherwise costs.

    A URL is handed out again while more than half of its lifetime is left, so every URL
    given stays valid for at least ``expires / 2`` seconds (less the second the stores
    round their signing time down to). It is keyed by everything it encodes (store,
    key, lifetime, file name, type, inline); it names no user. Only code that passed
    Odoo's access check for the record asks for one, and the URL then gives the object
    to whoever holds it, exactly as a fresh one would. ``max_items`` 0 disables it.
    """

    def __init__(self, max_items, clock=time.monotonic):
        self.max_items = max_items
        self._clock = clock
        self._items = collections.OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, store, key, *, expires, filename=None, content_type=None, inline=False):
        def sign():
            return store.presigned_get_url(
                key, expires=expires, filename=filename, content_type=content_type, inline=inline
            )

        if not self.max_items:
            return sign()
        cache_key = (store.name, key, expires, filename, content_type, inline)
        now = self._clock()
        with self._lock:
            entry = self._items.get(cache_key)
            if entry is not None and now < entry[1]:
                self._items.move_to_end(cache_key)
                self.hits += 1
                return entry[0]
            self.misses += 1
        url = sign()  # outside the lock: other threads are not held up by a signature
        with self._lock:
            self._items[cache_key] = (url, now + expires / 2)
            self._items.move_to_end(cache_key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return url
