from . import test_session_redis
