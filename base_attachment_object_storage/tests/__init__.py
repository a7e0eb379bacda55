from . import (
    test_candidates,
    test_cli,
    test_core_store,
    test_lifecycle,
    test_object_storage,
    test_serving,
    test_translations,
)
