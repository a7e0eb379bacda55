# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
from odoo import api, models


class IrAttachment(models.Model):
    _inherit = "ir.attachment"

    @api.model
    def _object_storage_kinds(self):
        # ir_attachment.location = swift: the SWIFT_* variables (stateless_odoo.storage.swift)
        return [*super()._object_storage_kinds(), "swift"]
