"""Odoo's zip backups carrying the objects' content, and the checks before a restore.

Odoo's zip format: ``dump.sql`` (a plain pg_dump), ``manifest.json`` and
``filestore/<sha1[:2]>/<sha1>``. Odoo's own dump copies the local filestore only. Here
the zip Odoo wrote is copied to the final one (:func:`complete_zip`) with

- the ``ir_attachment`` rows of ``dump.sql`` that name an object rewritten to the
  filestore path of their content (``<sha1[:2]>/<sha1>``), so that the zip restores into
  plain Odoo, and into the suite, which moves the files to the target's store;
- every such object's content added under ``filestore/``: downloaded in parallel into
  bounded temporary spools (memory stays bounded whatever the sizes), its SHA-1 checked
  against its name.

:func:`check_zip` refuses, before anything is created, a zip that Odoo's restore would
take in part or wrongly: not a zip, truncated or corrupt, without ``manifest.json`` or
``dump.sql``, with a path outside ``filestore/``, or with a file whose SHA-1 is not its
name.
"""

import concurrent.futures
import datetime
import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field

from ..errors import ObjectNotFound, StatelessOdooError
from .stores import is_object_url

_logger = logging.getLogger(__name__)

FILESTORE = "filestore/"
#: an object's content is held in memory up to this size, on disk beyond (per thread)
SPOOL_BYTES = 4 * 1024 * 1024
COPY_CHUNK = 1024 * 1024

_SHA1 = re.compile(rb"[0-9a-f]{40}")
_SHA1_NAME = re.compile(r"filestore/[0-9a-f]{2}/([0-9a-f]{40})")
_COPY = re.compile(rb"^COPY (?P<table>\S+) \((?P<columns>[^)]*)\) FROM stdin;\r?\n?$")
_ATTACHMENT_TABLES = {b"ir_attachment", b"public.ir_attachment"}


class BackupError(StatelessOdooError):
    """A backup cannot be made, or a zip cannot be restored; nothing was changed."""


class TargetExists(BackupError):
    """The database a restore would create exists already."""


def filestore_name(sha1):
    return f"{FILESTORE}{sha1[:2]}/{sha1}"


class AttachmentRows:
    """Rewrites the ``ir_attachment`` rows of a plain pg_dump, one line at a time: a
    ``store_fname`` naming an object becomes the filestore path of its content.

    ``objects`` maps each content's SHA-1 to one ``store_fname`` naming it; ``kept``
    lists the object URLs left as they are (no checksum names their content)."""

    def __init__(self):
        self.objects = {}
        self.kept = []
        self._copy = None  # inside a COPY block: None, or (fname, checksum) columns

    def line(self, line):
        if self._copy is None:
            match = _COPY.match(line)
            if match:
                columns = [c.strip().strip(b'"') for c in match["columns"].split(b",")]
                if match["table"] in _ATTACHMENT_TABLES and b"store_fname" in columns:
                    self._copy = (columns.index(b"store_fname"), columns.index(b"checksum"))
                else:
                    self._copy = ()  # another table's rows
            return line
        if line.rstrip(b"\r\n") == b"\\.":
            self._copy = None
            return line
        if not self._copy:
            return line
        fname_at, checksum_at = self._copy
        ending = line[len(line.rstrip(b"\r\n")) :]
        fields = line[: len(line) - len(ending)].split(b"\t")
        fname = fields[fname_at].decode("utf-8", "replace")
        if not is_object_url(fname):
            return line
        sha1 = fields[checksum_at]
        if not _SHA1.fullmatch(sha1):
            sha1 = fname.rpartition("/")[2].encode()
        if not _SHA1.fullmatch(sha1):
            self.kept.append(fname)
            return line
        sha1 = sha1.decode()
        self.objects.setdefault(sha1, fname)
        fields[fname_at] = f"{sha1[:2]}/{sha1}".encode()
        return b"\t".join(fields) + ending


@dataclass
class BackupReport:
    objects: int = 0  # contents added from the store
    bytes: int = 0
    missing: list = field(default_factory=list)  # object URLs the store does not have
    corrupt: list = field(default_factory=list)  # object URLs whose SHA-1 is not theirs
    kept: list = field(default_factory=list)  # object URLs left in the rows
    seconds: float = 0.0

    @property
    def complete(self):
        return not (self.missing or self.corrupt or self.kept)


def _entry(name):
    info = zipfile.ZipInfo(name, datetime.datetime.now().timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def complete_zip(source, out, open_object, *, threads=8):
    """Copy Odoo's zip backup ``source`` (a path or a seekable file) to ``out`` (a
    writable stream, seekable or not) with the objects' content; returns a
    :class:`BackupReport`.

    ``open_object(store_fname)`` opens an object for reading (a context manager whose
    ``read`` streams the content). A missing object, or one whose content is not its
    checksum, is left out and named (in the report and the log): the backup goes on,
    as Odoo's goes on without a missing file. A store that fails raises."""
    started = time.monotonic()
    report = BackupReport()
    rows = AttachmentRows()
    with (
        zipfile.ZipFile(source) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as dst,
    ):
        present = set(src.namelist())
        for info in src.infolist():
            if info.is_dir():
                continue
            with (
                src.open(info) as fin,
                dst.open(_entry(info.filename), "w", force_zip64=True) as fout,
            ):
                if info.filename == "dump.sql":
                    for line in fin:
                        fout.write(rows.line(line))
                else:
                    shutil.copyfileobj(fin, fout, COPY_CHUNK)
        wanted = [
            (sha1, url) for sha1, url in rows.objects.items() if filestore_name(sha1) not in present
        ]
        _add_objects(dst, wanted, open_object, threads, report)
    report.kept = rows.kept
    report.seconds = time.monotonic() - started
    for what, urls in (("missing from the store", report.missing), ("corrupt", report.corrupt)):
        for url in urls:
            _logger.error("backup: %s is %s: its attachments have no file in the backup", url, what)
    for url in report.kept:
        _logger.warning("backup: %s has no checksum to name its file: the row keeps it", url)
    return report


def _fetch(open_object, sha1, url):
    """Download one object into a spool; ``None`` when it is missing."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    digest = hashlib.sha1()  # noqa: S324 - Odoo's attachment checksum
    try:
        with open_object(url) as reader:
            while chunk := reader.read(COPY_CHUNK):
                digest.update(chunk)
                spool.write(chunk)
    except ObjectNotFound:
        spool.close()
        return None
    except BaseException:
        spool.close()
        raise
    size = spool.tell()
    spool.seek(0)
    return spool, size, digest.hexdigest() == sha1


def _add_objects(dst, wanted, open_object, threads, report):
    """Download ``wanted`` ((sha1, url) pairs) on ``threads`` threads, at most twice as
    many spools alive at once, and write each into ``dst`` as it arrives."""
    todo = iter(wanted)
    with concurrent.futures.ThreadPoolExecutor(threads, "stateless-backup") as pool:
        running = {}

        def submit():
            for sha1, url in todo:
                running[pool.submit(_fetch, open_object, sha1, url)] = (sha1, url)
                if len(running) >= 2 * threads:
                    return

        submit()
        try:
            while running:
                done, _pending = concurrent.futures.wait(
                    running, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    sha1, url = running.pop(future)
                    result = future.result()
                    if result is None:
                        report.missing.append(url)
                        continue
                    spool, size, sound = result
                    with spool:
                        if not sound:
                            report.corrupt.append(url)
                            continue
                        with dst.open(_entry(filestore_name(sha1)), "w", force_zip64=True) as fout:
                            shutil.copyfileobj(spool, fout, COPY_CHUNK)
                    report.objects += 1
                    report.bytes += size
                submit()
        except BaseException:
            for future in running:  # the spools of those done are closed when collected
                future.cancel()
            raise


def check_zip(dump_file):
    """Check a zip backup before anything is restored from it; returns its manifest.

    ``dump_file``: a path or a seekable file (left at its start). Every member is read
    (each one's CRC is checked by the reading), and every ``filestore/<xx>/<sha1>``
    file's SHA-1 is checked against its name. Raises :class:`BackupError` naming the
    file and what is wrong."""
    where = dump_file if isinstance(dump_file, str) else "the backup"
    try:
        if not zipfile.is_zipfile(dump_file):
            raise BackupError(f"{where} is not a zip backup (or it is truncated)")
        with zipfile.ZipFile(dump_file) as archive:
            names = archive.namelist()
            for required in ("dump.sql", "manifest.json"):
                if required not in names:
                    raise BackupError(f"{where} has no {required}: not an Odoo zip backup")
            for name in names:
                if name in ("dump.sql", "manifest.json"):
                    continue
                parts = name.split("/")
                if (
                    not name.startswith(FILESTORE)
                    or "\\" in name
                    or any(part in ("", ".", "..") for part in parts[1:-1])
                    or parts[-1] in (".", "..")
                ):
                    raise BackupError(
                        f"{where}: {name!r} is outside filestore/: Odoo's backups hold"
                        " dump.sql, manifest.json and filestore/ only"
                    )
            for info in archive.infolist():
                expected = _SHA1_NAME.fullmatch(info.filename)
                digest = hashlib.sha1()  # noqa: S324 - Odoo's attachment checksum
                with archive.open(info) as member:
                    while chunk := member.read(COPY_CHUNK):
                        digest.update(chunk)
                if expected and digest.hexdigest() != expected.group(1):
                    raise BackupError(
                        f"{where}: {info.filename}: its content's SHA-1 is"
                        f" {digest.hexdigest()}, not its name"
                    )
            try:
                manifest = json.loads(archive.read("manifest.json"))
            except ValueError as exc:
                raise BackupError(f"{where}: manifest.json is not JSON ({exc})") from None
            if not isinstance(manifest, dict):
                raise BackupError(f"{where}: manifest.json is not a JSON object")
            return manifest
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise BackupError(f"{where} is corrupt or truncated: {exc}") from None
    finally:
        if hasattr(dump_file, "seek"):
            dump_file.seek(0)
