"""Files written while the module is installed, as many modules do (a data file with
``file=``, a hook creating a report): with only ``base`` as dependency, the module is
loaded before the store addon in the same install, so Odoo writes them to the local
filestore of the process that installs it; base_attachment_object_storage moves them to
the store at the end of loading."""

import base64
import random

#: a PDF-looking file, too big and of a type that the keep-in-database rule never keeps
REPORT_SIZE = 1536 * 1024


def report_content():
    body = random.Random(7).randbytes(REPORT_SIZE)
    return b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + body + b"\n%%EOF\n"


def post_init_hook(env):
    env["ir.attachment"].create(
        {
            "name": "e2e_day_report.pdf",
            "datas": base64.b64encode(report_content()),
            "res_model": "res.company",
            "res_id": env.company.id,
        }
    )
