# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "Sessions in Redis",
    "summary": "Odoo HTTP sessions in Redis, so that any process serves any user",
    "version": "18.0.1.0.0",
    "author": "stateless-odoo contributors",
    "maintainers": ["stateless-odoo"],
    "website": "https://github.com/stateless-odoo/stateless-odoo",
    "license": "AGPL-3",
    "category": "Technical",
    "development_status": "Beta",
    "depends": ["base", "web"],
    "external_dependencies": {"python": ["stateless_odoo", "redis"]},
    "post_load": "post_load",
}
