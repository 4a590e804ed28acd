"""The package's shape: which layer may import which, one-job files, module docstrings.

The rules are the ones docs/architecture.md states; a new import across layers that the map
does not allow fails here, so the map and the code cannot drift apart.
"""

from __future__ import annotations

import ast
import statistics
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mmssr_plugin"

# layer -> the other layers (or "layer.module" entries) it may import; commands and the CLI sit
# on top and may import anything.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "utils": set(),
    # tiny models and the demo scorer, built through the plugin's own data and curation steps
    "testing": {"core", "utils", "data", "formats", "curation"},
    "data": {"core", "utils"},
    "formats": {"core", "data", "utils"},
    "engines": {"core", "data", "utils"},
    "selection": {"core"},
    "scoring": {"core", "data", "engines", "utils"},
    "curation": {"core", "data", "engines", "utils"},
    "evaluation": {"core", "data", "engines", "scoring", "curation", "report", "utils"},
    "report": {
        "core", "data", "formats", "selection", "utils",
        # the score table and failure reasons are data; the job runner and engines are not
        "scoring.store", "scoring.failures", "scoring.digits", "scoring.summary",
    },
    "llamafactory": {
        "core", "data", "engines", "scoring", "selection", "report", "evaluation", "utils", "(root)",
    },
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def _imported(path: Path) -> set[str]:
    """``layer.module`` of every mmssr_plugin import in ``path`` (top level and inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "mmssr_plugin":
                found.add(".".join(parts[1:3]) if len(parts) > 1 else "(root)")
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_point_one_way(path: Path) -> None:
    layer = _layer(path)
    if layer not in ALLOWED:  # commands, cli: the top
        return
    allowed = ALLOWED[layer]
    for target in _imported(path):
        target_layer = target.split(".")[0]
        if target_layer == layer:
            continue
        assert target_layer in allowed or target in allowed, (
            f"{path.relative_to(PACKAGE)} ({layer}) imports mmssr_plugin.{target}, "
            f"which docs/architecture.md does not allow"
        )


def test_relative_imports_are_not_used() -> None:
    relative = [
        str(p.relative_to(PACKAGE))
        for p in _modules()
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert relative == []


def test_files_are_small_and_say_their_job() -> None:
    sizes = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in _modules()}
    too_long = {str(p.relative_to(PACKAGE)): n for p, n in sizes.items() if n > 400}
    assert too_long == {}
    assert statistics.median(sizes.values()) < 200
    undocumented = [
        str(p.relative_to(PACKAGE))
        for p in sizes
        if sizes[p] > 5 and not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))
    ]
    assert undocumented == []


def test_selection_and_core_never_import_torch() -> None:
    for path in _modules():
        if _layer(path) not in ("selection", "core", "utils", "data", "formats", "report"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] in ("torch", "transformers") for n in names), path


def test_library_does_not_print() -> None:
    # entry points decide what the user sees: mmssr-cli, and the hook inside LLaMA-Factory's process
    entry_points = {PACKAGE / "cli.py", PACKAGE / "llamafactory" / "hook.py"}
    offenders = []
    for path in _modules():
        if _layer(path) in ("commands", "testing") or path in entry_points:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []
