# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, models


class IrAttachment(models.Model):
    _inherit = "ir.attachment"

    @api.model
    def _object_storage_kinds(self):
        # ir_attachment.location = s3: the AWS_* variables (stateless_odoo.storage.s3)
        return [*super()._object_storage_kinds(), "s3"]
