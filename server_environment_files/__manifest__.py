# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "Server Environment Files",
    "summary": "Per-environment configuration (prod, integration, test, dev) "
    "for OCA server_environment",
    "version": "18.0.0.1.0",
    "author": "stateless-odoo contributors",
    "license": "AGPL-3",
    "category": "Technical",
    "depends": ["server_environment"],
    "installable": False,
}
