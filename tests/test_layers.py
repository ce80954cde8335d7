"""The layering contract: which package may import which, checked on every import statement.

Function-level imports count exactly like module-level ones, so a lazy import cannot hide a
cycle. The layer table is the one drawn in docs/architecture.md; a test keeps the two equal.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. A module may import modules of its own layer or of any layer below, never
# one above. Packages named on one line are peers: they must not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("app.domain", "app.faults", "app.launch"),
    ("app.mediaserver_codec", "app.diff"),
    ("app.source",),
    ("app.store",),
    ("app.sources",),
    ("app.services",),
    ("app.exports",),
    ("app.audits",),
    ("app.mediaserver",),
    ("app.aci",),
    ("app.serve",),
    ("app.cli",),
    ("ui",),
]

FORBIDDEN = {
    # app/ is the GUI-free core: it never loads Qt, not even QtCore.
    "app": ("PySide6", "shiboken6", "ui"),
    # The window reaches data only through app.sources, app.services and the Source protocol.
    "ui": ("app.store", "peewee", "playhouse"),
}


def _modules() -> dict[str, Path]:
    found = {}
    for top in ("app", "ui"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[int, str]]:
    """Every module named by an import statement anywhere in the file, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((node.lineno, module))
            # `from app import faults` imports the module app.faults, not the package app.
            out.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names
                       if f"{module}.{alias.name}" in MODULES)
    return out


def _layer_of(module: str) -> int | None:
    best, best_len = None, -1
    for index, names in enumerate(LAYERS):
        for layer_name in names:
            if (module == layer_name or module.startswith(layer_name + ".")) and len(layer_name) > best_len:
                best, best_len = index, len(layer_name)
    return best


def _owner(module: str) -> str | None:
    best = None
    for names in LAYERS:
        for layer_name in names:
            if module == layer_name or module.startswith(layer_name + "."):
                if best is None or len(layer_name) > len(best):
                    best = layer_name
    return best


def _violations() -> list[str]:
    problems = []
    for name, path in MODULES.items():
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        for top, banned in FORBIDDEN.items():
            if name == top or name.startswith(top + "."):
                for line, target in _imports(name, path):
                    if any(target == b or target.startswith(b + ".") for b in banned):
                        problems.append(f"{where}:{line}: {name} imports {target}")
        mine = _layer_of(name)
        for line, target in _imports(name, path):
            theirs = _layer_of(target)
            if mine is None or theirs is None or target == "app":
                continue
            if theirs > mine:
                problems.append(f"{where}:{line}: {name} imports {target}, a layer above it")
            elif theirs == mine and _owner(name) != _owner(target):
                problems.append(f"{where}:{line}: {name} imports its peer {target}")
    return problems


def test_no_import_crosses_the_layers():
    assert _violations() == []


def test_every_package_has_a_layer():
    unplaced = sorted({name for name in MODULES if name not in ("app",) and _layer_of(name) is None})
    assert unplaced == []


def test_the_checker_sees_a_lazy_upward_import(tmp_path, monkeypatch):
    """A function-level import of a higher layer is caught like any other."""
    fake = tmp_path / "store_mod.py"
    fake.write_text("def f():\n    from app.cli import main\n", encoding="utf-8")
    monkeypatch.setitem(MODULES, "app.store.fake_for_test", fake)
    assert any("app.cli" in p for p in _violations())


def _diagram() -> str:
    return "\n".join("  ".join(names) for names in reversed(LAYERS))


def test_architecture_page_draws_these_layers():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- layers -->\n```\n(.*?)\n```", text, re.S)
    assert found, "docs/architecture.md lost its layer diagram"
    assert found.group(1) == _diagram(), "redraw the diagram: python -c 'from tests.test_layers import _diagram; print(_diagram())'"


@pytest.mark.parametrize("top", ["app", "ui"])
def test_modules_open_with_a_docstring(top):
    missing = [str(p.relative_to(ROOT)) for n, p in MODULES.items()
               if (n == top or n.startswith(top + ".")) and p.stat().st_size
               and ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) is None]
    assert missing == []


def test_action_names_are_spelled_only_in_their_table():
    """Every Media Server action name comes from app.mediaserver_codec.names (issue 9)."""
    from app.mediaserver_codec import names

    # GetStatus is also a QueueAction value, so the health checks are left out.
    spelled = set(names.ACI_ACTIONS) | {names.QUEUE_INFO, names.IMPORT_IMAGE_HASHES, names.APPEND_IMAGE_HASHES,
                                        names.ATTACH_IMAGES,
                                        names.PUSH_IMAGE_HASH_CHANGE, names.DISCARD_IMAGE_HASH_CHANGES}
    table = MODULES["app.mediaserver_codec.names"]
    found = [f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}"
             for path in MODULES.values() if path != table
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Constant) and node.value in spelled]
    assert found == []
