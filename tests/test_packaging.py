"""Packaging: ``mmssr_plugin_autoload.pth`` ships in wheels and editable installs.

Real builds with this interpreter's setuptools (``--no-build-isolation``, ``--no-deps``,
``--no-index``: nothing is downloaded), of a copy of the project so that the working tree gets
no ``build/`` or ``*.egg-info``. Installs go into fresh venvs whose one extra ``.pth`` puts this
interpreter's site-packages on ``sys.path`` (pip, setuptools, torch importable; the ``.pth``
files there are not processed, so the outer environment's own install of the plugin stays off).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("setuptools", minversion="64", reason="PEP 660 builds need setuptools>=64")

ROOT = Path(__file__).resolve().parents[1]
PTH = "mmssr_plugin_autoload.pth"
AUTOLOAD = "mmssr_plugin.llamafactory.autoload"
PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in", "README.md", "LICENSE")
HAS_FINDER = "import sys; print(any(type(f).__name__ == 'LlamaFactoryHookFinder' for f in sys.meta_path))"


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "MMSSR_"))}
    full_env.update(env or {})
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def _pip(python: str | Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return _run(
        [str(python), "-m", "pip", "--isolated", "--disable-pip-version-check", *args], cwd=cwd
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "mmssr_plugin", src / "mmssr_plugin", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return src


@pytest.fixture(scope="module")
def wheel(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheelhouse")
    _pip(sys.executable, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out),
         str(project), cwd=project)
    (whl,) = out.glob("mmssr_plugin-*.whl")
    return whl


def _fresh_venv(path: Path) -> tuple[Path, Path]:
    """A venv without pip; this interpreter's site-packages are appended to its sys.path."""
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(path)
    python = path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=path).stdout.strip())
    outer = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (purelib / "_mmssr_test_outer_env.pth").write_text("".join(f"{p}\n" for p in outer))
    return python, purelib


def _py(python: Path, code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return _run([str(python), "-c", code], cwd=cwd, env=env)


def _record_entries(text: str) -> dict[str, str]:
    return {row[0]: row[1] for row in csv.reader(io.StringIO(text)) if row}


def test_wheel_has_pth_at_root_in_record(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert PTH in names  # at the root: pip puts it in purelib
        (record,) = [n for n in names if n.endswith(".dist-info/RECORD")]
        entries = _record_entries(zf.read(record).decode())
        data = zf.read(PTH)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert entries[PTH] == f"sha256={digest}"  # listed, so `pip uninstall` removes it
    lines = data.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("import ") and AUTOLOAD in lines[0]
    compile(lines[0], PTH, "exec")


def test_pth_line_never_breaks_startup(wheel: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        pth = zf.read(PTH)
    probe = "import site, sys; site.addsitedir(sys.argv[1]); print('alive', 'mmssr_plugin' in sys.modules)"
    absent = tmp_path / "absent"
    absent.mkdir()
    (absent / PTH).write_bytes(pth)
    # -I -S: no site-packages, so the plugin is not importable; the line must stay silent
    proc = _run([sys.executable, "-I", "-S", "-c", probe, str(absent)], cwd=tmp_path)
    assert proc.stdout.split() == ["alive", "False"] and proc.stderr == ""

    broken = tmp_path / "broken"
    (broken / "mmssr_plugin" / "llamafactory").mkdir(parents=True)
    (broken / "mmssr_plugin" / "__init__.py").write_text("")
    (broken / "mmssr_plugin" / "llamafactory" / "__init__.py").write_text("")
    (broken / "mmssr_plugin" / "llamafactory" / "autoload.py").write_text("raise RuntimeError('boom')\n")
    (broken / PTH).write_bytes(pth)
    proc = _run([sys.executable, "-I", "-S", "-c", probe, str(broken)], cwd=tmp_path)
    assert proc.stdout.split()[0] == "alive"
    assert "hook not loaded" in proc.stderr and "boom" in proc.stderr
    assert "Traceback" not in proc.stderr and "Error processing line" not in proc.stderr


def test_wheel_install_and_uninstall(wheel: Path, tmp_path: Path) -> None:
    python, purelib = _fresh_venv(tmp_path / "env")
    _pip(python, "install", "--no-deps", "--no-index", "--ignore-installed", str(wheel), cwd=tmp_path)
    assert (purelib / PTH).is_file() and (purelib / "mmssr_plugin" / "__init__.py").is_file()
    code = f"import sys, mmssr_plugin; print({AUTOLOAD!r} in sys.modules, mmssr_plugin.__file__)"
    loaded, where = _py(python, code, tmp_path).stdout.split()
    assert loaded == "True" and Path(where).is_relative_to(purelib)

    _pip(python, "uninstall", "-y", "mmssr-plugin", cwd=tmp_path)
    assert not (purelib / PTH).exists() and not (purelib / "mmssr_plugin").exists()
    proc = _py(python, "print('alive')", tmp_path)
    assert proc.stdout.strip() == "alive" and proc.stderr == ""


@pytest.fixture(scope="module")
def editable_env(project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("editable")
    python, purelib = _fresh_venv(base / "env")
    _pip(python, "install", "--no-deps", "--no-build-isolation", "--no-index", "--ignore-installed",
         "-e", str(project), cwd=base)
    return python, purelib, base


def test_editable_install_puts_pth_in_site_packages(editable_env, project: Path) -> None:
    python, purelib, cwd = editable_env
    assert (purelib / PTH).is_file()
    assert not (purelib / "mmssr_plugin").exists()  # editable: the code stays in the project
    (dist_info,) = purelib.glob("mmssr_plugin-*.dist-info")
    assert PTH in _record_entries((dist_info / "RECORD").read_text())

    proc = _py(python, f"import sys; print({AUTOLOAD!r} in sys.modules)", cwd)
    assert proc.stdout.strip() == "True" and proc.stderr == ""
    proc = _py(python, "import sys, mmssr_plugin; print('torch' in sys.modules, mmssr_plugin.__file__)", cwd)
    torch_loaded, where = proc.stdout.split()
    assert torch_loaded == "False"
    assert Path(where).resolve().is_relative_to(project.resolve())


def test_disable_env_leaves_only_the_guard(editable_env) -> None:
    """MMSSR_DISABLE_HOOK=1: the finder only guards read_args (a block is refused clearly)."""
    python, _, cwd = editable_env
    modes = ("import sys; print([f.disabled for f in sys.meta_path "
             "if type(f).__name__ == 'LlamaFactoryHookFinder'])")
    assert _py(python, HAS_FINDER, cwd).stdout.strip() == "True"
    assert _py(python, modes, cwd).stdout.strip() == "[False]"
    assert _py(python, modes, cwd, MMSSR_DISABLE_HOOK="1").stdout.strip() == "[True]"
