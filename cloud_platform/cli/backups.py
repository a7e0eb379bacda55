# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
# pylint: disable=print-used  # a command answers on its stdout, as Odoo's own commands do
"""``odoo cloud_platform backup|restore``: a database's backup to and from an object
store, streamed (no local copy of a backup), with every attachment (zip format); the
logic is in :mod:`stateless_odoo.platform.backups` and ``base_attachment_object_storage``'s
lifecycle."""

import argparse
import sys
import tempfile

from odoo.addons.base_attachment_object_storage import lifecycle
from odoo.tools import config

from stateless_odoo.attachments.backup import TargetExists
from stateless_odoo.errors import ConfigError, StatelessOdooError
from stateless_odoo.platform import backups

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 4

HELP = {
    "backup": "stream a backup of the database into an object store: s3://bucket/key or"
    " swift://container/key (the store's variables: AWS_* or SWIFT_*, each overridden by"
    " ODOO_BACKUP_<NAME>); exit 0 done, 4 done but some objects missing or corrupt (named),"
    " 2 a bad URL or variable or an existing key (nothing written), 1 an error (no object"
    " left that looks complete)",
    "restore": "restore a backup from an object store into a new database (zip: every"
    " file to the target's store); killed, run it again: it finishes; exit 0 done, 2 a"
    " bad URL or variable or an existing database, 1 an error",
}


class Progress:
    """Bytes so far, on a terminal only."""

    def __init__(self, stream, what):
        self.stream, self.what = stream, what
        self.enabled = stream.isatty()
        self.done = 0

    def __call__(self, count):
        self.done += count
        if self.enabled:
            self.stream.write(f"\r{self.what}: {self.done / 1e6:,.1f} MB")
            self.stream.flush()

    def close(self):
        if self.enabled and self.done:
            self.stream.write("\n")


def run(action, args, prog):
    parser = argparse.ArgumentParser(prog=prog, description=HELP[action])
    parser.add_argument("-c", "--config", help="Odoo configuration file")
    parser.add_argument("-d", "--database", help="the database (default: db_name)")
    if action == "backup":
        parser.add_argument("--to", required=True, metavar="URL", help="where to write it")
        parser.add_argument("--format", choices=backups.FORMATS, default="zip")
        parser.add_argument("--overwrite", action="store_true", help="replace an existing key")
    else:
        parser.add_argument("--from", dest="source", required=True, metavar="URL")
        parser.add_argument("--neutralize", action="store_true", help="Odoo's neutralization")
    options, odoo_args = parser.parse_known_args(args)
    if options.config:
        odoo_args.append(f"--config={options.config}")
    config.parse_config(odoo_args, setup_logging=True)
    config["list_db"] = True  # as `odoo db`: these are the database manager's functions
    if not options.database and config.get("db_name"):
        options.database = config["db_name"].split(",")[0].strip() or None
    if not options.database:
        parser.error("the database is required (-d or db_name in the configuration)")
    try:
        if action == "backup":
            return _backup(options, prog)
        return _restore(options, prog)
    except (ConfigError, TargetExists) as exc:  # a bad URL or variable, a key or database
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StatelessOdooError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _backup(options, prog):
    info, report = lifecycle.backup_to(
        options.database, options.to, options.format, overwrite=options.overwrite
    )
    print(f"{prog}: {options.database} ({options.format}) -> {options.to}: {info.size:,} bytes")
    if report is not None and not report.complete:
        print(
            f"{prog}: INCOMPLETE: {len(report.missing)} objects missing from the store,"
            f" {len(report.corrupt)} corrupt (named in the log)",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    return 0


def _restore(options, prog):
    store, key = backups.backup_store(options.source)
    progress = Progress(sys.stderr, f"downloading {options.source}")
    with tempfile.NamedTemporaryFile(prefix="odoo-restore-", suffix=".backup") as local:
        with store.open(key) as reader:
            while chunk := reader.read(1024 * 1024):
                local.write(chunk)
                progress(len(chunk))
        progress.close()
        local.flush()
        done = lifecycle.restore_from(options.database, local.name, neutralize=options.neutralize)
    print(f"{prog}: {options.source} -> {options.database}: {done}")
    return 0
