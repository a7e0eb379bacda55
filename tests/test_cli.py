"""``python -m stateless_odoo store-check`` (or ``stateless-odoo store-check``): exit
codes an operator can script."""

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, s3_environ, swift_environ, unique_name


def store_check(kind, environ, *args, command=(sys.executable, "-m", "stateless_odoo")):
    return subprocess.run(
        [*command, "store-check", kind, *args],
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


#: the console script the core's package installs beside the interpreter
SCRIPT = (str(Path(sys.executable).parent / "stateless-odoo"),)


@pytest.mark.parametrize(
    ("kind", "command"),
    [("s3", SCRIPT), ("swift", (sys.executable, "-m", "stateless_odoo"))],
)
def test_store_check_passes_and_leaves_nothing(services, make_fresh_store, kind, command):
    store = make_fresh_store(kind)
    environ = (s3_environ if kind == "s3" else swift_environ)(services, store.container)
    done = store_check(kind, environ, command=command)
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
