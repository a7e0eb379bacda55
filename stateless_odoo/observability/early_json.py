"""JSON from a process's first log line (``ODOO_LOGGING_JSON=1``): the start-up hook.

``logging_json`` is a server-wide addon: it loads after Odoo has already logged its
version, configuration file, addons paths and database, in its own text format. So the
core's wheel also installs ``stateless_odoo_json_logging.pth`` into site-packages;
Python runs its one line at every interpreter start, and that line imports this module
only when ``ODOO_LOGGING_JSON`` is in the environment (any other process pays for one
``os.environ`` lookup). :func:`arm` then:

- waits for ``odoo.netsvc`` to be imported and makes its ``init_logger`` (which ``odoo``,
  ``odoo shell`` and every other command call when they parse their configuration)
  build the JSON formatter instead of Odoo's text ones: every handler Odoo installs
  (stderr, ``--logfile``, syslog) writes JSON from its first line;
- in the ``odoo`` program (``odoo``, ``odoo-bin``, ``python -m odoo``), until
  ``init_logger`` runs, writes Python's warnings (the websocket process's imports warn)
  and any log record to stderr as JSON;
- turns what ``odoo.cli.server`` writes to stderr before its logging exists (the
  "Running as user 'root'" warning, the refusal of the ``postgres`` user) into log
  records, as Odoo words them.

Prefork workers inherit all of it; the websocket (gevent) process, started anew, goes
through the hook again. What Odoo's command line parser prints (usage errors) stays
text.

Nothing here may stop a process: a bad value is left to ``logging_json``'s
``post_load`` (which names it and stops the server), and a failure of the hook itself
is one line on stderr, after which Odoo logs as usual until ``post_load``.
"""

import itertools
import os
import sys

# no more imports at the top: every Python of the environment imports this module when
# the variable is set; logging and the formatter are imported when Odoo is

#: the handler that writes JSON to stderr before Odoo's logging exists
_early = {}


def _warn(exc):
    sys.stderr.write(f"stateless_odoo: JSON logging start-up hook not applied: {exc!r}\n")


def _json_formatter_class():
    """A formatter class built the way Odoo builds its own (``DBFormatter(format)``),
    which ignores Odoo's text format."""
    from .jsonlog import JsonFormatter

    class OdooJsonFormatter(JsonFormatter):
        def __init__(self, fmt=None, *args, **kwargs):
            super().__init__()

    return OdooJsonFormatter


def patch_netsvc(netsvc):
    """Make ``netsvc.init_logger`` install JSON formatters (idempotent).

    ``init_logger`` looks up ``DBFormatter`` and ``ColoredFormatter`` when it runs: they
    are swapped for the JSON one during that call only (``odoo.fields`` tests the
    handler's formatter against the real ``ColoredFormatter``), so that even the lines
    ``init_logger`` logs itself are JSON.
    """
    original = netsvc.init_logger
    if getattr(original, "_stateless_json", False):
        return
    formatter_class = _json_formatter_class()

    def init_logger(*args, **kwargs):
        _stop_early_handler()
        saved = netsvc.DBFormatter, netsvc.ColoredFormatter
        netsvc.DBFormatter = netsvc.ColoredFormatter = formatter_class
        try:
            return original(*args, **kwargs)
        finally:
            netsvc.DBFormatter, netsvc.ColoredFormatter = saved

    init_logger._stateless_json = True
    init_logger.__wrapped__ = original
    netsvc.init_logger = init_logger


def patch_cli_server(server):
    """Make what ``server.check_root_user`` and ``check_postgres_user`` write to stderr
    log records (Odoo's checks and words, a record instead of a bare line)."""
    import logging

    for name, level in (
        ("check_root_user", logging.WARNING),
        ("check_postgres_user", logging.CRITICAL),
    ):
        original = getattr(server, name, None)
        if original is None or getattr(original, "_stateless_json", False):
            continue
        setattr(server, name, _stderr_as_records(original, server.__name__, level))


def _stderr_as_records(function, logger, level):
    import contextlib
    import io
    import logging

    def logged(*args, **kwargs):
        written = io.StringIO()
        try:
            with contextlib.redirect_stderr(written):
                return function(*args, **kwargs)
        finally:
            for line in written.getvalue().splitlines():
                if line.strip():
                    logging.getLogger(logger).log(level, line)

    logged._stateless_json = True
    logged.__wrapped__ = function
    return logged


#: what to patch in which module, right after it is first executed
PATCHES = {"odoo.netsvc": patch_netsvc, "odoo.cli.server": patch_cli_server}


class _AfterImport:
    """A finder of ``sys.meta_path`` (``importlib.abc.MetaPathFinder``'s protocol) that
    runs ``patches[name](module)`` right after ``name`` is first executed: the module is
    found by the finders that would have found it."""

    def __init__(self, patches):
        self.patches = dict(patches)

    def find_spec(self, fullname, path=None, target=None):
        patch = self.patches.pop(fullname, None)
        if patch is None:
            return None
        if not self.patches:
            sys.meta_path.remove(self)
        spec = _find_spec_without(self, fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_patch(module):
            exec_module(module)
            try:
                patch(module)
            except Exception as exc:  # noqa: BLE001 - a hook never stops Odoo
                _warn(exc)

        spec.loader.exec_module = exec_then_patch
        return spec


def _find_spec_without(finder, fullname, path):
    """The spec the other finders give ``fullname``."""
    for other in sys.meta_path:
        if other is finder or not hasattr(other, "find_spec"):
            continue
        spec = other.find_spec(fullname, path)
        if spec is not None:
            return spec
    return None


def is_odoo_program(argv=None, orig_argv=None):
    """Whether this interpreter runs Odoo's command (``odoo``, ``odoo-bin``,
    ``python -m odoo``)."""
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    if argv and os.path.basename(argv[0]) in ("odoo", "odoo-bin"):
        return True
    return any(a == "-m" and b == "odoo" for a, b in itertools.pairwise(orig_argv))


def _start_early_handler():
    import logging

    from .jsonlog import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    logging.captureWarnings(True)
    _early["handler"] = handler


def _stop_early_handler():
    handler = _early.pop("handler", None)
    if handler is not None:
        import logging

        logging.getLogger().removeHandler(handler)


def is_enabled(environ=None):
    """``ODOO_LOGGING_JSON``, read here for :mod:`.jsonlog` too: this module must stay
    light to import (``config`` only), jsonlog imports the formatter's libraries."""
    from ..config import EnvReader

    return EnvReader(environ).bool("ODOO_LOGGING_JSON", False)


def arm(environ=None):
    """Put the hook in place when ``ODOO_LOGGING_JSON`` is on; returns whether it is.
    Modules already imported are patched at once. Never raises."""
    try:
        if not is_enabled(environ):
            return False
        if any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
            return True
        waiting = {}
        for name, patch in PATCHES.items():
            if name in sys.modules:
                patch(sys.modules[name])
            else:
                waiting[name] = patch
        if waiting:
            sys.meta_path.insert(0, _AfterImport(waiting))
        if is_odoo_program() and "odoo.netsvc" in waiting:
            _start_early_handler()
        return True
    except Exception as exc:  # noqa: BLE001 - a bad value is post_load's to report
        _warn(exc)
        return False
