"""Attachments in an object store, decided without Odoo (used by
``base_attachment_object_storage``, ``attachment_s3``, ``attachment_swift``).

- :mod:`.settings`: the ``ODOO_ATTACHMENT_*`` variables;
- :mod:`.rule`: what stays in the database (small images, JS, CSS);
- :mod:`.stores`: where content goes (store, key, ``store_fname``) and where it is read;
- :mod:`.caches`: the per-process caches of small objects and signed URLs;
- :mod:`.migration`: moving attachments between filestore, database and store, the
  progress bar of the command, and the caller-frame guard that runs it after an upgrade;
- :mod:`.collection`: deleting objects only after no committed row names them.
"""
