from . import test_monitoring_statsd
