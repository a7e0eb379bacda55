"""The addons' packaging: what Odoo checks of a manifest before it installs an addon."""

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = sorted(ROOT.glob("*/__manifest__.py"))


def manifest(path):
    return ast.literal_eval(path.read_text())


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.parent.name)
def test_python_dependencies_are_distributions(path):
    """Odoo 18 looks each ``external_dependencies['python']`` entry up as an installed
    distribution (``importlib.metadata``), and warns at install when only an import of
    that name works ('does not appear to be a valid PyPI package'): logging_json listed
    ``pythonjsonlogger``, python-json-logger's import name."""
    for name in manifest(path).get("external_dependencies", {}).get("python", []):
        assert importlib.metadata.version(name), name


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.parent.name)
def test_manifests_carry_what_oca_addons_carry(path):
    """The keys OCA's addons carry (pylint-odoo checks them too), with one version
    scheme, one website and one list of maintainers for the whole suite."""
    data = manifest(path)
    assert re.fullmatch(r"18\.0\.\d+\.\d+\.\d+", data["version"]), data["version"]
    assert data["development_status"] in ("Alpha", "Beta", "Production/Stable", "Mature")
    assert data["license"] == "AGPL-3"
    first = manifest(MANIFESTS[0])
    for key in ("author", "website", "maintainers"):
        assert data[key] == first[key], key
    assert data["website"].startswith("https://")


# --- each addon's wheel pulls only the libraries of its part --------------------------

#: the core's extras, one per part, and the distributions each brings itself
PARTS = {
    "s3": {"boto3", "botocore", "s3transfer"},
    "swift": {"python-swiftclient", "keystoneauth1"},
    "redis": {"redis", "hiredis"},
    "json": {"python-json-logger", "orjson"},
    "statsd": {"statsd"},
    "prometheus": {"prometheus-client"},
}

#: the core's module that uses each part's libraries
PART_MODULES = {
    "s3": "stateless_odoo.storage.s3",
    "swift": "stateless_odoo.storage.swift",
    "redis": "stateless_odoo.sessions.store",
    "json": "stateless_odoo.observability.jsonlog",
    "statsd": "stateless_odoo.observability.statsd_metrics",
    "prometheus": "stateless_odoo.observability.prometheus_metrics",
}


def requirement_name(spec):
    """A requirement's (or a wheel file name's) distribution name, normalized."""
    return canonicalize_name(Requirement(spec).name)


def wheel_requirements(wheel):
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    return [line.split(": ", 1)[1] for line in lines if line.startswith("Requires-Dist: ")]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    """The wheels setup/build-wheels.sh builds, as a hosting team builds them."""
    out = tmp_path_factory.mktemp("wheels")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    subprocess.run(
        [str(ROOT / "setup" / "build-wheels.sh"), str(out)],
        env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return {requirement_name(w.name.split("-")[0]): w for w in out.glob("*.whl")}


def addon_requirements(wheels, addon):
    """What installing the addon's wheel installs, but Odoo itself (not on PyPI): its own
    requirements and those of the addons it depends on."""
    wanted, todo = [], [f"odoo-addon-{addon}"]
    while todo:
        for spec in wheel_requirements(wheels[requirement_name(todo.pop())]):
            name = requirement_name(spec)
            if name == "odoo":
                continue
            if name.startswith("odoo-addon-"):
                todo.append(name)
            else:
                wanted.append(spec)
    return wanted


def core_imports(addon):
    """The core's modules an addon's code (not its tests) imports."""
    found = set()
    for path in (ROOT / addon).rglob("*.py"):
        if "tests" in path.relative_to(ROOT / addon).parts:
            continue
        pattern = r"^\s*(?:from|import) (stateless_odoo[\w.]*)"
        found.update(re.findall(pattern, path.read_text(), re.M))
    return sorted(found)


ADDONS_WITH_A_PART = {
    "attachment_s3": "s3",
    "attachment_swift": "swift",
    "session_redis": "redis",
    "logging_json": "json",
    "monitoring_statsd": "statsd",
    "monitoring_prometheus": "prometheus",
    "base_attachment_object_storage": None,
    "cloud_platform": None,
}


@pytest.mark.slow
@pytest.mark.parametrize("addon", sorted(ADDONS_WITH_A_PART))
def test_an_addons_wheel_pulls_only_the_libraries_of_its_part(addon, wheels, tmp_path):
    """``pip install odoo-addon-session_redis`` brings redis, not boto3: installed into a
    new venv (the wheels from setup/build-wheels.sh, the rest from the index), the addon's
    requirements bring its part's libraries and no other part's, and the core's modules
    the addon imports import there."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--find-links", str(next(iter(wheels.values())).parent),
         *addon_requirements(wheels, addon)],
        check=True, timeout=600,
    )  # fmt: skip
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    installed = {requirement_name(d["name"]) for d in json.loads(listed)}
    own = ADDONS_WITH_A_PART[addon]
    if own:
        assert PARTS[own] <= installed, f"{addon} lacks {PARTS[own] - installed}"
    for part, libraries in PARTS.items():
        if part != own:
            assert not libraries & installed, f"{addon} pulls {part}: {libraries & installed}"
    modules = core_imports(addon) + ([PART_MODULES[own]] if own else [])
    assert modules, addon
    subprocess.run([python, "-c", f"import {', '.join(modules)}"], check=True, timeout=60)


def test_pre_commit_checks_every_addon_with_the_pinned_tools():
    """.pre-commit-config.yaml (run by `./dev test`) runs the ruff of the `test` extra,
    and pylint-odoo on every addon of the tree."""
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    with (ROOT / "pyproject.toml").open("rb") as handle:
        test_extra = tomllib.load(handle)["project"]["optional-dependencies"]["test"]
    ruff = next(spec for spec in test_extra if requirement_name(spec) == "ruff")
    pins = set(re.findall(r'"(ruff==[^"]+)"', config))
    assert pins == {ruff}, (pins, ruff)
    listed = re.search(r"files: \^\(([^)]*)\)/", config).group(1).split("|")
    assert sorted(listed) == sorted(path.parent.name for path in MANIFESTS)
