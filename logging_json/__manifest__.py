# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "JSON Logging",
    "summary": "One JSON object per log line, with request and database context",
    "version": "18.0.1.0.0",
    "author": "stateless-odoo contributors",
    "maintainers": ["stateless-odoo"],
    "website": "https://github.com/stateless-odoo/stateless-odoo",
    "license": "AGPL-3",
    "category": "Technical",
    "development_status": "Beta",
    "depends": ["base"],
    "external_dependencies": {"python": ["stateless_odoo", "python-json-logger", "orjson"]},
    "post_load": "post_load",
}
