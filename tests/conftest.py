"""Fixtures: the real services of scripts/services.sh, and stores on fresh containers.

The session starts the services itself (``scripts/services.sh up`` is idempotent and
fast when they already run) and reads their addresses from ``scripts/services.sh env``:
tests never rely on a server or a port they did not set up.
"""

import contextlib
import shlex
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "scripts" / "services.sh"


def _read_env(text):
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env


@pytest.fixture(scope="session")
def services():
    """Addresses and credentials of the test services (TEST_* variables)."""
    up = subprocess.run([str(SERVICES), "up"], capture_output=True, text=True, check=False)
    if up.returncode:
        pytest.fail(f"scripts/services.sh up failed:\n{up.stdout}\n{up.stderr}", pytrace=False)
    out = subprocess.run([str(SERVICES), "env"], capture_output=True, text=True, check=True)
    return _read_env(out.stdout)


def unique_name(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def s3_environ(services, bucket, **extra):
    env = {
        "AWS_HOST": services["TEST_S3_ENDPOINT"],
        "AWS_REGION": services["TEST_S3_REGION"],
        "AWS_ACCESS_KEY_ID": services["TEST_S3_ACCESS_KEY"],
        "AWS_SECRET_ACCESS_KEY": services["TEST_S3_SECRET_KEY"],
        "AWS_BUCKETNAME": bucket,
        "AWS_CONNECT_TIMEOUT": "2",
        "AWS_READ_TIMEOUT": "10",
    }
    env.update(extra)
    return env


def swift_environ(services, container, **extra):
    env = {
        "SWIFT_AUTH_URL": services["TEST_SWIFT_AUTH_URL"],
        "SWIFT_ACCOUNT": services["TEST_SWIFT_ACCOUNT"],
        "SWIFT_PASSWORD": services["TEST_SWIFT_PASSWORD"],
        "SWIFT_WRITE_CONTAINER": container,
        "SWIFT_CONNECT_TIMEOUT": "2",
        "SWIFT_READ_TIMEOUT": "10",
    }
    env.update(extra)
    return env


def _empty_and_drop(store):
    """Remove a test container, whatever is left in it."""
    from stateless_odoo.testing import remove_container

    with contextlib.suppress(Exception):
        remove_container(store)


def make_store(kind, services, container=None, **extra):
    from stateless_odoo.storage import build_store

    container = container or unique_name(kind)
    environ = (s3_environ if kind == "s3" else swift_environ)(services, container, **extra)
    return build_store(kind, environ)


@pytest.fixture
def make_fresh_store(services):
    """Factory of stores on new containers, removed at the end of the test."""
    made = []

    def factory(kind, **extra):
        store = make_store(kind, services, **extra)
        store.ensure_container()
        made.append(store)
        return store

    yield factory
    for store in made:
        _empty_and_drop(store)


@pytest.fixture(params=["s3", "swift"])
def store(request, make_fresh_store):
    """A store on a new, empty container, once through each API."""
    return make_fresh_store(request.param)


@pytest.fixture
def closed_port():
    """A loopback port on which nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def hanging_port():
    """A loopback port that accepts connections and never answers.

    A real store cannot be made to hang on demand; this stand-in plays a store whose
    process is stuck, which is what a read timeout must survive.
    """
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()
