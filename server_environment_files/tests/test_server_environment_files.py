"""What OCA server_environment reads from these files, environment by environment.

server_environment reads its configuration once, when ``server_env`` is imported, from
the running environment known at that moment: each case therefore runs a new process
with Odoo's interpreter, which parses Odoo's configuration with this database's addons
path, imports ``odoo.addons.server_environment.server_env`` and prints ``serv_config``
as JSON. The process never inherits the caller's RUNNING_ENV, ODOO_STAGE, ODOO_RC or
SERVER_ENV* variables: a case sets the ones it tests.
"""

import configparser
import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import odoo
from odoo.tests import TransactionCase, tagged
from odoo.tools import config

ADDON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVIRONMENTS = ("prod", "integration", "test", "dev")
#: variables that steer server_environment or Odoo's configuration file
INHERITED_NEVER = ("RUNNING_ENV", "ODOO_STAGE", "ODOO_RC", "OPENERP_SERVER", "SERVER_ENV")
MISSING_DIRECTORY = "Provided server environment does not exist"

_SERVER_ENVIRONMENT = importlib.util.find_spec("odoo.addons.server_environment")
_SKIP_REASON = (
    "OCA server_environment is not importable in this Odoo (pip install "
    "odoo-addon-server_environment==18.0.*): nothing reads these files"
)
if _SERVER_ENVIRONMENT is None:
    print(f"server_environment_files tests skipped: {_SKIP_REASON}", file=sys.stderr)  # pylint: disable=print-used

_PROBE = """
import json, sys
import odoo
from odoo.tools import config

config.parse_config(sys.argv[1:], setup_logging=False)
odoo.modules.module.initialize_sys_path()  # done by parse_config; harmless again
from odoo.addons.server_environment import server_env

serv_config = server_env.serv_config
print(json.dumps({
    "running_env": config["running_env"],
    "directory": server_env._dir,
    "config": {name: dict(serv_config[name]) for name in serv_config.sections()},
}))
"""


@tagged("post_install", "-at_install")
@unittest.skipUnless(_SERVER_ENVIRONMENT, _SKIP_REASON)
class TestServerEnvironmentFiles(TransactionCase):
    def _run(self, options=None, **variables):
        """Import server_env in a new Odoo process: (returncode, stdout, stderr).

        ``options``: lines of the ``[options]`` section of the configuration file
        given with ``-c`` (always a new one, so that no ~/.odoorc is read).
        """
        workdir = tempfile.mkdtemp(prefix="server-env-files-")
        self.addCleanup(shutil.rmtree, workdir, True)
        rcfile = os.path.join(workdir, "odoo.conf")
        with open(rcfile, "w") as handle:
            handle.write("[options]\n")
            for key, value in (options or {}).items():
                handle.write(f"{key} = {value}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(INHERITED_NEVER)}
        odoo_root = os.path.dirname(os.path.dirname(os.path.abspath(odoo.__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [odoo_root, env.get("PYTHONPATH")]))
        env.update(variables)
        command = [
            sys.executable,
            "-c",
            _PROBE,
            "-c",
            rcfile,
            "--addons-path",
            config["addons_path"],
            "--data-dir",
            workdir,
        ]
        done = subprocess.run(
            command,
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        return done.returncode, done.stdout, done.stderr

    def _serv_config(self, options=None, **variables):
        returncode, stdout, stderr = self._run(options, **variables)
        self.assertEqual(returncode, 0, f"server_env failed to import:\n{stderr}")
        result = json.loads(stdout.strip().splitlines()[-1])
        # the files read are this addon's, not another server_environment_files
        self.assertEqual(os.path.realpath(result["directory"]), os.path.realpath(ADDON_DIR))
        return result

    def test_each_environment_reads_its_own_directory(self):
        for name in ENVIRONMENTS:
            with self.subTest(running_env=name):
                result = self._serv_config(RUNNING_ENV=name)
                self.assertEqual(result["running_env"], name)
                section = result["config"]["cloud_platform"]
                self.assertEqual(section["environment"], name)
                # default/ is read too, and its kind is empty by default
                self.assertIn("kind", section)
                self.assertEqual(section["kind"], "")

    def test_default_environment_is_test_and_odoo_stage_is_a_fallback(self):
        # the caller's own variables never reach the process
        leaking = {
            "RUNNING_ENV": "prod",
            "ODOO_STAGE": "integration",
            "SERVER_ENV_CONFIG": "[cloud_platform]\nkind = ovh\n",
            "SERVER_ENV_CONFIG_SECRET": "[outgoing_mail]\nsmtp_pass = leaked\n",
        }
        with mock.patch.dict(os.environ, leaking):
            result = self._serv_config()
        self.assertEqual(result["config"], {"cloud_platform": {"kind": "", "environment": "test"}})
        self.assertEqual(result["running_env"], "test")
        self.assertEqual(result["config"]["cloud_platform"]["environment"], "test")
        result = self._serv_config(ODOO_STAGE="dev")
        self.assertEqual(result["config"]["cloud_platform"]["environment"], "dev")

    def test_variables_override_the_files(self):
        result = self._serv_config(
            RUNNING_ENV="prod",
            SERVER_ENV_CONFIG=(
                "[cloud_platform]\nkind = ovh\n\n[outgoing_mail]\nsmtp_user = a@example.com\n"
                "smtp_pass = public-value\n"
            ),
            SERVER_ENV_CONFIG_SECRET="[outgoing_mail]\nsmtp_pass = s3cret-value\n",
        )
        sections = result["config"]
        # SERVER_ENV_CONFIG overrides default/ and keeps the environment's own keys
        self.assertEqual(sections["cloud_platform"], {"kind": "ovh", "environment": "prod"})
        # SERVER_ENV_CONFIG_SECRET adds to a section and is read last
        self.assertEqual(
            sections["outgoing_mail"],
            {"smtp_user": "a@example.com", "smtp_pass": "s3cret-value"},
        )

    def test_secret_section_alone(self):
        result = self._serv_config(
            RUNNING_ENV="integration",
            SERVER_ENV_CONFIG_SECRET="[outgoing_mail]\nsmtp_pass = s3cret-value\n",
        )
        self.assertEqual(result["config"]["outgoing_mail"], {"smtp_pass": "s3cret-value"})
        self.assertEqual(result["config"]["cloud_platform"]["environment"], "integration")

    def test_unknown_environment_is_refused(self):
        for name in ("labs-foo", "nope"):
            with self.subTest(running_env=name):
                returncode, stdout, stderr = self._run(RUNNING_ENV=name)
                self.assertNotEqual(returncode, 0, stdout)
                self.assertIn(MISSING_DIRECTORY, stderr)
                self.assertIn(os.path.join(ADDON_DIR, name), stderr)

    def test_running_env_option_wins_over_the_variable(self):
        # Odoo 18 has no --running-env command-line option: it is read from [options]
        result = self._serv_config({"running_env": "integration"}, RUNNING_ENV="prod")
        self.assertEqual(result["running_env"], "integration")
        self.assertEqual(result["config"]["cloud_platform"]["environment"], "integration")

    def test_no_secret_in_the_files(self):
        secret_words = ("pass", "secret", "key", "token")
        files = sorted(glob.glob(os.path.join(ADDON_DIR, "*", "*.conf")))
        self.assertEqual(
            sorted(os.path.basename(os.path.dirname(f)) for f in files),
            sorted(("default", *ENVIRONMENTS)),
        )
        for path in files:
            parser = configparser.ConfigParser(interpolation=None)
            parser.optionxform = str
            parser.read(path)
            for section in parser.sections():
                for key, value in parser.items(section):
                    with self.subTest(file=path, section=section, key=key):
                        secret = any(word in key.lower() for word in secret_words)
                        self.assertFalse(secret and value, "a secret in a committed file")
