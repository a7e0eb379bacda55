from . import test_cloud_platform
