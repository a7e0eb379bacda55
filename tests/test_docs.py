"""The documentation against the code, read statically (tier 1: no service, nothing run).

- Every environment variable the suite reads is in a variable table of
  docs/deployment.md's section 3 ("Environment variable reference"), and every
  variable those tables document is read by the code (the variables of OCA
  server_environment's subsection excepted: that library reads them).
- The variables of "Not read by the suite" are read by nothing.
- README.md and docs/*.md name files and modules that exist, link to headings that
  exist, and cite nothing a reader of this repository cannot open.

How the code reads a variable: through :class:`stateless_odoo.config.EnvReader`
(``env.str("NAME", ...)``, ``.int``, ``.bool``, ..., with ``aliases=(...)`` for older
names; ``errors.read(env.str, "NAME", ...)`` through ``ConfigErrors``), or, for
code that has not moved to it yet, ``os.environ.get("NAME")``, ``os.getenv("NAME")``,
``os.environ["NAME"]`` and ``"NAME" in os.environ``. The names are found in the syntax
tree: string constants, module constants (``OWNER_VARIABLE``), their items
(``CONTAINER_VARIABLE[kind]``), loop variables over them and f-strings built from them
(``f"{variable}_UNSTRUCTURED"``). A read whose name the scanner cannot resolve must be
listed in ``DYNAMIC_READS`` with the names it reads.
"""

import ast
import functools
import inspect
import itertools
import re
from pathlib import Path

from stateless_odoo.config import EnvReader

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT = ROOT / "docs" / "deployment.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ADDONS = sorted(manifest.parent for manifest in ROOT.glob("*/__manifest__.py"))

#: the EnvReader methods that read a variable (its first argument)
GETTERS = frozenset(
    name
    for name, member in inspect.getmembers(EnvReader, inspect.isfunction)
    if not name.startswith("_")
)
VARIABLE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
#: keys of a WSGI environ (PEP 3333: CGI variables, HTTP_* headers), read with the same
#: ``environ.get(...)`` as the process environment but not variables of the suite
WSGI_KEYS = frozenset(
    {
        "CONTENT_LENGTH",
        "CONTENT_TYPE",
        "PATH_INFO",
        "QUERY_STRING",
        "RAW_URI",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "REMOTE_USER",
        "REQUEST_METHOD",
        "REQUEST_URI",
        "SCRIPT_NAME",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
    }
)

#: reads whose variable the scanner cannot resolve: (file, the call's source) -> the
#: names it reads (none for a read of a WSGI environ)
DYNAMIC_READS = {
    # the request id header's WSGI key (HTTP_X_REQUEST_ID by default), named by
    # ODOO_REQUEST_ID_HEADER: a request's header, not a variable
    ("stateless_odoo/observability/observe.py", "environ.get(key)"): frozenset(),
    # the access rule of an operations endpoint: Access.from_env("ODOO_PROMETHEUS"),
    # Access.from_env("ODOO_HEALTH")
    ("stateless_odoo/observability/access.py", "env.secret(f'{prefix}_TOKEN')"): frozenset(
        {"ODOO_PROMETHEUS_TOKEN", "ODOO_HEALTH_TOKEN"}
    ),
    ("stateless_odoo/observability/access.py", "env.str(f'{prefix}_ALLOW')"): frozenset(
        {"ODOO_PROMETHEUS_ALLOW", "ODOO_HEALTH_ALLOW"}
    ),
}

#: subsection of section 3 whose variables OCA server_environment reads (the suite
#: reads some of them too): documented, but not required to be read here
READ_BY_SERVER_ENVIRONMENT = "Server environments"
#: subsection of section 3 listing what readers may expect but nothing here reads;
#: ``PREFIX_*`` stands for every name that starts with ``PREFIX_``
NOT_READ = "Not read by the suite"


# -- the code ---------------------------------------------------------------------------


def code_files():
    """The core package without its test helpers, and the addons without their tests."""
    core = ROOT / "stateless_odoo"
    files = [path for path in core.rglob("*.py") if path.relative_to(core).parts[0] != "testing"]
    for addon in ADDONS:
        files += [
            path for path in addon.rglob("*.py") if "tests" not in path.relative_to(addon).parts
        ]
    return sorted(files)


def _module_constants(tree):
    """``NAME = <expression>`` at the top of a module."""
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                constants.setdefault(target.id, []).append(node.value)
    return constants


def _bindings(function):
    """Where each name of ``function`` gets its value: assignments, and the iterables
    of the loops and comprehensions that bind it (the name is one of their items)."""
    bindings = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            pairs = [(target, node.value) for target in node.targets]
        elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
            pairs = [(node.target, node.value)]
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
            pairs = [(node.target, node.iter)]
        else:
            continue
        for target, value in pairs:
            if isinstance(target, ast.Name):
                bindings.setdefault(target.id, []).append(value)
    return bindings


class Resolver:
    """The strings an expression can be, or ``None`` when it cannot be told."""

    def __init__(self, module_constants, global_constants):
        self.module_constants = module_constants
        self.global_constants = global_constants

    def strings(self, node, bindings, seen=frozenset()):
        if isinstance(node, ast.Constant):
            return {node.value} if isinstance(node.value, str) else None
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return self._union(node.elts, bindings, seen)
        if isinstance(node, ast.Dict):
            return self._union(node.values, bindings, seen)
        if isinstance(node, ast.Subscript):
            # an item of a tuple or a value of a dict: any of them
            return self.strings(node.value, bindings, seen)
        if isinstance(node, ast.Name):
            if node.id in seen:
                return None
            values = (
                bindings.get(node.id)
                or self.module_constants.get(node.id)
                or self.global_constants.get(node.id)
            )
            return self._union(values, bindings, seen | {node.id}) if values else None
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    value = value.value
                part = self.strings(value, bindings, seen)
                if part is None:
                    return None
                parts.append(part)
            return {"".join(chosen) for chosen in itertools.product(*parts)}
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self.strings(node.left, bindings, seen)
            right = self.strings(node.right, bindings, seen)
            if left is None or right is None:
                return None
            return {a + b for a in left for b in right}
        return None

    def _union(self, nodes, bindings, seen):
        found = set()
        for node in nodes:
            strings = self.strings(node, bindings, seen)
            if strings is None:
                return None
            found |= strings
        return found


def _is_environ(node):
    """``os.environ``, ``self.environ``, ``environ``: a process (or WSGI) environment."""
    return (isinstance(node, ast.Name) and node.id == "environ") or (
        isinstance(node, ast.Attribute) and node.attr == "environ"
    )


def _is_env_reader(node):
    """``env`` or ``EnvReader(...)``: what the suite names its readers."""
    return (isinstance(node, ast.Name) and node.id == "env") or (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name | ast.Attribute)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "EnvReader"
    )


def _reads(node):
    """``(name node, alias nodes, from_environ, may be dynamic)`` of each variable read
    by ``node``, an expression of any kind."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        attr, receiver = node.func.attr, node.func.value
        aliases = [kw.value for kw in node.keywords if kw.arg == "aliases"]
        if attr in GETTERS and node.args:
            yield node.args[0], aliases, False, _is_env_reader(receiver)
        elif (
            attr == "read"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Attribute)
            and node.args[0].attr in GETTERS
        ):
            # ConfigErrors.read(env.str, "NAME", ...)
            yield node.args[1], aliases, False, _is_env_reader(node.args[0].value)
        elif attr == "get" and _is_environ(receiver) and node.args:
            yield node.args[0], [], True, True
        elif attr == "getenv" and node.args:
            yield node.args[0], [], True, True
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id == "getenv" and node.args:
            yield node.args[0], [], True, True
    elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        if _is_environ(node.value):
            yield node.slice, [], True, True
    elif isinstance(node, ast.Compare) and len(node.ops) == 1:
        if isinstance(node.ops[0], ast.In | ast.NotIn) and _is_environ(node.comparators[0]):
            yield node.left, [], True, True


def _scopes(tree):
    """``(function or None, node)`` of every node, the EnvReader class's own body left
    out (its lookups read the name its caller gives)."""
    stack = [(None, tree)]
    while stack:
        function, node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef) and child.name == "EnvReader":
                continue
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            yield inner, child
            stack.append((inner, child))


@functools.cache
def scan():
    """``(variables read: name -> files, dynamic reads: (file, source) set)``."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in code_files()}
    global_constants = {}
    for tree in trees.values():
        for name, values in _module_constants(tree).items():
            global_constants.setdefault(name, []).extend(values)
    read, dynamic = {}, set()
    for path, tree in trees.items():
        relative = path.relative_to(ROOT).as_posix()
        resolver = Resolver(_module_constants(tree), global_constants)
        bindings_of = {}
        for function, node in _scopes(tree):
            for name_node, alias_nodes, from_environ, may_be_dynamic in _reads(node):
                if function not in bindings_of:
                    bindings_of[function] = _bindings(function) if function else {}
                bindings = bindings_of[function]
                names = set()
                for expression in (name_node, *alias_nodes):
                    strings = resolver.strings(expression, bindings)
                    if strings is None:
                        if may_be_dynamic:
                            source = ast.unparse(node)
                            dynamic.add((relative, source))
                            names |= set(DYNAMIC_READS.get((relative, source), ()))
                        continue
                    names |= strings
                for name in names:
                    if not VARIABLE.fullmatch(name):
                        continue
                    if from_environ and (name in WSGI_KEYS or name.startswith("HTTP_")):
                        continue
                    read.setdefault(name, set()).add(relative)
    return read, dynamic


# -- the documentation -------------------------------------------------------------------


def reference_tables():
    """``(subsection heading, header cells, rows of cells)`` of every table of
    docs/deployment.md's section 3."""
    text = DEPLOYMENT.read_text(encoding="utf-8")
    match = re.search(r"^## 3\. Environment variable reference$(.*?)^## ", text, re.M | re.S)
    assert match, "docs/deployment.md has no section '## 3. Environment variable reference'"
    heading, table, tables = "3", [], []
    for line in [*match.group(1).splitlines(), ""]:
        if line.startswith("|"):
            table.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
            continue
        if table:
            tables.append((heading, table[0], table[2:]))
            table = []
        if line.startswith("### "):
            heading = line[4:].strip()
    return tables


def documented():
    """``(name -> subsection headings)`` of the first column of every variable table
    (header ``variable``) of section 3, and the malformed names found there."""
    names, malformed = {}, []
    for heading, header, rows in reference_tables():
        if header[0] != "variable":
            continue
        for row in rows:
            tokens = re.findall(r"`([^`]+)`", row[0])
            if not tokens:
                malformed.append(f"{heading}: a row names no variable: {row[0]!r}")
            for token in tokens:
                wildcard = NOT_READ in heading and re.fullmatch(r"[A-Z][A-Z0-9_]*_\*", token)
                if not (VARIABLE.fullmatch(token) or wildcard):
                    malformed.append(f"{heading}: {token!r} is not a whole variable name")
                names.setdefault(token, set()).add(heading)
    return names, malformed


def _in(headings, title):
    return any(title in heading for heading in headings)


def _listing(names, read=None):
    return "\n".join(
        f"  {name}" + (f"  (read in {', '.join(sorted(read[name]))})" if read else "")
        for name in sorted(names)
    )


# -- the tests ----------------------------------------------------------------------------


def test_the_reference_has_its_subsections():
    headings = {heading for heading, _header, _rows in reference_tables()}
    for title in (READ_BY_SERVER_ENVIRONMENT, NOT_READ):
        assert _in(headings, title), (
            f"docs/deployment.md section 3 has no table under a heading with {title!r}:"
            " tests/test_docs.py relies on it (update READ_BY_SERVER_ENVIRONMENT / NOT_READ)"
        )


def test_variable_tables_name_whole_variables():
    _names, malformed = documented()
    assert not malformed, (
        "docs/deployment.md section 3: write every variable of a table's first column in"
        " full, in backticks (`ODOO_SESSION_REDIS_PORT`, not `_PORT`):\n" + "\n".join(malformed)
    )


def test_every_variable_the_code_reads_is_documented():
    read, _dynamic = scan()
    names, _malformed = documented()
    described = {
        name for name, headings in names.items() if any(NOT_READ not in h for h in headings)
    }
    missing = set(read) - described
    assert not missing, (
        "variables read by the code but in no variable table of docs/deployment.md"
        f" section 3 (add a row: default, values, meaning):\n{_listing(missing, read)}"
    )


def test_every_documented_variable_is_read():
    read, _dynamic = scan()
    names, _malformed = documented()
    claimed = {
        name
        for name, headings in names.items()
        if any(NOT_READ not in h and READ_BY_SERVER_ENVIRONMENT not in h for h in headings)
    }
    unread = claimed - set(read)
    assert not unread, (
        "variables documented in docs/deployment.md section 3 that no code reads (remove"
        " the row, or move it to 'Not read by the suite'):\n" + _listing(unread)
    )


def test_variables_not_read_by_the_suite_are_not_read():
    read, _dynamic = scan()
    names, _malformed = documented()
    not_read = [name for name, headings in names.items() if _in(headings, NOT_READ)]
    wrong = {
        name
        for name in read
        for listed in not_read
        if name == listed or (listed.endswith("_*") and name.startswith(listed[:-1]))
    }
    assert not wrong, (
        "variables that docs/deployment.md lists under 'Not read by the suite' but the code"
        f" reads:\n{_listing(wrong, read)}"
    )


def test_every_dynamic_read_is_listed():
    _read, dynamic = scan()
    unknown = dynamic - set(DYNAMIC_READS)
    assert not unknown, (
        "reads of a variable whose name tests/test_docs.py cannot resolve statically: add"
        " each to DYNAMIC_READS with the names it reads:\n"
        + "\n".join(f"  {path}: {source}" for path, source in sorted(unknown))
    )
    stale = set(DYNAMIC_READS) - dynamic
    assert not stale, "DYNAMIC_READS lists reads that are gone: " + ", ".join(
        f"{path}: {source}" for path, source in sorted(stale)
    )


def test_the_scanner_finds_each_way_of_reading():
    """The scanner itself, on code written for it."""
    source = """
import os
OWNER = "STATELESS_OWNER"
KINDS = {"a": "A_CONTAINER", "b": "B_CONTAINER"}
def settings(environ=None, kind="a"):
    env = EnvReader(environ)
    env.str("PLAIN", "x")
    errors.read(env.seconds, "VIA_ERRORS", 5.0)
    env.str("NEW_NAME", aliases=("OLD_NAME",))
    env.str(OWNER)
    variable = KINDS[kind]
    env.bool(f"{variable}_UNSTRUCTURED")
    for name in ("LOOP_ONE", "LOOP_TWO"):
        env.is_set(name)
    os.environ.get("OS_GET")
    os.getenv("OS_GETENV")
    os.environ["OS_ITEM"]
    os.environ["OS_SET"] = "1"
    "OS_IN" in os.environ
    environ.get("PATH_INFO")
    random.choice(kinds)
"""
    tree = ast.parse(source)
    resolver = Resolver(_module_constants(tree), {})
    found = set()
    for function, node in _scopes(tree):
        bindings = _bindings(function) if function else {}
        for name_node, alias_nodes, from_environ, _dynamic in _reads(node):
            for expression in (name_node, *alias_nodes):
                names = resolver.strings(expression, bindings) or set()
                found |= {n for n in names if not (from_environ and n in WSGI_KEYS)}
    assert found == {
        "PLAIN",
        "VIA_ERRORS",
        "NEW_NAME",
        "OLD_NAME",
        "STATELESS_OWNER",
        "A_CONTAINER_UNSTRUCTURED",
        "B_CONTAINER_UNSTRUCTURED",
        "LOOP_ONE",
        "LOOP_TWO",
        "OS_GET",
        "OS_GETENV",
        "OS_ITEM",
        "OS_IN",
    }


# -- what the documents point at -----------------------------------------------------------

#: a path of this repository, as the documents write it (backticks or a link)
_TOP = "|".join(
    re.escape(name)
    for name in [".ci", "bench", "docs", "scripts", "setup", "stateless_odoo", "tests"]
    + [addon.name for addon in ADDONS]
)
_PATH = re.compile(rf"(?:`|\]\(\.\./|\]\()((?:{_TOP})/[^\s`)\]#]*)")
_MODULE = re.compile(r"`(stateless_odoo(?:\.\w+)+)`")


def test_documents_name_files_that_exist():
    missing = []
    for doc in DOCS:
        for path in _PATH.findall(doc.read_text(encoding="utf-8")):
            if any(mark in path for mark in "<{*|"):
                continue  # a pattern (bench/bench_<name>.py), not a path
            if not (ROOT / path.rstrip("/.")).exists():
                missing.append(f"{doc.relative_to(ROOT)}: {path}")
    assert not missing, "paths that do not exist:\n" + "\n".join(missing)


def test_documents_name_modules_that_exist():
    missing = []
    for doc in DOCS:
        for dotted in _MODULE.findall(doc.read_text(encoding="utf-8")):
            base = ROOT.joinpath(*dotted.split("."))
            if not (base.with_suffix(".py").exists() or (base / "__init__.py").exists()):
                missing.append(f"{doc.relative_to(ROOT)}: {dotted}")
    assert not missing, "modules that do not exist:\n" + "\n".join(missing)


def _anchors(doc):
    """The anchors GitHub gives the headings of ``doc`` (code blocks left out)."""
    anchors, fenced = set(), False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_links_between_documents_lead_somewhere():
    broken = []
    for doc in DOCS:
        for target, anchor in re.findall(
            r"\]\(([^)#\s]*\.md|)#([^)\s]+)\)", doc.read_text(encoding="utf-8")
        ):
            linked = (doc.parent / target).resolve() if target else doc
            if not linked.is_file() or anchor not in _anchors(linked):
                broken.append(f"{doc.relative_to(ROOT)}: ({target}#{anchor})")
    assert not broken, "links to a missing document or heading:\n" + "\n".join(broken)


def test_documents_cite_nothing_a_reader_cannot_open():
    """Notes of the project's own history (seeds, issue numbers, a design file that is
    not in the repository, paragraph signs of another document) lead nowhere."""
    unreachable = re.compile(r"\bseeds?\b|\bissue \d+|DESIGN\.md|§", re.I)
    found = [
        f"{doc.relative_to(ROOT)}:{number}: {line.strip()}"
        for doc in DOCS
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1)
        if unreachable.search(line)
    ]
    assert not found, "references a reader cannot follow:\n" + "\n".join(found)
