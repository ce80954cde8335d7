"""The command line through main(argv): output, exit codes, and no Qt in app/."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from app.cli import EXIT_PARTIAL, main
from app.sources import open_source


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
def images(tmp_path, image_bytes):
    folder = tmp_path / "pictures"
    (folder / "nested").mkdir(parents=True)
    for i in range(3):
        (folder / "nested" / f"cat{i}.png").write_bytes(image_bytes(i))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_tour(run, images):
    assert run("db", "create", "ImageHashes")[0] == 0
    code, out, err = run("train", "ImageHashes", str(images))
    assert code == EXIT_PARTIAL  # three added, one refused
    assert "Added 3" in out and "refused 1" in out and "broken.jpg" in err and "Traceback" not in err
    assert "skipped 1 non-image file" in out and "notes.txt: not an image file name" in err
    code, out, _ = run("list", "ImageHashes")
    assert code == 0 and out.count("cat") == 3
    code, out, _ = run("aci", "action=ListImageHashes&database=ImageHashes&imagestatus=TRUE&metadata=TRUE&start=1&maxresults=10")
    assert code == 0
    root = ET.fromstring(out)
    idents = [e.findtext("identifier") for e in root.findall("responsedata/entry")]
    assert len(idents) == 3
    labels = [e.findtext("images/image/label") for e in root.findall("responsedata/entry")]
    assert labels == ["cat0", "cat1", "cat2"]
    first = idents[0]
    assert run("meta", "add", "ImageHashes", first, "colour", "red")[0] == 0
    assert run("meta", "update", "ImageHashes", first, "colour", "blue")[0] == 0
    code, out, _ = run("list", "ImageHashes", "--metadata", "--format", "json", "--meta", "colour=blue")
    rows = json.loads(out)
    assert code == 0 and [r["identifier"] for r in rows] == [first] and rows[0]["metadata"] == {"colour": "blue"}
    assert set(rows[0]) == {"position", "identifier", "phash", "trained_at", "metadata"}  # the export's entry object
    assert run("meta", "remove", "ImageHashes", first, "colour")[0] == 0
    assert run("relabel", "ImageHashes", first, "kitten")[0] == 0
    assert run("rename", "ImageHashes", first, "first")[0] == 0
    assert run("null-image", "ImageHashes", "first")[0] == 0
    code, out, _ = run("list", "ImageHashes", "--has-image-data", "no", "--format", "xml", "--imagestatus")
    root = ET.fromstring(out)
    assert [e.findtext("identifier") for e in root.findall("responsedata/entry")] == ["first"]
    assert root.findtext("responsedata/entry/images/image/label") == "kitten"
    assert run("db", "create", "Other")[0] == 0
    assert run("move", "ImageHashes", "first", "Other")[0] == 0
    assert run("remove", "Other", "first")[0] == 0
    code, out, _ = run("db", "list")
    assert "ImageHashes" in out and "Other" in out
    assert run("db", "rename", "Other", "Third")[0] == 0
    assert run("db", "remove", "Third")[0] == 0


def test_single_image_with_identifier_label_and_metadata(run, images):
    run("db", "create", "D")
    code, out, _ = run("train", "D", str(images / "nested" / "cat1.png"), "--identifier", "x1", "--label", "L",
                       "--meta", "a=1", "--meta", "b=two")
    assert (code, out.strip()) == (0, "x1")
    code, out, _ = run("aci", "action=ListImageHashes&database=D&metadata=true")
    assert [(i.findtext("key"), i.findtext("value")) for i in ET.fromstring(out).iter("item")] == [("a", "1"), ("b", "two")]


def test_aci_error_exit_status_and_xml(run):
    code, out, err = run("aci", "action=ListImageHashes&database=Nope")
    assert code == 1
    assert ET.fromstring(out).findtext("responsedata/error/errordescription") == "'database=Nope' does not exist"


def test_errors_are_one_line_without_traceback(run):
    code, out, err = run("list", "Nope")
    assert code == 1 and err.strip() == "hashlens: 'database=Nope' does not exist"
    code, _, err = run("list", "Nope", "--start", "0")
    assert code == 2 and "Traceback" not in err
    code, _, err = run("frobnicate")
    assert code == 2 and "invalid choice" in err
    code, _, err = run("train", "Nope", "/does/not/exist.png")
    assert code == 1 and "does not exist" in err


def test_bad_store_url_is_a_clear_error(capsys):
    assert main(["--store", "sqlite://x.db", "db", "list"]) == 1
    assert "three slashes" in capsys.readouterr().err
    assert main(["--store", "sqlite://x.db", "aci", "action=ListImageHashDatabases"]) == 1
    out = capsys.readouterr().out
    assert ET.fromstring(out).findtext("response") == "ERROR"


def test_store_flag_wins_over_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HASHLENS_STORE", f"sqlite:///{tmp_path / 'env.db'}")
    assert main(["db", "create", "FromEnv"]) == 0
    assert main(["--store", f"sqlite:///{tmp_path / 'flag.db'}", "db", "create", "FromFlag"]) == 0
    capsys.readouterr()
    main(["db", "list"])
    assert "FromEnv" in capsys.readouterr().out
    main(["--store", f"sqlite:///{tmp_path / 'flag.db'}", "db", "list"])
    out = capsys.readouterr().out
    assert "FromFlag" in out and "FromEnv" not in out


def test_read_only_refuses_writes(run, sqlite_url, capsys):
    run("db", "create", "D")
    assert main(["--store", sqlite_url, "--read-only", "db", "create", "E"]) == 1
    assert "read-only" in capsys.readouterr().err
    assert main(["--store", sqlite_url, "--read-only", "db", "list"]) == 0


def test_help_everywhere(capsys):
    for argv in (["--help"], ["list", "--help"], ["db", "--help"], ["meta", "add", "--help"], ["aci", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_command_line_never_loads_qt(tmp_path):
    code = (
        "import sys; from app.cli import main; "
        f"main(['--store', 'sqlite:///{tmp_path / 'q.db'}', 'db', 'list']); "
        "loaded = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken6', 'ui'))]; "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_app_package_never_imports_qt():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2] / "app"
    offenders = [
        str(p) for p in root.rglob("*.py")
        if re.search(r"^\s*(from|import)\s+(PySide6|shiboken6|ui\b|PyQt)", p.read_text(), re.M)
    ]
    assert offenders == []
