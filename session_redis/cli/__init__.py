from . import session_redis_import
