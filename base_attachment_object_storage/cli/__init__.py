from . import attachment_storage_migrate
