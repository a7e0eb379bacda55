from odoo.tests import TransactionCase, tagged

from .common import pot_differences


@tagged("post_install", "-at_install")
class TestTranslationTemplate(TransactionCase):
    def test_the_pot_file_is_odoos_export(self):
        """i18n/base_attachment_object_storage.pot holds the terms Odoo exports."""
        differences = pot_differences(self.env, "base_attachment_object_storage")
        if differences:
            self.fail(differences)
