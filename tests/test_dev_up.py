"""``./dev up`` and ``./dev down``: the stateless platform in one command, from an Odoo
source directory (``ODOO_SOURCE``), used as a person would: log in through nginx, upload
a file, download it.

Runs when an Odoo 18 is on the machine (found as the Odoo tier finds one: its source
directory is the ``ODOO_SOURCE`` given), as root (the platform's replica runs as the
postgres user). The first run installs that Odoo into the checkout's ``.odoo/venv``
(a few minutes); later runs reuse it.
"""

import base64
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import odoo_tier  # noqa: E402

from stateless_odoo.testing import free_port  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def odoo_source():
    python, found = odoo_tier.find_odoo()
    if python is None:
        pytest.skip(f"no Odoo 18 on this machine to take the source of: {found}")
    if os.geteuid() != 0:
        pytest.skip("the platform's replica runs as the postgres OS user: run as root")
    return found[2]


def dev(*args, env, timeout=1800):
    done = subprocess.run(
        [str(ROOT / "dev"), *args], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (
        f"./dev {' '.join(args)}: {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-4000:]}"
    )
    return done.stdout


def rpc(session, url, path, params):
    answer = session.post(f"{url}{path}", json={"jsonrpc": "2.0", "params": params}, timeout=60)
    answer.raise_for_status()
    body = answer.json()
    assert "error" not in body, body["error"]
    return body["result"]


def test_dev_up_starts_a_stateless_platform_a_person_can_use(odoo_source, tmp_path):
    port = free_port()
    db = f"stateless_devup_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "ODOO_SOURCE": str(odoo_source),
        "STATELESS_PLATFORM_DIR": str(tmp_path / "platform"),
        "STATELESS_PLATFORM_PORT": str(port),
        "STATELESS_PLATFORM_DB": db,
        "KEEP_SERVICES": "1",  # the services of the test run stay up after ./dev down
    }
    env.pop("ODOO_PYTHON", None)
    started = time.monotonic()
    out = dev("up", env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        assert "The stateless platform runs" in out, out
        assert url in out and f"database {db}" in out, out
        suite = dev("env", "--suite", env=env)
        assert "export ODOO_SESSION_REDIS=1" in suite and "export AWS_BUCKETNAME=" in suite

        # a person: the login page, a login, a file up and down, through nginx
        session = requests.Session()
        assert session.get(f"{url}/web/login", timeout=60).status_code == 200
        user = rpc(session, url, "/web/session/authenticate",
                   {"db": db, "login": "admin", "password": "admin"})  # fmt: skip
        assert user["uid"], user
        data = os.urandom(64 * 1024)
        call = {"model": "ir.attachment", "method": "create", "kwargs": {}}
        call["args"] = [{"name": "dev-up.bin", "datas": base64.b64encode(data).decode()}]
        attachment = rpc(session, url, "/web/dataset/call_kw", call)
        attachment = attachment[0] if isinstance(attachment, list) else attachment
        download = session.get(f"{url}/web/content/{attachment}?download=true", timeout=60)
        assert download.status_code == 200 and download.content == data
        with psycopg2.connect(host="127.0.0.1", dbname=db) as connection:
            with connection.cursor() as cursor:
                cursor.execute("SELECT store_fname FROM ir_attachment WHERE id = %s", [attachment])
                assert cursor.fetchone()[0].startswith("s3://")
        print(f"./dev up with ODOO_SOURCE={odoo_source}: {time.monotonic() - started:.0f} s")
    finally:
        dev("down", env=env)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/web/login", timeout=10)
    with psycopg2.connect(host="127.0.0.1", dbname="postgres") as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db])
            assert cursor.fetchone() is None


def test_dev_up_without_odoo_says_what_to_give_and_keeps_the_services(tmp_path):
    """No Odoo to run the platform on (here: ODOO_PYTHON names an interpreter without
    Odoo): ``./dev up`` says why and how to give one, exits 0, the services run."""
    if os.geteuid() != 0:
        pytest.skip("./dev up installs Debian packages: run as root")
    env = {
        **os.environ,
        "ODOO_PYTHON": sys.executable,  # this venv's: no Odoo in it
        "STATELESS_PLATFORM_DIR": str(tmp_path / "platform"),
    }
    env.pop("ODOO_SOURCE", None)
    out = dev("up", env=env, timeout=900)
    assert "no Odoo 18 was found to start the platform on" in out, out
    assert f"ODOO_PYTHON={sys.executable!r} cannot import odoo" in out, out
    assert "ODOO_SOURCE=/path/to/odoo-18.0-source ./dev up" in out, out
    assert "The stateless platform runs" not in out, out
    status = subprocess.run(
        [str(ROOT / "scripts" / "services.sh"), "status"], capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert "redis" in status.stdout and "running" in status.stdout, status.stdout


def git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.parametrize(
    ("release", "refused"),
    [
        (None, "does not hold Odoo's source"),
        ("version_info = (17, 0, 0, 'final', 0, '')\n", "is Odoo 17, not 18"),
    ],
)
def test_an_odoo_source_url_is_cloned_then_checked(tmp_path, release, refused):
    """``ODOO_SOURCE`` as a git URL: cloned (shallow, branch ``ODOO_BRANCH``) beside the
    venv, then refused with a message when it is not Odoo 18's source (a real clone of a
    small repository: the machine need not reach Odoo's)."""
    repo = tmp_path / "repo"
    (repo / "odoo").mkdir(parents=True)
    (repo / "setup.py").write_text("")
    (repo / "requirements.txt").write_text("")
    if release:
        (repo / "odoo" / "release.py").write_text(release)
    git("init", "--quiet", "--initial-branch=18.0", cwd=repo)
    git("add", ".", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "x", cwd=repo)
    venv = tmp_path / "odoo" / "venv"
    done = subprocess.run(
        [str(ROOT / "scripts" / "install_odoo.sh"), f"file://{repo}"],
        env={**os.environ, "STATELESS_ODOO_VENV": str(venv), "ODOO_BRANCH": "18.0"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done
    assert refused in done.stderr, done.stderr
    assert (tmp_path / "odoo" / "src" / "setup.py").is_file()  # the clone, beside the venv
    assert not venv.exists()
