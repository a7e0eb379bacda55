"""statsd metrics (``ODOO_STATSD=1``), from ``post_load``.

Server-wide (``--load=web,...,monitoring_statsd``): requests are timed in every
process; installing the addon in a database also times its scheduled actions.
"""

import odoo

from stateless_odoo.observability import odoo_hookup


def post_load():
    odoo_hookup.install_statsd(odoo)
