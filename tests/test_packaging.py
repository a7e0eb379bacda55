"""The addons' packaging: what Odoo checks of a manifest before it installs an addon."""

import ast
import importlib.metadata
from pathlib import Path

import pytest

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
