import base64
import os

from odoo import api, models
from odoo.exceptions import UserError


class ResPartner(models.Model):
    _inherit = "res.partner"

    @api.model
    def e2e_day_slow(self, name, seconds):
        """A request that takes ``seconds``: the scenario kills the process that runs
        it. It first stores an attachment named ``name`` (its object is uploaded at
        once), then waits in PostgreSQL; a killed process never commits the row."""
        if not 0 < seconds <= 60:
            raise UserError("seconds: between 0 and 60")
        attachment = self.env["ir.attachment"].create(
            {"name": name, "datas": base64.b64encode(os.urandom(256 * 1024))}
        )
        self.env.cr.execute("SELECT pg_sleep(%s)", [seconds])
        return attachment.id
