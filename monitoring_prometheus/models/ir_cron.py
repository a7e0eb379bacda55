from odoo import models

from stateless_odoo.observability.odoo_hookup import cron_run


class IrCron(models.Model):
    _inherit = "ir.cron"

    def _callback(self, cron_name, server_action_id):
        # with both monitoring addons installed, the run is reported once
        with cron_run():
            return super()._callback(cron_name, server_action_id)
