# the dependency first: server-wide (--load) it is not imported otherwise, and it puts
# the database lifecycle in place (dump, restore, duplicate, rename, drop)
from odoo.addons import base_attachment_object_storage

from . import models
