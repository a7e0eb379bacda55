"""Odoo-free core of the stateless Odoo 18 suite.

Nothing in this package imports ``odoo``: it is tested on its own against real
services, and the addons are thin glue around it.
"""

__version__ = "18.0.0.1.0"
