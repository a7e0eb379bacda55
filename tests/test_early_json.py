"""The JSON logging start-up hook: the core's wheel carries it, and a Python process
that starts with it in a site directory logs JSON from its logging's first line.

Odoo is not installed in tier 1: ``odoo/netsvc.py`` and ``odoo/cli/server.py`` below
are stand-ins with the shape of Odoo 18's (an ``init_logger`` that builds
``DBFormatter(format)`` when it runs and logs from inside; a ``check_root_user`` that
writes to stderr before logging exists). The same hook on a real Odoo (threaded,
prefork, ``odoo shell``) is tested by ``logging_json/tests`` in the Odoo tier.
"""

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PTH = "stateless_odoo_json_logging.pth"

NETSVC = """
import logging


class DBFormatter(logging.Formatter):
    pass


class ColoredFormatter(DBFormatter):
    pass


def init_logger():
    handler = logging.StreamHandler()
    handler.setFormatter(DBFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger("odoo.netsvc").debug("logger level set: %s", ":DEBUG")
"""

SERVER = r"""
import sys


def check_root_user():
    sys.stderr.write("Running as user 'root' is a security risk.\n")
"""

MAIN = """
import logging, sys, warnings
import odoo.cli.server, odoo.netsvc
warnings.warn("pkg_resources is deprecated as an API", UserWarning)  # gevent's import
odoo.cli.server.check_root_user()
odoo.netsvc.init_logger()
logging.getLogger("odoo").info("Odoo version 18.0")
logging.getLogger("odoo").info("database: root@127.0.0.1:5432")
print("IMPORTED" if "stateless_odoo" in sys.modules else "NOT IMPORTED")
print(type(logging.getLogger().handlers[0].formatter).__name__)
print(odoo.netsvc.DBFormatter.__name__)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        check=True,
    )
    (built,) = out.glob("stateless_odoo-*.whl")
    return built


@pytest.fixture
def site_dir(tmp_path, wheel):
    """A site directory holding the wheel's ``.pth`` and a stand-in ``odoo``."""
    site = tmp_path / "site"
    (site / "odoo").mkdir(parents=True)
    with zipfile.ZipFile(wheel) as archive:
        (site / PTH).write_bytes(archive.read(PTH))
    (site / "odoo" / "__init__.py").write_text("")
    (site / "odoo" / "netsvc.py").write_text(NETSVC)
    (site / "odoo" / "cli").mkdir()
    (site / "odoo" / "cli" / "__init__.py").write_text("")
    (site / "odoo" / "cli" / "server.py").write_text(SERVER)
    return site


def run(site, environ, body=MAIN, program="odoo"):
    """A new interpreter, running a script named ``program``, whose start processes
    ``site`` as site-packages are."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODOO_")}
    env.update(environ, PYTHONPATH=str(ROOT))
    script = site.parent / program
    script.write_text(f"import site; site.addsitedir({str(site)!r})\n" + textwrap.dedent(body))
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines(), done.stderr.splitlines()


def test_the_wheel_puts_the_hook_at_its_root(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert PTH in names
        assert archive.read(PTH).decode() == (ROOT / PTH).read_text()
        assert "stateless_odoo/observability/early_json.py" in names


def test_every_line_is_json_from_the_first(site_dir):
    out, err = run(site_dir, {"ODOO_LOGGING_JSON": "1"})
    assert out == ["IMPORTED", "OdooJsonFormatter", "DBFormatter"]
    records = [json.loads(line) for line in err]  # every line, the first included
    assert [(r["logger"], r["level"]) for r in records] == [
        ("py.warnings", "WARNING"),  # before Odoo's logging exists
        ("odoo.cli.server", "WARNING"),  # Odoo's bare write to stderr
        ("odoo.netsvc", "DEBUG"),  # logged by init_logger itself
        ("odoo", "INFO"),
        ("odoo", "INFO"),
    ]
    assert "pkg_resources is deprecated as an API" in records[0]["message"]
    assert records[1]["message"] == "Running as user 'root' is a security risk."
    assert records[-1]["message"] == "database: root@127.0.0.1:5432"


def test_another_program_keeps_its_warnings_but_odoo_logs_json(site_dir):
    # a script of the hosting team's that imports odoo: no stderr handler of the
    # suite's before Odoo's logging; Odoo's own handlers are JSON
    _out, err = run(site_dir, {"ODOO_LOGGING_JSON": "1"}, program="report.py")
    assert "UserWarning: pkg_resources is deprecated" in err[0]
    assert "Running as user 'root' is a security risk." in err  # Python's last resort
    records = [json.loads(line) for line in err if line.startswith("{")]
    assert [r["message"] for r in records][-2:] == [
        "Odoo version 18.0",
        "database: root@127.0.0.1:5432",
    ]


@pytest.mark.parametrize("value", [None, "0", "false"])
def test_off_the_package_is_not_even_imported(site_dir, value):
    out, err = run(site_dir, {} if value is None else {"ODOO_LOGGING_JSON": value})
    assert out[1:] == ["DBFormatter", "DBFormatter"]
    assert out[0] == ("NOT IMPORTED" if value is None else "IMPORTED")
    assert "UserWarning: pkg_resources" in err[0]
    assert "Running as user 'root' is a security risk." in err
    assert err[-1].endswith("INFO odoo: database: root@127.0.0.1:5432")


def test_a_bad_value_is_left_to_the_addon(site_dir):
    # logging_json's post_load names the variable and stops the server; the hook only
    # stays out of the way (no traceback at the interpreter's start)
    out, err = run(site_dir, {"ODOO_LOGGING_JSON": "maybe"})
    assert out[1] == "DBFormatter"
    assert "Traceback" not in "\n".join(err)
    assert "ODOO_LOGGING_JSON" in err[0] and "not applied" in err[0]
    assert err[-1].endswith("INFO odoo: database: root@127.0.0.1:5432")


def test_modules_already_imported_are_patched_at_once(site_dir):
    body = """
    import logging, odoo.cli.server, odoo.netsvc
    from stateless_odoo.observability import early_json
    assert early_json.arm({"ODOO_LOGGING_JSON": "1"})
    assert early_json.arm({"ODOO_LOGGING_JSON": "1"})  # once only
    assert odoo.netsvc.init_logger.__wrapped__.__module__ == "odoo.netsvc"
    odoo.netsvc.init_logger()
    odoo.cli.server.check_root_user()
    logging.getLogger("odoo").info("late")
    """
    _out, err = run(site_dir, {}, body)
    assert [json.loads(line)["message"] for line in err] == [
        "logger level set: :DEBUG",
        "Running as user 'root' is a security risk.",
        "late",
    ]


def test_odoo_programs():
    from stateless_odoo.observability.early_json import is_odoo_program

    assert is_odoo_program(["/opt/odoo/venv/bin/odoo", "gevent"], [])
    assert is_odoo_program(["/srv/odoo/odoo-bin", "shell"], [])
    assert is_odoo_program(["-m"], ["python3", "-m", "odoo", "server"])
    assert not is_odoo_program(["report.py"], ["python3", "report.py"])
    assert not is_odoo_program(["-m"], ["python3", "-m", "pip", "odoo"])
