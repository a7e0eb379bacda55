# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "Base Attachment Object Storage",
    "summary": "Store ir.attachment content in an object store (S3, Swift) "
    "instead of the local filestore",
    "version": "18.0.1.0.0",
    "author": "stateless-odoo contributors",
    "maintainers": ["stateless-odoo"],
    "website": "https://github.com/stateless-odoo/stateless-odoo",
    "license": "AGPL-3",
    "category": "Technical",
    "development_status": "Beta",
    "depends": ["base"],
    "external_dependencies": {"python": ["stateless_odoo"]},
}
