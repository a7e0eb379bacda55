"""Odoo-free core of the stateless Odoo 18 suite.

Nothing in this package imports ``odoo``: it is tested on its own against real
services, and the addons are thin glue around it. Its folders mirror the addons:

- :mod:`.storage`: the object stores (S3, Swift), their variables;
- :mod:`.attachments`: base_attachment_object_storage, attachment_s3/swift;
- :mod:`.sessions`: session_redis;
- :mod:`.observability`: logging_json, monitoring_statsd, monitoring_prometheus;
- :mod:`.platform`: cloud_platform;
- :mod:`.testing`: helpers of the tests and benchmarks (never used in production);
- :mod:`.config`, :mod:`.errors`, :mod:`.process`: what every part uses (typed
  environment variables, the errors, per-process state across forks).
"""

__version__ = "18.0.1.0.0"
