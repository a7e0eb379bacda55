#!/usr/bin/env python3
"""Build each addon's README.rst from its ``__manifest__.py`` and ``readme/*.md``.

    scripts/gen_readme.py                 write the README.rst of every addon
    scripts/gen_readme.py ADDON...        of these addons only
    scripts/gen_readme.py --check [...]   write nothing; exit 1 naming every addon whose
                                          README.rst is not what would be written

An addon is a directory of the repository's root with a ``__manifest__.py``. Its
README.rst is, in this order: the manifest's ``name`` as title, badges (development
status, license, the addon's folder on GitHub), the manifest's ``summary``, the
fragment DESCRIPTION, a table of contents, the sections of the other fragments
(INSTALL: Installation, CONFIGURE: Configuration, USAGE: Usage, ROADMAP: Known issues /
Roadmap, HISTORY: Changelog; a missing fragment, no section), Bug Tracker, and Credits
(Authors from ``author``, Contributors from CONTRIBUTORS, Other credits from CREDITS,
Maintainers from ``maintainers``).

Fragments are Markdown as GitHub renders it, converted to reStructuredText by pandoc
(Debian's ``pandoc``, which ``scripts/services.sh up`` installs). Their headings become
subsections of the section they are in (``#`` one level below it); code blocks become
literal blocks without a language (Odoo has no Pygments to highlight them). A link to a
file of the repository, relative to the fragment (``../../docs/deployment.md#...``),
becomes a link to that file on GitHub (``<website>/blob/HEAD/...``), so that it works
where the README is read: GitHub, and PyPI (it is the long description of the addon's
wheel); a relative link to a file that does not exist is an error.

The output depends only on these inputs and on pandoc's version, which the README's
header names: no date. A file is written only when its text changes.

Exit status: 0 done (or up to date), 1 out of date (``--check``), 2 an error (pandoc
missing, an addon without DESCRIPTION, a ``readme/*.md`` that is no fragment's name, a
broken link, an unknown addon).
"""

import argparse
import ast
import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = "scripts/gen_readme.py"

#: (fragment, section title) in the order of the README; DESCRIPTION has no title
SECTIONS = (
    ("DESCRIPTION", None),
    ("INSTALL", "Installation"),
    ("CONFIGURE", "Configuration"),
    ("USAGE", "Usage"),
    ("ROADMAP", "Known issues / Roadmap"),
    ("HISTORY", "Changelog"),
)
CONTRIBUTORS, CREDITS = "CONTRIBUTORS", "CREDITS"

#: manifest ``development_status`` -> colour of its badge
STATUS_COLOURS = {
    "Alpha": "red",
    "Beta": "yellow",
    "Production/Stable": "green",
    "Mature": "brightgreen",
}
STATUS_PAGE = "https://odoo-community.org/page/development-status"
#: manifest ``license`` -> the license's text
LICENSE_URLS = {
    "AGPL-3": "https://www.gnu.org/licenses/agpl-3.0-standalone.html",
    "GPL-3": "https://www.gnu.org/licenses/gpl-3.0-standalone.html",
    "LGPL-3": "https://www.gnu.org/licenses/lgpl-3.0-standalone.html",
    "OPL-1": "https://www.odoo.com/documentation/18.0/legal/licenses.html",
}

PANDOC_OPTIONS = (
    "--from=gfm",
    "--to=rst",
    # paragraphs keep the fragment's lines; a table keeps a row on a line (narrower, pandoc
    # cuts its cells at any character, inside a ``literal`` too)
    "--wrap=preserve",
    "--columns=1000",
    # a fragment's "#" is a subsection of the README's section ("Usage")
    "--shift-heading-level-by=1",
)


class GenerationError(Exception):
    """What stops the generation, for the user."""


# -- the inputs ------------------------------------------------------------------------


def addon_dirs(names=()):
    """The addons of the repository (or those named), sorted."""
    addons = sorted(path.parent for path in ROOT.glob("*/__manifest__.py"))
    if not names:
        return addons
    by_name = {addon.name: addon for addon in addons}
    unknown = [name for name in names if name.rstrip("/") not in by_name]
    if unknown:
        raise GenerationError(f"not an addon of {ROOT}: {', '.join(unknown)}")
    return [by_name[name.rstrip("/")] for name in names]


def read_manifest(addon):
    path = addon / "__manifest__.py"
    try:
        manifest = ast.literal_eval(path.read_text(encoding="utf-8"))
    except (SyntaxError, ValueError) as exc:
        raise GenerationError(f"{path.relative_to(ROOT)}: not a manifest: {exc}") from None
    if not isinstance(manifest, dict) or not manifest.get("name"):
        raise GenerationError(f"{path.relative_to(ROOT)}: a manifest without a name")
    return manifest


@functools.cache
def pandoc_version():
    if shutil.which("pandoc") is None:
        raise GenerationError(
            "pandoc is not installed: `apt-get install pandoc` (Debian),"
            " or `scripts/services.sh up`, which installs it"
        )
    out = subprocess.run(["pandoc", "--version"], capture_output=True, encoding="utf-8", check=True)
    return out.stdout.split("\n", 1)[0].removeprefix("pandoc").strip()


def _pandoc(args, text):
    pandoc_version()  # pandoc is there
    done = subprocess.run(
        ["pandoc", *args], input=text, capture_output=True, encoding="utf-8", check=False
    )
    if done.returncode:
        raise GenerationError(f"pandoc {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


# -- Markdown to reStructuredText --------------------------------------------------------


def _repository_link(url, fragment, website):
    """``url`` as written in ``fragment``, made absolute when it names a file of the
    repository; other links are left as they are."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path or url.startswith("/"):
        return url  # a URL, an anchor of the fragment itself, or a site path
    target = (fragment.parent / parts.path).resolve()
    where = fragment.relative_to(ROOT)
    if not target.is_relative_to(ROOT):
        raise GenerationError(f"{where}: {url!r} leads out of the repository")
    if not target.exists():
        raise GenerationError(f"{where}: {url!r} names a file that does not exist")
    if not website:
        return url
    kind = "tree" if target.is_dir() else "blob"
    path = quote(target.relative_to(ROOT).as_posix())
    anchor = f"#{parts.fragment}" if parts.fragment else ""
    return f"{website.rstrip('/')}/{kind}/HEAD/{path}{anchor}"


def _adapt(node, rewrite):
    """In place, in a pandoc JSON tree: rewrite the target of every link and image, and
    drop the language of code blocks. Odoo renders README.rst (the Apps screen) with
    docutils and without Pygments, and docutils reports each ``.. code:: sh`` then ("Cannot
    analyze code"); a plain literal block (``::``) renders the same everywhere."""
    if isinstance(node, dict):
        if node.get("t") in ("Link", "Image"):
            target = node["c"][2]
            target[0] = rewrite(target[0])
        elif node.get("t") == "CodeBlock":
            node["c"][0][1] = []  # [identifier, classes, attributes]
        for value in node.values():
            _adapt(value, rewrite)
    elif isinstance(node, list):
        for value in node:
            _adapt(value, rewrite)


def fragment_rst(fragment, website):
    """The reStructuredText of a Markdown fragment ('' when it is empty)."""
    text = fragment.read_text(encoding="utf-8")
    if not text.strip():
        return ""
    tree = json.loads(_pandoc(["--from=gfm", "--to=json"], text))
    _adapt(tree, functools.partial(_repository_link, fragment=fragment, website=website))
    options = [option for option in PANDOC_OPTIONS if not option.startswith("--from")]
    return _pandoc(["--from=json", *options], json.dumps(tree)).strip()


# -- the README ------------------------------------------------------------------------------


def rst_escape(text):
    """Plain text (a manifest's name or summary) as reStructuredText that says it."""
    text = re.sub(r"([\\*`|])", r"\\\1", text)
    # a word followed by "_" or "__" is a reference; "_" inside a word is not
    return re.sub(r"(?<=\w)(_+)(?=\W|$)", lambda m: "\\_" * len(m.group(1)), text)


def _badge_text(text):
    """A part of a shields.io static badge's path."""
    return quote(text.replace("-", "--").replace("_", "__").replace(" ", "_"), safe="")


def _heading(title, underline, overline=False):
    rule = underline * len(title)
    return f"{rule}\n{title}\n{rule}" if overline else f"{title}\n{rule}"


def _github_repository(website):
    """``"owner/name"`` of a GitHub website, else ``None``."""
    match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)/?", website or "")
    return match.group(1) if match else None


def badges(addon, manifest):
    """``(substitution definitions, the line that shows them)``."""
    definitions = []
    status = manifest.get("development_status")
    if status:
        colour = STATUS_COLOURS.get(status, "lightgrey")
        definitions.append(
            (
                f"https://img.shields.io/badge/maturity-{_badge_text(status)}-{colour}.png",
                STATUS_PAGE,
                status,
            )
        )
    license_ = manifest.get("license")
    if license_:
        definitions.append(
            (
                f"https://img.shields.io/badge/license-{_badge_text(license_)}-blue.png",
                LICENSE_URLS.get(license_),
                f"License: {license_}",
            )
        )
    website = manifest.get("website")
    repository = _github_repository(website)
    if repository:
        definitions.append(
            (
                f"https://img.shields.io/badge/github-{_badge_text(repository)}-lightgray.png"
                "?logo=github",
                f"{website.rstrip('/')}/tree/HEAD/{addon.name}",
                repository,
            )
        )
    lines, shown = [], []
    for number, (image, target, alt) in enumerate(definitions, 1):
        lines.append(f".. |badge{number}| image:: {image}")
        if target:
            lines.append(f"   :target: {target}")
        lines.append(f"   :alt: {alt}")
        shown.append(f"|badge{number}|")
    return "\n".join(lines), " ".join(shown)


def _bullets(items):
    return "\n".join(f"- {item}" for item in items)


def render(addon, manifest, fragments):
    """The README.rst of ``addon``; ``fragments`` maps a fragment's name to its
    reStructuredText."""
    website = manifest.get("website") or ""
    name = rst_escape(manifest["name"].strip())
    header = (
        f".. This file is generated by {GENERATOR} (pandoc {pandoc_version()}) from the\n"
        "   addon's __manifest__.py and readme/*.md: edit those, then run\n"
        f"   {GENERATOR}; what is changed here is overwritten."
    )
    blocks = [header, _heading(name, "=", overline=True)]
    definitions, shown = badges(addon, manifest)
    if shown:
        blocks += [shown, definitions]
    summary = " ".join((manifest.get("summary") or "").split())
    if summary:
        blocks.append(rst_escape(summary))
    if not fragments.get("DESCRIPTION"):
        raise GenerationError(f"{addon.name}/readme/DESCRIPTION.md is missing or empty")
    blocks.append(fragments["DESCRIPTION"])
    blocks.append("**Table of contents**\n\n.. contents::\n   :local:")
    for fragment, title in SECTIONS:
        if title and fragments.get(fragment):
            blocks += [_heading(title, "="), fragments[fragment]]

    blocks.append(_heading("Bug Tracker", "="))
    if website:
        issues = f"{website.rstrip('/')}/issues" if _github_repository(website) else website
        blocks.append(
            f"Bugs are tracked on `the project's issues <{issues}>`__. Check there whether"
            " yours is known already; if not, report it with the addon's name"
            f" (``{addon.name}``) and version, what you ran and what you saw."
        )
    else:
        blocks.append("Report bugs to the authors below.")

    blocks.append(_heading("Credits", "="))
    authors = [rst_escape(author.strip()) for author in manifest.get("author", "").split(",")]
    if any(authors):
        blocks += [_heading("Authors", "-"), _bullets(author for author in authors if author)]
    if fragments.get(CONTRIBUTORS):
        blocks += [_heading("Contributors", "-"), fragments[CONTRIBUTORS]]
    if fragments.get(CREDITS):
        blocks += [_heading("Other credits", "-"), fragments[CREDITS]]
    maintainers = manifest.get("maintainers") or []
    repository = _github_repository(website)
    if maintainers or repository:
        blocks.append(_heading("Maintainers", "-"))
        if maintainers:
            blocks.append(
                "Current maintainers: "
                + ", ".join(
                    f"`{rst_escape(login)} <https://github.com/{quote(login)}>`__"
                    for login in maintainers
                )
                + "."
            )
        if repository:
            blocks.append(
                f"This addon is part of the `{repository} <{website}>`__ project on GitHub,"
                " where contributions are welcome."
            )
    return "\n\n".join(block.strip("\n") for block in blocks) + "\n"


def readme(addon):
    """The text of ``addon``'s README.rst."""
    manifest = read_manifest(addon)
    website = manifest.get("website")
    names = [fragment for fragment, _title in SECTIONS] + [CONTRIBUTORS, CREDITS]
    unknown = sorted(
        path.name for path in (addon / "readme").glob("*.md") if path.stem not in names
    )
    if unknown:
        # a misspelt fragment would silently be left out of the README
        raise GenerationError(
            f"{addon.name}/readme/: {', '.join(unknown)}: not a fragment"
            f" (they are {', '.join(f'{name}.md' for name in names)})"
        )
    fragments = {}
    for name in names:
        path = addon / "readme" / f"{name}.md"
        if path.is_file():
            fragments[name] = fragment_rst(path, website)
    return render(addon, manifest, fragments)


def _recorded_pandoc(text):
    match = re.search(r"\(pandoc ([^)]+)\)", text.split("\n", 1)[0])
    return match.group(1) if match else None


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog=GENERATOR,
        description="Build each addon's README.rst from its manifest and readme/*.md"
        " fragments (Markdown, converted by pandoc).",
    )
    parser.add_argument("addons", nargs="*", metavar="ADDON", help="default: every addon")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 naming the addons whose README.rst is out of date",
    )
    options = parser.parse_args(argv)
    try:
        stale, versions = [], set()
        for addon in addon_dirs(options.addons):
            path = addon / "README.rst"
            text = readme(addon)
            current = path.read_text(encoding="utf-8") if path.is_file() else None
            if current == text:
                continue
            if options.check:
                stale.append(addon.name)
                if current is not None and _recorded_pandoc(current):
                    versions.add(_recorded_pandoc(current))
                continue
            path.write_text(text, encoding="utf-8")
            print(f"{path.relative_to(ROOT)} written")
    except GenerationError as exc:
        print(f"{GENERATOR}: {exc}", file=sys.stderr)
        return 2
    if stale:
        message = (
            f"{GENERATOR}: README.rst out of date (edit readme/*.md or the manifest, never"
            f" README.rst, then run {GENERATOR}): {', '.join(stale)}"
        )
        other = sorted(versions - {pandoc_version()})
        if other:
            message += (
                f"; they were generated with pandoc {', '.join(other)}, this is pandoc"
                f" {pandoc_version()}: use the same pandoc (Debian 12's)"
            )
        print(message, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
