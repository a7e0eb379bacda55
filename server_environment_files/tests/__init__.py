from . import test_server_environment_files
