"""HTTP sessions in Redis (used by ``session_redis``).

- :mod:`.settings`: the ``ODOO_SESSION_REDIS_*`` variables and the client they configure;
- :mod:`.store`: Odoo 18's session store API over Redis.
"""
