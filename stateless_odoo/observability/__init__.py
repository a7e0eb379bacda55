"""Logs, metrics and health (used by ``logging_json``, ``monitoring_statsd``,
``monitoring_prometheus``).

- :mod:`.events`: what the other parts report (store calls, session calls, migration),
  delivered to whichever sinks are on;
- :mod:`.observe`: the request observer (request ids, durations, SQL counts);
- :mod:`.jsonlog`: one JSON object per log line, secrets redacted;
- :mod:`.statsd_metrics`, :mod:`.prometheus_metrics`: the two metric sinks;
- :mod:`.health`: the deep health check;
- :mod:`.odoo_hookup`: where each part is wired into Odoo (the addons' ``post_load``
  gives it the ``odoo`` package; it never imports it).
"""
