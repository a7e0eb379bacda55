from . import test_backups, test_cloud_platform, test_translations
