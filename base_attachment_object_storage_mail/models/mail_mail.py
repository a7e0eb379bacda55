# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
import logging

from odoo import models
from odoo.addons.base_attachment_object_storage.exceptions import ObjectStoreUnavailable

_logger = logging.getLogger(__name__)


class MailMail(models.Model):
    _inherit = "mail.mail"

    def _send(self, auto_commit=False, raise_exception=False, **kwargs):
        """Odoo marks a mail whose sending raised as failed for good. A mail whose
        attachments the store cannot give now stays in the queue for its next run.

        Each mail's attachments are read before Odoo sends it, outside Odoo's handling
        of the mail's errors; Odoo's own read then finds them in the cache. One mail at
        a time, so that no more than one mail's attachments are in memory. Any other
        error is left to Odoo, which meets it again and handles it as usual.
        """
        for mail in self:
            if mail.state == "outgoing":
                try:
                    # with_prefetch(): this mail's attachments only, not the batch's
                    mail.attachment_ids.sudo().with_prefetch().mapped("raw")
                except ObjectStoreUnavailable as exc:
                    if raise_exception:
                        raise
                    _logger.warning("mail.mail %s stays in the queue: %s", mail.id, exc)
                    continue
                # pylint: disable-next=except-pass
                except Exception:  # noqa: BLE001, S110 - Odoo's handling, in super()
                    pass
            try:
                super(MailMail, mail)._send(
                    auto_commit=auto_commit, raise_exception=raise_exception, **kwargs
                )
            finally:
                mail.attachment_ids.invalidate_recordset(["raw", "datas"])
        return True
