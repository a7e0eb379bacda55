#!/usr/bin/env python3
"""Tier 2: the addons' tests inside a real Odoo 18, against the real services.

Finds an Odoo 18 (see ``find_odoo``), makes the core package and its dependencies
importable there, creates a throwaway database, and runs Odoo's own test runner
(``-i <addons> --test-tags /<addon>,...``) with the services of scripts/services.sh
given through the environment, as a deployment would give them. Prints which Odoo it
used, or loudly that the tier was skipped and why; ends with ``N passed, N failed``.

    scripts/odoo_tier.py                      # every installable addon that has tests
    scripts/odoo_tier.py base_attachment_object_storage
    ODOO_PYTHON=/srv/odoo/venv/bin/python scripts/odoo_tier.py
    scripts/odoo_tier.py --keep               # keep the database and data dir

Then, when all addons are tested, the end-to-end scenario (tests/e2e/scenario.py: two
prefork Odoo processes behind nginx, a user's day, the proof); its steps count in the
totals.

Environment: ODOO_PYTHON (an interpreter that can ``import odoo``), ODOO_TIER=skip to
skip on purpose; ODOO_TIER_TEST_TAGS to run some tests only (Odoo's --test-tags);
E2E_SCENARIO=skip to leave the scenario out;
PGHOST/PGPORT/PGUSER (default 127.0.0.1, 5432, the OS user's role: Odoo refuses the
``postgres`` role).
"""

import argparse
import ast
import getpass
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "scripts" / "services.sh"
#: where an Odoo 18 is looked for when ODOO_PYTHON is not set, in this order
CANDIDATES = [
    "/opt/odoo18/venv/bin/python",
    "/opt/odoo/venv/bin/python",
    str(Path.home() / "odoo18/venv/bin/python"),
    "python3",
]
_PROBE = (
    "import os, odoo, odoo.release as r; print(r.version_info[0]); print(r.version);"
    " print(os.path.dirname(os.path.dirname(os.path.abspath(odoo.__file__))))"
)
_SUMMARY = re.compile(r"(\d+) failed, (\d+) error\(s\) of (\d+) tests")
_STATS = re.compile(r"odoo\.tests\.stats: (\w+): (\d+) tests")
#: Odoo's --test-tags instead of every test of the addons (ODOO_TIER_TEST_TAGS), e.g.
#: ``/base_attachment_object_storage:TestWriteRead.test_the_same_content_is_uploaded_once``
TEST_TAGS = os.environ.get("ODOO_TIER_TEST_TAGS")
#: the whole Odoo run is killed past this many seconds (ODOO_TIER_TIMEOUT)
TIMEOUT = int(os.environ.get("ODOO_TIER_TIMEOUT", "2400"))


def banner(text):
    line = "!" * 78
    print(f"\n{line}\n!! {text}\n{line}\n", flush=True)


def probe(python):
    """Return (major, version, root) of the Odoo that ``python`` imports, or None."""
    if not shutil.which(python) and not Path(python).is_file():
        return None
    try:
        done = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return None
    if done.returncode:
        return None
    major, version, root = done.stdout.split("\n")[:3]
    return int(major), version, Path(root)


def find_odoo():
    """The interpreter of an Odoo 18, or (None, reason)."""
    explicit = os.environ.get("ODOO_PYTHON")
    if explicit:
        found = probe(explicit)
        if not found:
            sys.exit(f"odoo tier: ODOO_PYTHON={explicit!r} cannot import odoo")
        if found[0] != 18:
            sys.exit(f"odoo tier: ODOO_PYTHON={explicit!r} is Odoo {found[1]}, not 18")
        return explicit, found
    for candidate in CANDIDATES:
        found = probe(candidate)
        if found and found[0] == 18:
            return candidate, found
    return None, f"no Odoo 18 found (set ODOO_PYTHON; looked at {', '.join(CANDIDATES)})"


#: the start-up hook the core's wheel installs (stateless_odoo.observability.early_json)
STARTUP_HOOK = "stateless_odoo_json_logging.pth"


def core_requirements():
    """The core package's dependencies, those of every part (its extras but ``all``,
    which names them, and ``test``) and the tier's own (anthem, server_environment)."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)["project"]
    extras = project["optional-dependencies"]
    skip = ("all", "test")
    parts = [spec for name, specs in extras.items() if name not in skip for spec in specs]
    return project["dependencies"] + parts


def ensure_core_dependencies(python):
    """Install the core package's dependencies into Odoo's interpreter if missing.

    The core package itself is put on PYTHONPATH from this checkout, so that the tests
    always run the code of the tree they belong to.
    """
    check = (
        "import importlib.metadata as m, sys\n"
        "from packaging.requirements import Requirement\n"
        "missing = []\n"
        "for spec in sys.argv[1:]:\n"
        "    r = Requirement(spec)\n"
        "    try:\n"
        "        if not r.specifier.contains(m.version(r.name), prereleases=True):\n"
        "            missing.append(spec)\n"
        "    except m.PackageNotFoundError:\n"
        "        missing.append(spec)\n"
        "print(' '.join(missing))\n"
    )
    reqs = core_requirements()
    done = subprocess.run([python, "-c", check, *reqs], capture_output=True, text=True, check=False)
    missing = done.stdout.split() if done.returncode == 0 else reqs
    if missing:
        print(f"odoo tier: installing into {python}: {' '.join(missing)}", flush=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", *missing], check=True)
    ensure_startup_hook(python)


def ensure_startup_hook(python):
    """Install the core's wheel into Odoo's interpreter when the start-up hook it puts
    in site-packages (JSON from the first log line) is missing or not this tree's.

    Its code is shadowed by this checkout on PYTHONPATH; what the tests need from the
    installed wheel is the ``.pth`` file, installed the way hosting teams install it.
    """
    wanted = (ROOT / STARTUP_HOOK).read_text()
    where = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    installed = Path(where) / STARTUP_HOOK
    if installed.is_file() and installed.read_text() == wanted:
        return
    print(f"odoo tier: installing the core's wheel (its {STARTUP_HOOK}) into {python}", flush=True)
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(ROOT)],
        check=True,
    )


def odoo_launcher(python, odoo_root):
    """How to start this Odoo as a server: its ``odoo`` script, else ``odoo-bin``.

    Not ``python -m odoo``: a prefork server re-executes ``sys.argv[0]`` for its
    websocket (gevent) process, and ``odoo/__main__.py`` run as a file fails on a
    relative import, in a loop.
    """
    script = Path(python).parent / "odoo"
    if script.is_file():
        return [str(script)]
    return [python, str(odoo_root / "odoo-bin")]


def manifest(name):
    return ast.literal_eval((ROOT / name / "__manifest__.py").read_text())


def server_wide(addons):
    """The addons to give ``--load``: those with a ``post_load`` hook."""
    return [name for name in addons if manifest(name).get("post_load")]


def testable_addons():
    """Installable addons of this repository that have a tests package."""
    names = []
    for manifest in sorted(ROOT.glob("*/__manifest__.py")):
        data = ast.literal_eval(manifest.read_text())
        if data.get("installable", True) and (manifest.parent / "tests").is_dir():
            names.append(manifest.parent.name)
    return names


def parse_exports(text):
    """The variables of ``export NAME=value`` lines (a harness script's ``env``)."""
    env = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env


def services_env():
    subprocess.run([str(SERVICES), "up"], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([str(SERVICES), "env"], capture_output=True, text=True, check=True)
    return parse_exports(out.stdout)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: variables of the suite's contract: never inherited from the caller's environment, so
#: that a developer's own AWS_*, SWIFT_* or ODOO_SESSION_REDIS_SENTINEL_HOST cannot send
#: the tests to a real store or Redis
CONTRACT = (
    "AWS_", "SWIFT_", "ODOO_", "STATSD_", "RUNNING_ENV", "DISABLE_ATTACHMENT_STORAGE",
    "PROMETHEUS_",
)  # fmt: skip


def odoo_environment(services, container):
    """The variables a deployment gives Odoo, pointed at the local services."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONTRACT)}
    env.update(services)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            "AWS_HOST": services["TEST_S3_ENDPOINT"],
            "AWS_REGION": services["TEST_S3_REGION"],
            "AWS_ACCESS_KEY_ID": services["TEST_S3_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": services["TEST_S3_SECRET_KEY"],
            "AWS_BUCKETNAME": container,
            "SWIFT_AUTH_URL": services["TEST_SWIFT_AUTH_URL"],
            "SWIFT_ACCOUNT": services["TEST_SWIFT_ACCOUNT"],
            "SWIFT_PASSWORD": services["TEST_SWIFT_PASSWORD"],
            "SWIFT_WRITE_CONTAINER": container,
            "SWIFT_TEMP_URL_KEY": services["TEST_SWIFT_TEMP_URL_KEY"],
            "ODOO_SESSION_REDIS": "1",
            "ODOO_SESSION_REDIS_URL": services["TEST_REDIS_URL"],
            "ODOO_SESSION_REDIS_PREFIX": container,
            # a developer's database for cloud_platform's startup checks (dev: not
            # checked), so that the servers the tests start serve it
            "RUNNING_ENV": "dev",
            # objects of deleted attachments go at the next collection, as the
            # addons' tests of deletion expect; the retention's own tests set theirs
            "ODOO_ATTACHMENT_GC_RETENTION": "0",
        }
    )
    return env


def drop_container(services, container):
    sys.path.insert(0, str(ROOT))
    try:
        from stateless_odoo.storage import build_store
    except ImportError as exc:  # run by an interpreter without the core's dependencies
        print(f"odoo tier: could not remove container {container}: {exc}")
        return
    store = build_store(
        "swift",
        {
            "SWIFT_AUTH_URL": services["TEST_SWIFT_AUTH_URL"],
            "SWIFT_ACCOUNT": services["TEST_SWIFT_ACCOUNT"],
            "SWIFT_PASSWORD": services["TEST_SWIFT_PASSWORD"],
            "SWIFT_WRITE_CONTAINER": container,
        },
    )
    try:
        store.delete_many([info.key for info in store.list()])
        store.connection.delete_container(container)
    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the result
        print(f"odoo tier: could not remove container {container}: {exc}")


def run(python, odoo_root, addons, keep):
    services = services_env()
    pg = {
        "host": os.environ.get("PGHOST", services.get("TEST_PG_HOST", "127.0.0.1")),
        "port": os.environ.get("PGPORT", services.get("TEST_PG_PORT", "5432")),
        # as libpq does: the OS user's role; Odoo refuses to run as "postgres"
        "user": os.environ.get("PGUSER", getpass.getuser()),
    }
    db = f"stateless_tier2_{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}"
    container = f"stateless-tier2-{uuid.uuid4().hex[:10]}"
    data_dir = tempfile.mkdtemp(prefix="odoo-tier2-data-")
    addons_path = [
        p for p in (odoo_root / "addons", odoo_root / "odoo" / "addons") if p.is_dir()
    ] + [ROOT]
    command = [
        python, "-m", "odoo",
        "-d", db,
        "--db_host", pg["host"], "--db_port", pg["port"], "--db_user", pg["user"],
        "--addons-path", ",".join(map(str, addons_path)),
        "--data-dir", data_dir,
        "--load", ",".join(["base", "web", *server_wide(addons)]),
        "-i", ",".join(addons),
        "--test-tags", TEST_TAGS or ",".join(f"/{name}" for name in addons),
        "--without-demo", "all",
        "--stop-after-init",
        "--http-port", "0",
        "--gevent-port", str(free_port()),
        "--max-cron-threads", "0",
        "--log-level", "test",
    ]  # fmt: skip
    print(f"odoo tier: database {db}, container {container}, data dir {data_dir}")
    print(f"odoo tier: {' '.join(shlex.quote(c) for c in command)}", flush=True)
    started = time.monotonic()
    error_lines, summary, per_addon = [], None, {}
    try:
        with subprocess.Popen(
            command,
            env=odoo_environment(services, container),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=data_dir,
        ) as proc:
            timed_out = threading.Event()
            watchdog = threading.Timer(TIMEOUT, lambda: (timed_out.set(), proc.kill()))
            watchdog.start()
            try:
                for line in proc.stdout:
                    sys.stdout.write(line)
                    if re.search(r"^\S+ \S+ \d+ (ERROR|CRITICAL) ", line):
                        error_lines.append(line.rstrip())
                    match = _SUMMARY.search(line)
                    if match:
                        summary = tuple(int(n) for n in match.groups())
                    match = _STATS.search(line)
                    if match:
                        per_addon[match.group(1)] = int(match.group(2))
                returncode = proc.wait()
            finally:
                watchdog.cancel()
            if timed_out.is_set():
                error_lines.append(f"killed after {TIMEOUT} s (ODOO_TIER_TIMEOUT)")
    finally:
        if not keep:
            subprocess.run(
                ["dropdb", "--if-exists", "-h", pg["host"], "-p", pg["port"], "-U", pg["user"], db],
                check=False,
            )
            shutil.rmtree(data_dir, ignore_errors=True)
            drop_container(services, container)
    elapsed = time.monotonic() - started
    missing = [name for name in addons if not per_addon.get(name) and not TEST_TAGS]
    if missing:
        error_lines.append(f"no test ran for: {', '.join(missing)}")
    return returncode, summary, error_lines, elapsed


_SCENARIO = re.compile(r"^e2e: (\d+) passed, (\d+) failed$")


def run_scenario():
    """The end-to-end scenario (tests/e2e/scenario.py), after the addons' tests:
    ``(passed, failed)``, or None when it skipped (it says why)."""
    print("\nodoo tier: the end-to-end scenario (tests/e2e/scenario.py)", flush=True)
    result = None
    with subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.scenario"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            match = _SCENARIO.match(line.strip())
            if match:
                result = int(match.group(1)), int(match.group(2))
        returncode = proc.wait()
    if result is None and returncode == 0:
        return None  # skipped, with its banner
    if result is None:
        return 0, 1  # it crashed: its output says how
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("addons", nargs="*", help="addons to test (default: all with tests)")
    parser.add_argument("--keep", action="store_true", help="keep database and data dir")
    args = parser.parse_args()

    if os.environ.get("ODOO_TIER") == "skip":
        banner("ODOO TIER SKIPPED: ODOO_TIER=skip")
        return 0
    python, found = find_odoo()
    if python is None:
        banner(f"ODOO TIER SKIPPED: {found}")
        return 0
    _major, version, odoo_root = found
    print(f"odoo tier: using Odoo {version} from {odoo_root} (interpreter {python})")
    addons = args.addons or testable_addons()
    if not addons:
        banner("ODOO TIER: no installable addon with tests")
        return 1
    ensure_core_dependencies(python)
    returncode, summary, error_lines, elapsed = run(python, odoo_root, addons, args.keep)
    scenario = None
    if args.addons or TEST_TAGS or os.environ.get("E2E_SCENARIO") == "skip":
        banner("E2E SCENARIO SKIPPED: addons or ODOO_TIER_TEST_TAGS given, or E2E_SCENARIO=skip")
    else:
        scenario = run_scenario()

    problems = []
    if returncode:
        problems.append(f"Odoo exited with {returncode}")
    if summary is None:
        problems.append("Odoo printed no test summary: no test ran")
        failed = errors = total = 0
    else:
        failed, errors, total = summary
        if total == 0:
            problems.append("0 tests ran")
    if error_lines:
        problems.append(f"{len(error_lines)} ERROR/CRITICAL log line(s), first: {error_lines[0]}")
    passed = max(total - failed - errors, 0)
    bad = failed + errors or (1 if problems else 0)
    if scenario is not None:
        scenario_passed, scenario_failed = scenario
        passed += scenario_passed
        bad += scenario_failed
        if scenario_failed:
            problems.append(f"the e2e scenario: {scenario_failed} step(s) failed")
    print(f"\nodoo tier: {', '.join(addons)} in {elapsed:.0f} s")
    for problem in problems:
        print(f"odoo tier: FAILED: {problem}")
    print(f"{passed} passed, {bad} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
