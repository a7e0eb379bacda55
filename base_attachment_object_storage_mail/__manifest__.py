# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "Base Attachment Object Storage - Mail",
    "summary": "The mail queue keeps a mail whose attachment the store cannot give now",
    "version": "18.0.1.0.0",
    "author": "stateless-odoo contributors",
    "maintainers": ["stateless-odoo"],
    "website": "https://github.com/stateless-odoo/stateless-odoo",
    "license": "AGPL-3",
    "category": "Technical",
    "development_status": "Beta",
    "depends": ["base_attachment_object_storage", "mail"],
    "auto_install": True,
}
