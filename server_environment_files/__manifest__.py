# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "Server Environment Files",
    "summary": "Per-environment configuration (prod, integration, test, dev) "
    "for OCA server_environment",
    "version": "18.0.1.0.0",
    "author": "stateless-odoo contributors",
    "maintainers": ["stateless-odoo"],
    "website": "https://github.com/stateless-odoo/stateless-odoo",
    "license": "AGPL-3",
    "category": "Technical",
    "development_status": "Beta",
    # Only carries files: OCA's server_environment reads them (it imports this
    # package to find its directory); a team installs server_environment itself.
    "depends": ["base"],
}
