from . import cli, lifecycle, models

# Odoo's dump, restore, duplicate, rename and drop keep the objects (lifecycle.py)
lifecycle.install()
