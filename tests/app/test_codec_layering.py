"""The codec package is domain-level and the aci/exports cycle stays broken: checked by
reading every module's imports (an AST walk), so a new import that breaks it fails here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(package: str):
    """(module file, imported module, inside a function?) for every import of a package."""
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nested = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f) if n is not f}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                yield path.relative_to(ROOT), name, id(node) in nested


def test_the_codec_imports_only_the_domain_and_itself():
    ours = [(p, n) for p, n, _ in _imports("app.mediaserver_codec")
            if (n == "app" or n.startswith("app.")) and not n.startswith(("app.domain", "app.mediaserver_codec"))]
    assert ours == []


def test_exports_never_import_the_aci_dispatcher():
    assert [(p, n) for p, n, _ in _imports("app.exports") if n == "app.aci" or n.startswith("app.aci.")] == []


def test_no_function_level_import_of_our_modules_in_the_aci_exports_or_codec():
    hidden = [(str(p), n) for package in ("app.aci", "app.exports", "app.mediaserver_codec")
              for p, n, inside in _imports(package) if inside and n.startswith("app.")]
    assert hidden == []


def test_nothing_imports_the_old_codec_homes():
    old = ("app.aci.params", "app.aci.response")
    found = [(str(p), n) for package in ("app", "ui", "tests", "benchmarks")
             for p, n, _ in _imports(package) if n in old or n.startswith(tuple(o + "." for o in old))]
    assert found == []
