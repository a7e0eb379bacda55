from . import test_logging_json
