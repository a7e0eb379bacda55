# License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
{
    "name": "Monitoring: statsd",
    "summary": "statsd metrics for requests, SQL, workers, crons and stores",
    "version": "18.0.0.1.0",
    "author": "stateless-odoo contributors",
    "license": "AGPL-3",
    "category": "Technical",
    "depends": ["base", "web"],
    "external_dependencies": {"python": ["stateless_odoo", "statsd"]},
    "post_load": "post_load",
    "installable": True,
}
