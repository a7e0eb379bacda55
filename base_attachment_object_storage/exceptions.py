# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
"""What reading attachment content from the store raises when it cannot be done now."""

import werkzeug.exceptions

#: seconds a client is told to wait before trying again (``Retry-After``)
RETRY_AFTER = 5


class ObjectStoreUnavailable(werkzeug.exceptions.ServiceUnavailable):
    """The content of an attachment cannot be read now: the store is down, slow, or
    refuses this process's configuration; the object may well be there.

    Not a ``UserError``: Odoo takes those as the user's and final (an image's
    placeholder answered with 200 and cached for a year, a mail failed for good). As a
    werkzeug ``ServiceUnavailable``, Odoo answers it to an HTTP client as a 503 with
    ``Retry-After``; a cron that meets it fails and runs again, and the mail queue
    (``base_attachment_object_storage_mail``) keeps the mail for its next run. A missing
    object is not this: it stays a ``UserError`` (404 when served) naming the attachment.
    """

    def __init__(self, description):
        super().__init__(description=description, retry_after=RETRY_AFTER)
