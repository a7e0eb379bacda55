"""Prometheus ``/metrics`` (``ODOO_PROMETHEUS=1``), from ``post_load``.

Server-wide (``--load=web,...,monitoring_prometheus``): ``post_load`` runs in the
prefork master before it forks, so the multiprocess directory is prepared once and
shared by every worker; installing the addon in a database also counts its scheduled
actions.
"""

import odoo

from stateless_odoo.observability import odoo_hookup


def post_load():
    odoo_hookup.install_prometheus(odoo)
