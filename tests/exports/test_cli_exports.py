"""`hashlens export`, `import` and `verify` through main(argv): output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from app.cli.export_commands import build_parser
from app.sources import open_source

from .conftest import add_plain

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(sqlite_url, capsys):
    # An existing, empty store: only creating commands may make one (issue 10 item 10).
    open_source(sqlite_url, create=True).close()

    def run(*argv):
        code = main(["--store", sqlite_url, *argv])
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture
def filled(sqlite_store):
    add_plain(sqlite_store, "D", [(f"id{i}", "=label" if i == 2 else f"label {i}", i, [("k", str(i))], i)
                                  for i in range(1, 6)])
    return sqlite_store


def test_export_import_verify(filled, run, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    code, text, err = run("export", "D", "--format", "csv", "--output", str(out / "d.csv"), "--imagestatus",
                          "--metadata", "--identifier", "id1,id2,id9", "--sort", "identifier", "--descending")
    assert code == 0 and "Exported 2 entries" in text and "Manifest:" in text and not err
    body = (out / "d.csv").read_bytes().decode()
    assert body.splitlines()[1].startswith("1,id2,") and "'=label" in body
    code, text, _ = run("verify", str(out / "d.csv.manifest.json"))
    assert code == 0 and "matches" in text
    code, text, err = run("import", str(out / "d.csv"), "--database", "Copy")
    assert code == 0 and "2 added" in text
    code, _, err = run("import", str(out / "d.csv"), "--database", "Copy")
    assert code == 1 and "already exist" in err and "Traceback" not in err
    code, text, _ = run("import", str(out / "d.csv"), "--database", "Copy", "--on-duplicate", "skip")
    assert code == 0 and "2 skipped" in text
    (out / "d.csv").write_bytes(body.replace("id2", "id7").encode())
    code, _, err = run("verify", str(out / "d.csv.manifest.json"))
    assert code == 1 and "does NOT match" in err


def test_every_format_and_inference(filled, run, tmp_path):
    for name in ("a.xml", "a.tsv", "a.json", "a.ndjson", "a.jsonl", "a.xlsx", "a.zip"):
        code, text, err = run("export", "D", "-o", str(tmp_path / name), "--metadata")
        assert code == 0 and "Exported 5 entries" in text, (name, err)
    code, text, _ = run("export", "D", "--format", "images", "-o", str(tmp_path / "pics"), "--no-manifest")
    assert code == 0 and "Manifest" not in text and (tmp_path / "pics" / "index.csv").exists()
    code, _, err = run("export", "D", "-o", str(tmp_path / "a.pdf"))
    assert code == 1 and "--format" in err
    code, _, err = run("export", "Nope", "-o", str(tmp_path / "n.csv"))
    assert code == 1 and "'database=Nope' does not exist" in err


def test_raw_warns(filled, run, tmp_path):
    code, _, err = run("export", "D", "-o", str(tmp_path / "raw.csv"), "--imagestatus", "--raw")
    assert code == 0 and "warning" in err and "formula" in err
    assert ",=label," in (tmp_path / "raw.csv").read_text()
    code, text, _ = run("import", str(tmp_path / "raw.csv"), "--database", "R")  # dialect from the manifest
    assert code == 0 and "raw dialect" in text


def test_media_server_file_needs_no_flag(run, tmp_path):
    path = tmp_path / "ms.xml"
    path.write_text("<autnresponse><action>LISTIMAGEHASHES</action><response>SUCCESS</response><responsedata>"
                    "<entry><identifier>x</identifier></entry></responsedata></autnresponse>")
    code, text, _ = run("import", str(path), "--database", "M")
    assert code == 0 and "1 entry has no pHash (not known" in text and "placeholder" not in text
    code, _, err = run("import", str(path), "--database", "N", "--no-phash")
    assert code == 2 and "--no-phash" in err  # the switch is gone: a usage mistake naming it
    code, _, err = run("import", str(path))
    assert code == 1 and "--database" in err


def test_database_format(filled, run, tmp_path):
    code, text, _ = run("export", "D", "--format", "database", "-o", str(tmp_path / "d.hldb"))
    assert code == 0 and "5 entries" in text
    code, _, err = run("import", str(tmp_path / "d.hldb"))
    assert code == 1 and "already exists" in err
    code, text, _ = run("import", str(tmp_path / "d.hldb"), "--database", "D2")
    assert code == 0 and "'D2'" in text


def test_verify_bad_manifest(run, tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"kind": "hashlens-export-manifest", "file": "../x",
                                                 "sha256": "0", "bytes": 0}))
    code, _, err = run("verify", str(tmp_path / "m.json"))
    assert code == 1 and "plain file name" in err


def test_parser_standalone(tmp_path):
    args = build_parser().parse_args(["import", "x.csv", "--database", "D", "--on-duplicate", "replace"])
    assert args.on_duplicate == "replace" and args.handler.__name__ == "cmd_import"
    args = build_parser().parse_args(["verify", "x.manifest.json"])
    assert args.needs_store is False


def test_no_qt_is_loaded():
    code = ("import sys; import app.cli.export_commands, app.exports.importer, app.exports.database_file; "
            "print([m for m in sys.modules if m.startswith(('PySide6', 'shiboken'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
