# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "Attachments on S3",
    "summary": "ir.attachment content on S3 (AWS, Exoscale, MinIO, Ceph) via boto3",
    "version": "18.0.1.0.0",
    "author": "stateless-odoo contributors",
    "maintainers": ["stateless-odoo"],
    "website": "https://github.com/stateless-odoo/stateless-odoo",
    "license": "AGPL-3",
    "category": "Technical",
    "development_status": "Beta",
    "depends": ["base_attachment_object_storage"],
    "external_dependencies": {"python": ["stateless_odoo", "boto3"]},
}
