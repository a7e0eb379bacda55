"""The mail queue and a store that cannot give a mail's attachment, against the real
store (a closed port plays the store being down)."""

from odoo.addons.base_attachment_object_storage.exceptions import ObjectStoreUnavailable
from odoo.addons.base_attachment_object_storage.tests.common import ObjectStorageMixin
from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestMailQueue(ObjectStorageMixin, TransactionCase):
    kinds = ("s3",)

    def setUp(self):
        super().setUp()
        self.use_location(self.env, "s3")
        self.pdf = self.random_pdf(120_000)

    def queued_mail(self):
        attachment = self.env["ir.attachment"].create(
            {"name": "invoice.pdf", "raw": self.pdf, "mimetype": "application/pdf"}
        )
        self.assertTrue(attachment.store_fname.startswith("s3://"))
        return self.env["mail.mail"].create(
            {
                "subject": "Your invoice",
                "body_html": "<p>Attached.</p>",
                "email_from": "shop@example.com",
                "email_to": "customer@example.com",
                "attachment_ids": [(6, 0, attachment.ids)],
                "auto_delete": False,
            }
        )

    def test_store_down_keeps_the_mail_queued_then_it_goes(self):
        mail = self.queued_mail()
        with self.s3_down():
            mail.invalidate_recordset()
            mail.attachment_ids.invalidate_recordset()
            with self.assertLogs(level="WARNING") as logs:
                self.env["mail.mail"].process_email_queue(ids=mail.ids)
        self.assertEqual(mail.state, "outgoing")
        self.assertFalse(mail.failure_reason)
        self.assertTrue(
            any(f"mail.mail {mail.id} stays in the queue" in line for line in logs.output),
            logs.output,
        )
        # the store back: the next run of the queue sends it, attachment and all
        mail.attachment_ids.invalidate_recordset()
        sent = []
        original = type(self.env["ir.mail_server"]).send_email

        def send_email(server, message, *args, **kwargs):
            sent.append(message)
            return original(server, message, *args, **kwargs)

        self.patch(type(self.env["ir.mail_server"]), "send_email", send_email)
        self.env["mail.mail"].process_email_queue(ids=mail.ids)
        self.assertEqual(mail.state, "sent")
        (message,) = sent
        (part,) = [p for p in message.walk() if p.get_filename() == "invoice.pdf"]
        self.assertEqual(part.get_payload(decode=True), self.pdf)

    def test_a_sender_that_asks_for_errors_is_told_to_try_again(self):
        mail = self.queued_mail()
        with self.s3_down(), self.assertLogs(level="ERROR"):
            mail.attachment_ids.invalidate_recordset()
            with self.assertRaises(ObjectStoreUnavailable):
                mail.send(raise_exception=True)
        self.assertEqual(mail.state, "outgoing")

    def test_a_missing_object_fails_the_mail_as_odoo_does(self):
        mail = self.queued_mail()
        store, key = mail.attachment_ids._object_stores("s3").locate(
            mail.attachment_ids.store_fname
        )
        store.delete(key)
        mail.attachment_ids.invalidate_recordset()
        with self.environ(ODOO_ATTACHMENT_CACHE_SIZE="0"), self.assertLogs(level="ERROR"):
            self.env["mail.mail"].process_email_queue(ids=mail.ids)
        self.assertEqual(mail.state, "exception")
        self.assertIn("is missing from the object store", mail.failure_reason)
