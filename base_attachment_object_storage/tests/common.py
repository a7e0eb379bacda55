"""Helpers for the suite's Odoo tests that talk to the real object store."""

import contextlib
import os
import socket
import uuid

import odoo
from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry

from stateless_odoo.storage import build_store
from stateless_odoo.testing import RealServicesMixin

from ..models import ir_attachment


def closed_port():
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def noise_png(side):
    """A PNG of random pixels, ``side`` wide and high (it does not compress)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


class ObjectStorageMixin(RealServicesMixin):
    """Attachments in the store of ``kind``, on the container the runner configured."""

    kinds = ("s3", "swift")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        missing = set(cls.kinds) - set(cls.env["ir.attachment"]._object_storage_kinds())
        if missing:
            cls.skipTest(cls, f"install attachment_{' and attachment_'.join(missing)}")
        # whole keys, as store_fname holds them
        cls.store_of = {kind: build_store(kind, key_prefix="") for kind in cls.kinds}
        for store in cls.store_of.values():
            store.ensure_container()

    def use_location(self, env, kind):
        env["ir.config_parameter"].sudo().set_param("ir_attachment.location", kind)

    @contextlib.contextmanager
    def environ(self, **values):
        """Set (or, with None, remove) variables for the block; stores built from the
        changed variables are forgotten before and after."""
        saved = {name: os.environ.get(name) for name in values}
        ir_attachment._stores.clear()
        ir_attachment._caches.clear()
        try:
            for name, value in values.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            ir_attachment._stores.clear()
            ir_attachment._caches.clear()

    def s3_down(self):
        """The S3 store unreachable (a closed port, one attempt), no process cache (for
        writes, nothing to bypass)."""
        return self.environ(
            AWS_HOST=f"http://127.0.0.1:{closed_port()}",
            AWS_MAX_ATTEMPTS="1",
            AWS_CONNECT_TIMEOUT="1",
            ODOO_ATTACHMENT_CACHE_SIZE="0",
        )

    @contextlib.contextmanager
    def committed_env(self):
        """An environment on a cursor of its own, committed at the end of the block
        (for what must really commit: garbage collection, migration)."""
        with self.registry.cursor() as cr:
            yield api.Environment(cr, SUPERUSER_ID, {})

    @staticmethod
    def drop_databases(names):
        """Drop databases a test made, whatever connects to them (cleanup)."""
        for name in names:
            Registry.delete(name)
            odoo.sql_db.close_db(name)
            with odoo.sql_db.db_connect("postgres").cursor() as cr:
                cr._cnx.autocommit = True
                # pylint: disable-next=sql-injection  # the tests' own database names
                cr.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @staticmethod
    def insert_pdf_row(env, name, url, data):
        """An attachment row naming ``url`` as another addon or database wrote it (no
        upload); its id."""
        env.cr.execute(
            "INSERT INTO ir_attachment (name, type, store_fname, checksum, file_size,"
            " mimetype) VALUES (%s, 'binary', %s, %s, %s, 'application/pdf') RETURNING id",
            (name, url, url.rpartition("/")[2], len(data)),
        )
        return env.cr.fetchone()[0]

    def object_bytes(self, store_fname):
        kind, _sep, rest = store_fname.partition("://")
        container, _slash, key = rest.partition("/")
        store = self.store_of[kind].readonly_view(container)
        return store.get_bytes(key)

    def object_exists(self, store_fname):
        kind, _sep, rest = store_fname.partition("://")
        container, _slash, key = rest.partition("/")
        store = self.store_of[kind].readonly_view(container)
        return store.exists(key)

    def put_in_another_environment(self, data, container="prod-copy-source"):
        """Put ``data`` where production would have it, in another container; return
        its URL and a writable store on that container (keys without prefix)."""
        view = self.store_of["s3"].readonly_view(container)
        prod = type(view)(view.settings, container, key_prefix="")
        prod.ensure_container()
        checksum = self.env["ir.attachment"]._compute_checksum(data)
        key = f"prod/{checksum[:2]}/{checksum}"
        prod.put(key, data)
        return f"s3://{container}/{key}", prod, key

    @staticmethod
    def random_pdf(size=100_000):
        return b"%PDF-1.4\n" + uuid.uuid4().hex.encode() + os.urandom(size)


def exported_pot(env, addon):
    """The translation template Odoo exports for ``addon`` (``odoo --i18n-export``)."""
    import io

    from odoo.tools.translate import trans_export

    buffer = io.BytesIO()
    trans_export(None, [addon], buffer, "po", env.cr)
    return buffer.getvalue().decode()


def pot_differences(env, addon):
    """What the addon's committed ``i18n/<addon>.pot`` lacks or has too many against
    Odoo's export, as a message, or ``None`` when they hold the same terms."""
    import re

    from odoo.modules.module import get_module_path

    path = os.path.join(get_module_path(addon), "i18n", f"{addon}.pot")
    exported = exported_pot(env, addon)
    try:
        with open(path, encoding="utf-8") as handle:
            committed = handle.read()
    except FileNotFoundError:
        committed = ""

    def entries(text):
        # the entries, without the header (its dates) nor the source references
        blocks = text.split("\n\n")[1:]
        return {re.sub(r"^#: .*\n", "", block.strip(), flags=re.M) for block in blocks}

    if entries(exported) == entries(committed):
        return None
    return (
        f"{path} is not Odoo's export: regenerate it with `odoo -d DB --modules={addon}"
        f" --i18n-export={addon}/i18n/{addon}.pot --stop-after-init` (or copy this"
        f" export):\n{exported}"
    )


class TranslationTemplateMixin:
    """The test that ``i18n/<addon>.pot`` holds the terms Odoo exports; a test class of
    an addon with translatable text mixes it in and names its ``addon``."""

    addon = None
    #: Odoo's loader takes only a class's own test methods unless told
    allow_inherited_tests_method = True

    def test_the_pot_file_is_odoos_export(self):
        differences = pot_differences(self.env, self.addon)
        if differences:
            self.fail(differences)
