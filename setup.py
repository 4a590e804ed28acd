"""Packaging hook: ship ``mmssr_plugin_autoload.pth`` at the root of site-packages.

All project metadata lives in ``pyproject.toml``; this file only adds a ``build_py`` that
writes the ``.pth`` file, so that every interpreter of an environment where the package is
installed imports :mod:`mmssr_plugin.llamafactory.autoload` at start-up.

* Regular installs (``pip install .``, wheels, sdists): the file is written into ``build_lib``
  and reported by ``get_outputs()``, so ``bdist_wheel`` puts it at the wheel's root and in
  its RECORD (``pip uninstall`` removes it).
* Editable installs (PEP 660, ``pip install -e .``): setuptools' ``editable_wheel`` ignores
  ``build_lib`` (except in ``strict`` mode) and packs its unpacked-wheel folder, which it
  sets as the ``install`` command's ``install_lib``; the file is written there as well.
"""

from __future__ import annotations

import os

from setuptools import setup
from setuptools.command.build_py import build_py as _build_py

PTH_NAME = "mmssr_plugin_autoload.pth"
AUTOLOAD_MODULE = "mmssr_plugin.llamafactory.autoload"

# One ``import`` line (site.py executes lines that start with "import"). Quiet when the
# package is simply gone (uninstalled, or another environment sharing the .pth); any other
# failure prints one line on stderr and never stops the interpreter from starting.
_BODY = (
    "try:\n"
    f" import {AUTOLOAD_MODULE}\n"
    "except Exception as e:\n"
    " if not (isinstance(e, ModuleNotFoundError) and e.name == 'mmssr_plugin'):\n"
    "  sys.stderr.write('mmssr_plugin: LLaMA-Factory hook not loaded: %r\\n' % (e,))\n"
)
PTH_CONTENT = f"import sys; exec({_BODY!r})\n"


class build_py(_build_py):
    """``build_py`` that also writes :data:`PTH_NAME` (see the module docstring)."""

    def run(self) -> None:
        super().run()
        self._write_pth(self.build_lib)
        if getattr(self, "editable_mode", False):
            install_lib = getattr(self.get_finalized_command("install"), "install_lib", None)
            if install_lib:
                self._write_pth(install_lib)
            else:  # pragma: no cover - would mean setuptools changed editable_wheel
                self.warn(f"editable install: cannot place {PTH_NAME}; the hook will not autoload")

    def _write_pth(self, directory: str) -> None:
        self.mkpath(directory)
        target = os.path.join(directory, PTH_NAME)
        if not getattr(self, "dry_run", False):
            with open(target, "w", encoding="utf-8") as fh:
                fh.write(PTH_CONTENT)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), os.path.join(self.build_lib, PTH_NAME)]


setup(cmdclass={"build_py": build_py})
