"""Puts ``stateless_odoo_json_logging.pth`` at the root of the wheel, so that it lands
in site-packages (see ``stateless_odoo.observability.early_json``); pyproject.toml
holds everything else."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "stateless_odoo_json_logging.pth"


class BuildPyWithPth(build_py):
    def run(self):
        super().run()
        self.copy_file(str(Path(__file__).parent / PTH), str(Path(self.build_lib) / PTH))

    def get_outputs(self, include_bytecode=True):
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH)]


setup(cmdclass={"build_py": BuildPyWithPth})
