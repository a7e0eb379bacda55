"""Large objects with bounded memory, and responses cut short."""

import contextlib
import json
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stateless_odoo.errors import StoreUnavailable
from stateless_odoo.storage import ObjectInfo, ObjectReader

from .conftest import ROOT, make_store, s3_environ, swift_environ

LARGE = 256 * 1024 * 1024

# Runs in a fresh interpreter so that its peak RSS measures this transfer only.
_LARGE_SCRIPT = textwrap.dedent(
    """
    import hashlib, io, json, os, resource, sys
    from stateless_odoo.storage import build_store

    kind, environ, size = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    store = build_store(kind, environ)
    block = os.urandom(1 << 20)

    class Generated(io.RawIOBase):
        # size bytes made on the fly: never held whole in memory
        def __init__(self):
            self.left, self.sha = size, hashlib.sha256()
            self.counter = 0
        def readable(self):
            return True
        def readinto(self, buffer):
            if not self.left:
                return 0
            n = min(len(buffer), self.left, len(block))
            chunk = block[:n]
            buffer[:n] = chunk
            self.sha.update(chunk)
            self.left -= n
            return n

    store.put("warm-up", b"x" * 100_000)
    store.get_bytes("warm-up")
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    source = Generated()
    store.put("large", source)
    read_sha, read_size = hashlib.sha256(), 0
    with store.open("large") as reader:
        for chunk in reader:
            read_sha.update(chunk)
            read_size += len(chunk)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "written": source.sha.hexdigest(), "read": read_sha.hexdigest(),
        "read_size": read_size, "head_size": store.head("large").size,
        "growth_kb": peak - baseline,
    }))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_large_object_streams_with_bounded_memory(services, make_fresh_store, kind):
    store = make_fresh_store(kind)
    environ = (s3_environ if kind == "s3" else swift_environ)(
        services, store.container, AWS_READ_TIMEOUT="60", SWIFT_READ_TIMEOUT="60"
    )
    done = subprocess.run(
        [sys.executable, "-c", _LARGE_SCRIPT, kind, json.dumps(environ), str(LARGE)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["read"] == result["written"]
    assert result["read_size"] == result["head_size"] == LARGE
    # a 256 MB object goes through in a small fraction of its size: S3 multipart keeps
    # a few 8 MB parts in flight, Swift streams 64 KB chunks
    assert result["growth_kb"] < 96 * 1024, result


class _FakeStoreHandler(BaseHTTPRequestHandler):
    """A stand-in store that answers Swift v1 authentication (so that the Swift client
    reaches it) and, through subclasses, one fault."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer_auth(self):
        host, port = self.server.server_address
        self.send_response(200)
        self.send_header("X-Storage-Url", f"http://{host}:{port}/v1/AUTH_fake")
        self.send_header("X-Auth-Token", "fake-token")
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def fake_store(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class _TruncatingHandler(_FakeStoreHandler):
    """Answers every object GET with a body shorter than its Content-Length.

    A real store cannot be made to cut a response on demand: this stand-in plays a
    connection dropped mid-transfer (a proxy restart, a node dying), and also answers
    v1 authentication so that the Swift client reaches it.
    """

    def do_GET(self):
        if self.path.startswith("/auth/"):
            self.answer_auth()
            return
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("ETag", '"0123456789abcdef0123456789abcdef"')
        self.end_headers()
        self.wfile.write(b"a" * 1000)
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def truncating_port():
    with fake_store(_TruncatingHandler) as port:
        yield port


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_cut_response_is_an_error_not_short_content(services, truncating_port, kind):
    if kind == "s3":
        extra = {"AWS_HOST": f"http://127.0.0.1:{truncating_port}", "AWS_MAX_ATTEMPTS": "2"}
    else:
        extra = {
            "SWIFT_AUTH_URL": f"http://127.0.0.1:{truncating_port}/auth/v1.0",
            "SWIFT_MAX_ATTEMPTS": "2",
        }
    store = make_store(kind, services, container="bucket", **extra)
    with pytest.raises(StoreUnavailable) as info:
        store.get_bytes("ab/key")
    assert info.value.key == "ab/key"
    with pytest.raises(StoreUnavailable), store.open("ab/key") as reader:
        for _chunk in reader:
            pass


def test_reader_itself_refuses_a_short_stream():
    """Whatever the HTTP library lets through (urllib3 1.26, which Odoo 18 pins, does
    not check Content-Length by default), the reader counts."""
    info = ObjectInfo("k", 10)

    def reader(chunks, read_all=None):
        return ObjectReader(
            info,
            chunks,
            lambda: None,
            store="s3://b",
            guard=lambda read: read(),
            read_all=read_all,
        )

    for read in (
        lambda r: b"".join(r),
        lambda r: r.read(),
        lambda r: r.readall(),
    ):
        with pytest.raises(StoreUnavailable) as error:
            read(reader([b"abc", b"def"]))
        assert "6 of 10 bytes" in str(error.value) and "s3://b" in str(error.value)
    with pytest.raises(StoreUnavailable):
        reader([], read_all=lambda: b"abcdef").readall()
    assert reader([b"abcde", b"fghij"]).read() == b"abcdefghij"


class _UnavailableHandler(_FakeStoreHandler):
    """503 to every PUT, counting them: a proxy whose backends are down, which a real
    Swift cannot be made to be on demand."""

    puts = 0

    def do_GET(self):
        self.answer_auth()

    def do_PUT(self):
        type(self).puts += 1
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_swift_upload_of_bytes_is_retried(services):
    with fake_store(_UnavailableHandler) as port:
        store = make_store(
            "swift",
            services,
            container="c",
            SWIFT_AUTH_URL=f"http://127.0.0.1:{port}/auth/v1.0",
            SWIFT_MAX_ATTEMPTS="3",
        )
        with pytest.raises(StoreUnavailable) as info:
            store.put("k", b"payload")
    assert _UnavailableHandler.puts == 3
    assert "503" in str(info.value)
