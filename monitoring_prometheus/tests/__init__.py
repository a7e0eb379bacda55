from . import test_monitoring_prometheus
