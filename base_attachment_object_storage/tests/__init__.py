from . import test_core_store
