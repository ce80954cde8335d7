"""The window's layer rule, checked on the source: `ui/` never imports `app.store` or peewee
(it opens stores through `app.sources` and works through `app.services`)."""

from __future__ import annotations

import ast
from pathlib import Path

import ui

FORBIDDEN = ("app.store", "peewee", "playhouse")


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            if node.module == "app":
                yield from (f"app.{alias.name}" for alias in node.names)


def test_ui_never_imports_the_sql_store_or_peewee():
    found = [f"{path.relative_to(Path(ui.__file__).parent)}: {name}"
             for path in Path(ui.__file__).parent.rglob("*.py")
             for name in _imports(path)
             if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)]
    assert found == []
