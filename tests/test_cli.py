"""``python -m stateless_odoo store-check``: exit codes an operator can script."""

import subprocess
import sys

import pytest

from .conftest import ROOT, s3_environ, swift_environ, unique_name


def store_check(kind, environ, *args):
    return subprocess.run(
        [sys.executable, "-m", "stateless_odoo", "store-check", kind, *args],
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_store_check_passes_and_leaves_nothing(services, make_fresh_store, kind):
    store = make_fresh_store(kind)
    environ = (s3_environ if kind == "s3" else swift_environ)(services, store.container)
    done = store_check(kind, environ)
    assert done.returncode == 0, done.stderr
    assert "store-check: all steps passed" in done.stdout
    assert list(store.list()) == []


def test_store_check_configuration_error_exit_2(services):
    environ = s3_environ(services, unique_name("x"), AWS_READ_TIMEOUT="soon")
    done = store_check("s3", environ)
    assert done.returncode == 2
    assert "AWS_READ_TIMEOUT" in done.stderr


def test_store_check_bad_temp_url_key_exit_1_and_cleans_up(services, make_fresh_store):
    store = make_fresh_store("swift")
    environ = swift_environ(services, store.container, SWIFT_TEMP_URL_KEY="wrong-key")
    done = store_check("swift", environ)
    assert done.returncode == 1
    assert "presigned URL does not serve the object" in done.stderr
    assert "wrong-key" not in done.stderr + done.stdout
    assert list(store.list()) == []
