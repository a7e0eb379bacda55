from odoo.addons.base_attachment_object_storage.tests.common import TranslationTemplateMixin
from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestTranslationTemplate(TranslationTemplateMixin, TransactionCase):
    addon = "cloud_platform"
