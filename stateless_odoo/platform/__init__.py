"""The platform as a whole (used by ``cloud_platform``).

- :mod:`.checks`: is this environment configured as its ``RUNNING_ENV`` requires;
- :mod:`.ops`: what ``odoo cloud_platform status`` reads and shows.
"""
