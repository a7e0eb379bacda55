# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""``cloud.platform``: the startup checks and the provider install songs.

The rules live in :mod:`stateless_odoo.platform.checks`; this model gives them what only
the database knows (``ir_attachment.location``, the recorded platform, the installed
store addons) and decides what a problem does:

- in a process that serves (an Odoo server, its workers and crons), loading the
  database fails with one error naming every problem: the database is not served;
- elsewhere (``--stop-after-init`` install and upgrade jobs, anthem songs, ``odoo
  shell``, the suite's commands) the problems are logged and loading goes on, so that
  the tools that fix the configuration can run.
"""

import logging
import os
import sys
import threading

from odoo import api, models
from odoo.exceptions import UserError
from odoo.service import server as odoo_server
from odoo.tools import config

from stateless_odoo.config import EnvReader, server_environment
from stateless_odoo.errors import ConfigError
from stateless_odoo.platform import checks

_logger = logging.getLogger(__name__)

KIND_PARAM = "cloud.platform.kind"
LOCATION_PARAM = "ir_attachment.location"


def running_env():
    """server_environment's ``running_env`` option when set, else ``RUNNING_ENV``."""
    return server_environment(config.get("running_env"))


def limit_time_real():
    """Odoo's real-time limit of a request when a worker enforces it (prefork), else
    ``None``: a threaded server never kills a slow request."""
    if not config.get("workers"):
        return None
    return config.get("limit_time_real") or None


def serving():
    """Is this database being loaded to be served (HTTP or crons) by an Odoo server?

    Decided by where the load happens, not by the server's class: ``odoo shell`` and
    anthem also start a server object (prefork when the configuration has workers) but
    load the database after it returned, from their main thread."""
    if config.get("stop_after_init"):
        return False  # install and upgrade jobs, Odoo's own test runs
    server = odoo_server.server
    if server is None:
        return False  # the suite's commands, scripts that never start a server
    if isinstance(server, odoo_server.GeventServer) or os.getpid() != server.pid:
        return True  # the websocket process; a prefork HTTP or cron worker
    if getattr(threading.current_thread(), "type", None) in ("http", "cron"):
        return True  # a threaded server's request or cron thread
    # preload of the databases given with -d (threaded server, prefork master)
    preload = odoo_server.preload_registries.__code__
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is preload:
            return True
        frame = frame.f_back
    return False


class CloudPlatform(models.AbstractModel):
    _name = "cloud.platform"
    _description = "Cloud platform: startup checks and provider install"

    # -- checks ---------------------------------------------------------------------------

    @api.model
    def _problems(self, probes=None):
        """Every problem of this environment for this database (``[]`` when fine).
        ``probes``: run the connectivity probes (default: ODOO_CLOUD_PLATFORM_PROBES)."""
        params = self.env["ir.config_parameter"].sudo()
        return checks.check_database(
            running_env=running_env(),
            platform=params.get_param(KIND_PARAM) or None,
            location=params.get_param(LOCATION_PARAM, "file"),
            installed_kinds=self.env["ir.attachment"]._object_storage_kinds(),
            db_name=self.env.cr.dbname,
            probes=probes,
            limit_time_real=limit_time_real(),
        )

    @api.model
    def check(self):
        """Raise :class:`~stateless_odoo.checks.PlatformMisconfigured` naming
        every problem, unless ODOO_CLOUD_PLATFORM_UNSAFE is on (then warn loudly)."""
        unsafe = checks.is_unsafe()  # a value that is not a boolean raises
        problems = self._problems()
        if not problems:
            return True
        error = checks.PlatformMisconfigured(problems, running_env())
        if unsafe:
            _logger.warning(
                "ODOO_CLOUD_PLATFORM_UNSAFE is on: database %s is served although %s",
                self.env.cr.dbname,
                error,
            )
            return False
        raise error

    def _register_hook(self):
        super()._register_hook()
        if self.pool.ready:
            # hooks run again when a ready registry reloads its models (a custom field
            # created): the database was checked when it was loaded
            return
        self._check_at_load()

    @api.model
    def _check_at_load(self):
        """Refuse the database in a serving process, warn elsewhere."""
        try:
            self.check()
        except ConfigError as exc:
            if serving():
                _logger.critical(
                    "cloud_platform: database %s is not served: %s", self.env.cr.dbname, exc
                )
                raise
            _logger.warning(
                "cloud_platform: database %s would not be served by an Odoo server: %s",
                self.env.cr.dbname,
                exc,
            )

    # -- provider install -------------------------------------------------------------------

    @api.model
    def install(self, platform_kind):
        """Configure this database for a platform (``exoscale`` or ``ovh``) and the running
        environment: install the platform's store addon when it is not, record the
        platform, set ``ir_attachment.location``, check the environment (raises naming
        every problem), move the existing attachments. Running it again changes
        nothing."""
        if not self.env.is_admin():
            raise UserError(self.env._("Only administrators can install the cloud platform."))
        addon = f"attachment_{checks.PLATFORMS.get(platform_kind)}"
        module = self.env["ir.module.module"].sudo().search([("name", "=", addon)])
        if module and module.state != "installed":
            # as the older cloud_platform_exoscale / _ovh did by depending on it
            _logger.info("cloud platform %s: installing %s", platform_kind, addon)
            module.button_immediate_install()
            # the registry was rebuilt: go on with an environment on the new one
            env = api.Environment(self.env.cr, self.env.uid, self.env.context)
            return env["cloud.platform"].install(platform_kind)
        env_name = running_env()
        try:
            location = checks.platform_location(platform_kind, checks.environment_kind(env_name))
        except ConfigError as exc:
            raise UserError(
                self.env._("Cloud platform not installed: %(error)s", error=exc)
            ) from exc
        params = self.env["ir.config_parameter"].sudo()
        changed = params.get_param(LOCATION_PARAM, "file") != location
        params.set_param(KIND_PARAM, platform_kind)
        params.set_param(LOCATION_PARAM, location)
        # raises naming every problem (a store addon not installed included): the
        # transaction, and the two parameters with it, are rolled back
        self.check()
        if changed:
            # committed, then announced: the other processes drop their cached location
            # and write new content where it now goes; the migration moves the rest
            self.env.flush_all()
            self.env.cr.commit()  # pylint: disable=invalid-commit  # see above
            self.env.registry.signal_changes()
        self.env["ir.attachment"].sudo().force_storage()
        _logger.info(
            "cloud platform %s installed for %s: ir_attachment.location = %s",
            platform_kind,
            env_name,
            location,
        )
        return True

    @api.model
    def _platform_kind(self):
        """The platform of this deployment: ODOO_CLOUD_PLATFORM_KIND, else the ``kind``
        of server_environment's ``[cloud_platform]`` section, else the recorded one."""
        platform = EnvReader().str("ODOO_CLOUD_PLATFORM_KIND")
        if not platform:
            platform = self._server_environment_kind()
        if not platform:
            platform = self.env["ir.config_parameter"].sudo().get_param(KIND_PARAM)
        if not platform:
            raise UserError(
                self.env._(
                    "No cloud platform given: set ODOO_CLOUD_PLATFORM_KIND (one of"
                    " %(kinds)s), or kind in the [cloud_platform] section of"
                    " server_environment_files, or sing install_exoscale or install_ovh.",
                    kinds=", ".join(checks.PLATFORMS),
                )
            )
        return platform

    @api.model
    def _server_environment_kind(self):
        if "server.config" not in self.env:
            # server_environment is not installed here (importing it would set the
            # running environment as a side effect)
            return None
        from odoo.addons.server_environment import serv_config

        return serv_config.get("cloud_platform", "kind", fallback="").strip() or None

    @api.model
    def install_exoscale(self):
        return self.install("exoscale")

    @api.model
    def install_ovh(self):
        return self.install("ovh")
