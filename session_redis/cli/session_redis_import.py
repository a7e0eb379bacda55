"""``odoo session_redis_import``: copy file sessions into Redis before switching."""
# pylint: disable=print-used  # a command answers on its stdout, as Odoo's own commands do

import argparse
import os
import sys

from odoo import http
from odoo.cli import Command
from odoo.tools import config

from stateless_odoo.errors import StatelessOdooError
from stateless_odoo.sessions.settings import RedisSessionSettings
from stateless_odoo.sessions.store import DEFAULT_EXPIRATION, RedisSessionStore


class SessionRedisImport(Command):
    """Copy Odoo's file sessions into Redis (ODOO_SESSION_REDIS_* variables)"""

    name = "session_redis_import"

    def run(self, args):
        parser = argparse.ArgumentParser(
            prog=f"{os.path.basename(sys.argv[0])} {self.name}",
            description="Copy the sessions of the file store into Redis, keeping the"
            " time each has left, so that switching to session_redis logs nobody out."
            " Harmless to run twice; never overwrites a session Redis already has.",
        )
        parser.add_argument("-c", "--config", help="Odoo configuration file")
        parser.add_argument("--data-dir", help="Odoo's data_dir (default: the config's)")
        parser.add_argument("--path", help="the session directory (default: <data_dir>/sessions)")
        parser.add_argument(
            "--max-lifetime",
            type=int,
            default=DEFAULT_EXPIRATION,
            help="seconds a session lives unused (default: 7 days)",
        )
        options = parser.parse_args(args)
        odoo_args = []
        if options.config:
            odoo_args.append(f"--config={options.config}")
        if options.data_dir:
            odoo_args.append(f"--data-dir={options.data_dir}")
        config.parse_config(odoo_args, setup_logging=False)
        path = options.path or os.path.join(config["data_dir"], "sessions")
        try:
            settings = RedisSessionSettings.from_env()
            if not settings.enabled:
                sys.exit("session_redis_import: ODOO_SESSION_REDIS is off: nothing to do")
            store = RedisSessionStore(settings, http.Session)
            if not os.path.isdir(path):
                sys.exit(f"session_redis_import: no session directory at {path}")
            imported, skipped = store.import_filesystem_sessions(
                path, max_lifetime=options.max_lifetime
            )
        except (StatelessOdooError, ValueError) as exc:
            sys.exit(f"session_redis_import: {exc}")
        print(
            f"session_redis_import: {imported} imported, {skipped} skipped, from {path}"
            f" into {settings.where()}"
        )
