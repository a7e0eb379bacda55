from odoo.tests import TransactionCase, tagged

from .common import TranslationTemplateMixin


@tagged("post_install", "-at_install")
class TestTranslationTemplate(TranslationTemplateMixin, TransactionCase):
    addon = "base_attachment_object_storage"
