{
    "name": "End-to-end scenario: a module that writes files when installed",
    "summary": "Installed during the e2e scenario's day; never in a real database",
    "version": "18.0.1.0.0",
    "category": "Hidden/Tests",
    "license": "AGPL-3",
    "author": "stateless-odoo",
    "depends": ["base"],
    "data": ["data/e2e_day_data.xml"],
    "post_init_hook": "post_init_hook",
    "installable": True,
}
