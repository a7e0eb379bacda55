# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
# pylint: disable=print-used  # a command answers on its stdout, as Odoo's own commands do
"""``odoo cloud_platform check|status|migrate|backup|restore``: the platform's ops
commands (backup and restore: ``backups.py``).

``check`` and ``status`` read the database with plain SQL, without loading Odoo's
registry: they answer in a second, and also for a database the startup checks refuse.
``migrate`` is ``odoo attachment_storage_migrate`` (progress bar, resumable).
"""

import argparse
import json
import logging
import os
import sys

import psycopg2
from odoo import sql_db
from odoo.addons.base_attachment_object_storage.cli.attachment_storage_migrate import (
    AttachmentStorageMigrate,
)
from odoo.cli import Command
from odoo.tools import config

from stateless_odoo.attachments.settings import AttachmentSettings
from stateless_odoo.errors import ConfigError
from stateless_odoo.platform import checks, ops

from ..models.cloud_platform import running_env as platform_running_env
from . import backups

_logger = logging.getLogger(__name__)

EXIT_PROBLEMS = 1
EXIT_USAGE = 2  # argparse's
EXIT_UNREACHABLE = 3

USAGE = f"""\
Subcommands:
  check     check the environment for the running environment (RUNNING_ENV or the
            running_env option), and with -d the database's platform settings; exit
            status 0 fine (or bypassed by ODOO_CLOUD_PLATFORM_UNSAFE), {EXIT_PROBLEMS} problems
            (each named on stderr), {EXIT_UNREACHABLE} database unreachable or not Odoo's
  status    where a database's attachments are, what is left to move, pending object
            garbage collection, whether a migration runs (--json for machines)
  migrate   move every attachment where ir_attachment.location wants it (resumable,
            progress bar); the options of `odoo attachment_storage_migrate`: --location L
            sets it first, once checked (exit {EXIT_USAGE} and nothing changed when this
            database cannot use L)
  backup    -d DB --to s3://bucket/key.zip [--format zip|dump|sql] [--overwrite]: a
            backup streamed into an object store, with every attachment (zip)
  restore   -d DB --from s3://bucket/key.zip [--neutralize]: into a new database, the
            files to its store; killed, run it again
Other options are Odoo's (-c, --db_host, --db_port, --db_user, ...)."""


class CloudPlatformCommand(Command):
    """Cloud platform: check the environment, show storage status, migrate attachments"""

    name = "cloud_platform"

    def run(self, args):
        prog = f"{os.path.basename(sys.argv[0])} {self.name}"
        if not args or args[0] in ("-h", "--help", "help"):
            print(f"usage: {prog} {{check,status,migrate,backup,restore}} [options]\n\n{USAGE}")
            sys.exit(0 if args else EXIT_USAGE)
        action, args = args[0], args[1:]
        if action == "migrate":
            return AttachmentStorageMigrate().run(args, prog=f"{prog} migrate")
        if action in ("backup", "restore"):
            sys.exit(backups.run(action, args, f"{prog} {action}"))
        if action not in ("check", "status"):
            print(
                f"{prog}: unknown subcommand {action!r}: one of check, status, migrate,"
                " backup, restore",
                file=sys.stderr,
            )
            sys.exit(EXIT_USAGE)
        parser = argparse.ArgumentParser(prog=f"{prog} {action}")
        parser.add_argument("-c", "--config", help="Odoo configuration file")
        parser.add_argument("-d", "--database", help="the database (default: db_name)")
        if action == "check":
            probes = parser.add_mutually_exclusive_group()
            probes.add_argument(
                "--probe",
                dest="probes",
                action="store_const",
                const=True,
                help="also check that Redis and the object store answer"
                " (default: ODOO_CLOUD_PLATFORM_PROBES)",
            )
            probes.add_argument("--no-probe", dest="probes", action="store_const", const=False)
        else:
            parser.add_argument("--json", action="store_true", help="print JSON")
        options, odoo_args = parser.parse_known_args(args)
        if options.config:
            odoo_args.append(f"--config={options.config}")
        config.parse_config(odoo_args, setup_logging=True)
        if not options.database and config.get("db_name"):
            # -d is this command's; a configuration file's db_name counts too
            options.database = config["db_name"].split(",")[0].strip() or None
        if action == "status" and not options.database:
            parser.error("the database is required (-d or db_name in the configuration)")
        running_env = platform_running_env()
        try:
            if action == "check":
                sys.exit(self._check(options, running_env))
            sys.exit(self._status(options, running_env))
        except psycopg2.Error as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            print(
                f"{prog}: database {options.database!r} cannot be read: {reason}", file=sys.stderr
            )
            sys.exit(EXIT_UNREACHABLE)

    @staticmethod
    def _cursor(database):
        """A cursor on an Odoo database (exit 3 naming it when it is not one)."""
        cr = sql_db.db_connect(database).cursor()
        cr.execute("SELECT to_regclass('ir_config_parameter') IS NOT NULL")
        if not cr.fetchone()[0]:
            cr.close()
            print(f"database {database!r} is not an Odoo database", file=sys.stderr)
            sys.exit(EXIT_UNREACHABLE)
        return cr

    def _settings(self, database):
        with self._cursor(database) as cr:
            return ops.database_settings(cr)

    def _check(self, options, running_env):
        try:
            unsafe = checks.is_unsafe()
            kwargs = {}
            if options.database:
                settings = self._settings(options.database)
                kwargs = {
                    "platform": settings.platform,
                    "location": settings.location,
                    "installed_kinds": settings.installed_kinds,
                    "db_name": options.database,
                }
            problems = checks.check_database(
                running_env=running_env, probes=options.probes, **kwargs
            )
        except ConfigError as exc:
            # the checks' own variables (ODOO_CLOUD_PLATFORM_UNSAFE, ..._PROBES) are bad
            print(f"cloud platform check: {exc}", file=sys.stderr)
            return EXIT_PROBLEMS
        where = f"database {options.database}" if options.database else "no database given"
        if not problems:
            print(f"cloud platform check: {running_env} is configured as required ({where})")
            return 0
        error = checks.PlatformMisconfigured(problems, running_env)
        if unsafe:
            print(
                f"cloud platform check: ODOO_CLOUD_PLATFORM_UNSAFE is on, a server would"
                f" start anyway ({where}): {error}",
                file=sys.stderr,
            )
            return 0
        print(f"cloud platform check ({where}): {error}", file=sys.stderr)
        return EXIT_PROBLEMS

    def _status(self, options, running_env):
        try:
            retention = AttachmentSettings.from_env().gc_retention
        except ConfigError as exc:
            print(f"cloud platform status: {exc}", file=sys.stderr)
            return 2
        with self._cursor(options.database) as cr:
            status = ops.storage_status(cr, options.database, running_env, gc_retention=retention)
        if options.json:
            print(json.dumps(status.as_dict(), indent=2, sort_keys=True))
        else:
            print(status.render())
            if status.to_move:
                print(
                    f"\n{status.to_move} attachments are not where"
                    f" ir_attachment.location={status.settings.location} wants them: run"
                    f" `odoo cloud_platform migrate -d {options.database}`"
                )
        return 0
