"""``odoo attachment_storage_migrate``: move every attachment where the storage wants it.

The server-side entry point of the migration (``ir.attachment.force_storage()`` is the
other): for a large filestore, run it once from one host before the switch, or again at
any time; it resumes where a killed run stopped and refuses to run twice at once.
"""
# pylint: disable=print-used  # a command answers on its stdout, as Odoo's own commands do

import argparse
import logging
import os
import sys

from odoo import SUPERUSER_ID, api
from odoo.cli import Command
from odoo.exceptions import UserError
from odoo.modules.registry import Registry
from odoo.tools import config

from stateless_odoo.attachments.migration import MigrationRunning, ProgressBar
from stateless_odoo.errors import StatelessOdooError
from stateless_odoo.storage import KINDS

_logger = logging.getLogger(__name__)

EXIT_USAGE = 2  # argparse's
EXIT_RUNNING = 3
EXIT_SKIPPED = 4


class AttachmentStorageMigrate(Command):
    """Move attachments to the configured storage (object store, database, filestore)"""

    name = "attachment_storage_migrate"

    def run(self, args, prog=None):
        parser = argparse.ArgumentParser(
            prog=prog or f"{os.path.basename(sys.argv[0])} {self.name}",
            description="Move every attachment of a database where ir_attachment.location"
            " wants it: to the object store (small images, JS and CSS to the database),"
            " or back to the database or the filestore. Safe to kill and to run again;"
            " a progress bar is drawn on a terminal, the log has the same figures."
            f" Exit status: 0 done, {EXIT_RUNNING} another migration is running,"
            f" {EXIT_SKIPPED} some attachments could not be moved (named in the log),"
            f" {EXIT_USAGE} usage (a --location this database cannot use), 1 error;"
            " when it stops before the migration starts, nothing is changed."
            " Other options are Odoo's (--db_host, --data-dir, ...).",
        )
        parser.add_argument("-c", "--config", help="Odoo configuration file")
        parser.add_argument("-d", "--database", required=True, help="the database")
        parser.add_argument("--addons-path", help="Odoo's addons path")
        parser.add_argument(
            "--location",
            help="set ir_attachment.location first: db, file, or the store of an installed"
            " addon (s3: attachment_s3, swift: attachment_swift); checked, with that store's"
            " configuration, before anything is changed",
        )
        options, odoo_args = parser.parse_known_args(args)
        odoo_args.append(f"--database={options.database}")
        if options.config:
            odoo_args.append(f"--config={options.config}")
        if options.addons_path:
            odoo_args.append(f"--addons-path={options.addons_path}")
        config.parse_config(odoo_args)
        registry = Registry(options.database)
        try:
            migration = self._migration(registry, options, parser)
        except (UserError, StatelessOdooError) as exc:
            message = exc.args[0] if isinstance(exc, UserError) else str(exc)
            unchanged = (
                f"; ir_attachment.location is left as it was, not set to {options.location!r}"
                if options.location is not None
                else ""
            )
            _logger.error("attachment migration not started: %s%s", message, unchanged)
            sys.exit(1)
        migration.progress = bar = ProgressBar()
        if bar.enabled:
            # on a terminal the bar replaces the per-batch log lines
            logging.getLogger("stateless_odoo.attachments.migration").setLevel(logging.WARNING)
        try:
            report = migration.run()
        except MigrationRunning as exc:
            _logger.warning("%s", exc)
            sys.exit(EXIT_RUNNING)
        except StatelessOdooError as exc:
            bar.close()
            _logger.error("attachment migration stopped: %s", exc)
            sys.exit(1)
        bar.close()
        if bar.enabled:
            print(
                f"{report.moved} attachments moved ({report.bytes / 1e6:.1f} MB),"
                f" {report.files_removed} local files removed, {report.skipped_rows} skipped,"
                f" in {report.seconds:.1f} s",
                file=sys.stderr,
            )
        sys.exit(EXIT_SKIPPED if report.skipped else 0)

    @staticmethod
    def _location_error(attachments, location):
        """Why ``location`` cannot be this database's ``ir_attachment.location``, or None.

        Odoo writes any other value than ``db`` to the local filestore, which a stateless
        host forgets: only ``db``, ``file`` and the kinds of the installed store addons
        (``_object_storage_kinds``) are accepted."""
        installed = attachments._object_storage_kinds()
        accepted = ["db", "file", *(kind for kind in KINDS if kind in installed)]
        if location in accepted:
            return None
        if location in KINDS:
            reason = f"the addon attachment_{location} is not installed in this database"
        elif location.lower() in accepted:
            reason = f"not a location (they are lower case: {location.lower()!r})"
        else:
            reason = "not a location"
        return f"{reason}; use one of: {', '.join(accepted)}"

    def _migration(self, registry, options, parser):
        """The migration to run; with ``--location``, the new location is checked, set
        and committed only when the migration it asks for can start (its store's
        configuration included), then announced to the running processes."""
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            attachments = env["ir.attachment"]
            if options.location is None:
                return attachments._object_storage_migration()
            error = self._location_error(attachments, options.location)
            if error:
                parser.exit(
                    EXIT_USAGE,
                    f"{parser.prog}: error: --location {options.location!r} cannot be used"
                    f" in database {cr.dbname}: {error} (nothing changed)\n",
                )
            env["ir.config_parameter"].set_param("ir_attachment.location", options.location)
            # raises, and the location is rolled back with the cursor, when the store's
            # variables are missing or wrong, or DISABLE_ATTACHMENT_STORAGE is set
            migration = attachments._object_storage_migration()
        # running Odoo processes drop their cached location at their next request;
        # what one writes meanwhile is moved by the next run (it is idempotent)
        registry.signal_changes()
        _logger.info(
            "ir_attachment.location set to %s and announced to the running processes",
            options.location,
        )
        return migration
