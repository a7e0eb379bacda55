"""JSON log lines (``ODOO_LOGGING_JSON=1``), from ``post_load``.

Server-wide (``--load=web,...,logging_json``): Odoo has installed its log handlers
(stream, file or syslog) when server-wide modules load, before prefork workers fork;
every handler gets the JSON formatter, and every request an id (see
``stateless_odoo.observability.observe``).
"""

import odoo

from stateless_odoo.observability import odoo_hookup


def post_load():
    odoo_hookup.install_json_logging(odoo)
