from odoo.addons.base_attachment_object_storage.tests.common import pot_differences
from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestTranslationTemplate(TransactionCase):
    def test_the_pot_file_is_odoos_export(self):
        """i18n/cloud_platform.pot holds the terms Odoo exports."""
        differences = pot_differences(self.env, "cloud_platform")
        if differences:
            self.fail(differences)
