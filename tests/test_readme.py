"""Each addon's readme/ fragments and the README.rst built from them (tier 1: no service).

- Every addon has the fragments DESCRIPTION, CONFIGURE, USAGE and CONTRIBUTORS, not
  empty; CONTRIBUTORS is a Markdown list.
- CONFIGURE names only variables that docs/deployment.md's section 3 documents, and
  every variable of the subsections of section 3 whose heading names the addon.
- The fragments' relative links lead to files and headings that exist.
- README.rst is what ``scripts/gen_readme.py`` writes (``--check``), and parses with
  docutils without a warning (as PyPI and Odoo's Apps screen render it), with no code
  block that needs Pygments.

``--check`` needs pandoc (``scripts/services.sh up`` installs it), docutils the
``test`` extra.
"""

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import test_docs as docs

ROOT = docs.ROOT
ADDONS = docs.ADDONS
GENERATOR = ROOT / "scripts" / "gen_readme.py"
REQUIRED = ("DESCRIPTION", "CONFIGURE", "USAGE", "CONTRIBUTORS")

_BACKTICKED = re.compile(r"`([^`\n]+)`")
#: a Markdown link or image: [text](target) (the target without a title)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _fragment(addon, name):
    return addon / "readme" / f"{name}.md"


def _code_less(text):
    """``text`` without its fenced code blocks (their lines are not prose)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def configured_variables(addon):
    """The variables ``addon``'s CONFIGURE.md names: whole names in backticks (values
    such as `AES256` have no underscore and are not taken for variables)."""
    text = _fragment(addon, "CONFIGURE").read_text(encoding="utf-8")
    return {
        token
        for token in _BACKTICKED.findall(text)
        if docs.VARIABLE.fullmatch(token) and "_" in token
    }


def own_variables(addon):
    """``(subsection heading, variable)`` of the variable tables of section 3 whose
    heading names ``addon`` in backticks (``### 3.2 S3: `attachment_s3` ``)."""
    found = set()
    for heading, header, rows in docs.reference_tables():
        if header[0] != "variable" or addon.name not in _BACKTICKED.findall(heading):
            continue
        for row in rows:
            found |= {(heading, token) for token in _BACKTICKED.findall(row[0])}
    return found


def test_every_addon_has_the_fragments():
    assert ADDONS, "no addon found"
    missing = [
        f"{path.relative_to(ROOT)}"
        for addon in ADDONS
        for path in (_fragment(addon, name) for name in REQUIRED)
        if not path.is_file() or not path.read_text(encoding="utf-8").strip()
    ]
    assert not missing, "readme fragments missing or empty:\n" + "\n".join(missing)


def test_contributors_are_a_list():
    wrong = []
    for addon in ADDONS:
        path = _fragment(addon, "CONTRIBUTORS")
        if not path.is_file():
            continue  # test_every_addon_has_the_fragments says so
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip() and not line.lstrip().startswith(("- ", "* ")):
                wrong.append(f"{path.relative_to(ROOT)}:{number}: {line}")
    assert not wrong, "CONTRIBUTORS.md is a list, one '- name' a line:\n" + "\n".join(wrong)


def test_configure_names_documented_variables_only():
    names, _malformed = docs.documented()
    documented = {
        name for name, headings in names.items() if any(docs.NOT_READ not in h for h in headings)
    }
    unknown = [
        f"{addon.name}/readme/CONFIGURE.md: {name}"
        for addon in ADDONS
        if _fragment(addon, "CONFIGURE").is_file()
        for name in sorted(configured_variables(addon) - documented)
    ]
    assert not unknown, (
        "variables named in a CONFIGURE.md but in no variable table of docs/deployment.md"
        " section 3 (document them there first, or fix the name):\n" + "\n".join(unknown)
    )


def test_configure_lists_the_addons_own_variables():
    missing = [
        f"{addon.name}/readme/CONFIGURE.md: {name} (docs/deployment.md, {heading})"
        for addon in ADDONS
        if _fragment(addon, "CONFIGURE").is_file()
        for heading, name in sorted(own_variables(addon))
        if name not in configured_variables(addon)
    ]
    assert not missing, (
        "variables that docs/deployment.md section 3 gives to an addon, missing from its"
        " CONFIGURE.md:\n" + "\n".join(missing)
    )


def test_fragment_links_lead_somewhere():
    broken = []
    for path in sorted(ROOT.glob("*/readme/*.md")):
        for target in _LINK.findall(_code_less(path.read_text(encoding="utf-8"))):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL, or an anchor of the fragment (none has headings)
            file, _sep, anchor = target.partition("#")
            linked = (path.parent / file).resolve()
            if not linked.exists() or (anchor and anchor not in docs._anchors(linked)):
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, "links to a missing file or heading:\n" + "\n".join(broken)


def _generate(*args, root=ROOT):
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "gen_readme.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_readmes_are_up_to_date():
    done = _generate("--check")
    assert done.returncode == 0, (
        f"scripts/gen_readme.py --check exited {done.returncode}:\n{done.stdout}{done.stderr}"
    )


def test_check_sees_a_fragment_changed_without_regenerating(tmp_path):
    """The generator on a copy of one addon: --check fails when a fragment changed,
    passes again once the README is regenerated; a broken link is an error."""
    addon = "base_attachment_object_storage_mail"
    shutil.copytree(ROOT / addon, tmp_path / addon, ignore=shutil.ignore_patterns("tests"))
    shutil.copytree(ROOT / "docs", tmp_path / "docs")  # what fragments may link to
    (tmp_path / "scripts").mkdir()
    shutil.copy2(GENERATOR, tmp_path / "scripts" / "gen_readme.py")
    assert _generate("--check", root=tmp_path).returncode == 0

    usage = tmp_path / addon / "readme" / "USAGE.md"
    usage.write_text(usage.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    stale = _generate("--check", root=tmp_path)
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert addon in stale.stderr

    assert _generate(root=tmp_path).returncode == 0
    assert "One more line." in (tmp_path / addon / "README.rst").read_text(encoding="utf-8")
    assert _generate("--check", root=tmp_path).returncode == 0

    usage.write_text("[the guide](../../docs/nowhere.md)\n", encoding="utf-8")
    broken = _generate(root=tmp_path)
    assert broken.returncode == 2, broken.stdout + broken.stderr
    assert "docs/nowhere.md" in broken.stderr


def rst_problems(path):
    """docutils' warnings and errors on ``path``, rendered to HTML as PyPI and Odoo's
    Apps screen do (html4css1, no file inclusion, no raw HTML); '' when there is none."""
    try:
        import docutils.core
        import docutils.utils
        from docutils.writers import html4css1
    except ImportError:
        pytest.fail("docutils is missing: pip install -e '.[test]'", pytrace=False)
    stream = io.StringIO()
    try:
        docutils.core.publish_string(
            path.read_text(encoding="utf-8"),
            source_path=str(path),
            writer=html4css1.Writer(),
            settings_overrides={
                "_disable_config": True,
                "halt_level": 2,  # a warning stops it
                "report_level": 2,
                "warning_stream": stream,
                "file_insertion_enabled": False,
                "raw_enabled": False,
            },
        )
    except docutils.utils.SystemMessage as exc:
        return f"{exc}\n{stream.getvalue()}".strip()
    return stream.getvalue().strip()


@pytest.mark.parametrize("addon", ADDONS, ids=lambda addon: addon.name)
def test_readme_is_valid_rst(addon: Path):
    readme = addon / "README.rst"
    assert readme.is_file(), f"{addon.name}/README.rst is missing: run scripts/gen_readme.py"
    problems = rst_problems(readme)
    assert not problems, f"{addon.name}/README.rst:\n{problems}"
    # Odoo renders it without Pygments, which reports every code block with a language
    highlighted = re.findall(
        r"^\s*\.\. (?:code|code-block|sourcecode)::.*$", readme.read_text(encoding="utf-8"), re.M
    )
    assert not highlighted, f"{addon.name}/README.rst: code blocks with a language: {highlighted}"
