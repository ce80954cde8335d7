"""Issue 10 items 2 and 3: an export replaces only a regular file (a link only when
asked), never writes beside a device, and a kill between the file and its manifest
leaves a pair that every import and `hashlens verify` sees as mismatched."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.audits.report import write_atomic
from app.cli import main
from app.domain import HashlensError, ListingQuery
from app.exports import manifest
from app.exports.atomic import ExportFailed
from app.exports.database_file import export_database
from app.exports.export import export_listing
from app.exports.formats import ExportOptions
from app.exports.importer import ImportOptions, import_file
from app.exports.readers import ImportRefused
from app.store import Store

from tests.exports.conftest import add_plain, store_digest

ROOT = Path(__file__).resolve().parents[2]
QUERY = ListingQuery("D", imagestatus=True, metadata=True)


@pytest.fixture
def small_store(sqlite_store):
    add_plain(sqlite_store, "D", [(f"'id{i}", f"=label {i}", i * 7919, [("k", f"v{i}")], i) for i in range(20)])
    return sqlite_store


def _fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    return path


def _socket(tmp_path) -> Path:
    path = tmp_path / "sock.csv"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    return path


@pytest.mark.parametrize("make", [_fifo, _socket, lambda tmp: tmp])
@pytest.mark.parametrize("fmt", ["csv", "xml", "xlsx", "json"])
def test_export_refuses_a_target_that_is_not_a_regular_file(small_store, tmp_path, make, fmt):
    target = make(tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ExportFailed) as caught:
        export_listing(small_store, QUERY, target, ExportOptions(fmt))
    assert str(target) in str(caught.value)
    # Nothing written beside it either: no manifest, no temp file.
    assert sorted(os.listdir(tmp_path)) == before


def test_export_refuses_a_device_node_even_through_a_link(small_store, tmp_path):
    # /dev/null is only lstat-ed and pointed at, never written: the refusal comes first.
    link = tmp_path / "null.csv"
    link.symlink_to("/dev/null")
    for follow in (False, True):
        with pytest.raises(ExportFailed) as caught:
            export_listing(small_store, QUERY, link, ExportOptions("csv", follow_symlinks=follow))
        assert ("symbolic link" in str(caught.value)) is not follow
    assert link.is_symlink()
    assert not any(n.endswith(".manifest.json") or n.startswith(".hashlens-") for n in os.listdir(tmp_path))


def test_a_link_is_written_through_only_when_asked(small_store, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "data.csv").write_text("previous")
    link = tmp_path / "link.csv"
    link.symlink_to(real / "data.csv")
    with pytest.raises(ExportFailed, match="symbolic link"):
        export_listing(small_store, QUERY, link, ExportOptions("csv"))
    assert (real / "data.csv").read_text() == "previous" and link.is_symlink()
    result = export_listing(small_store, QUERY, link, ExportOptions("csv", follow_symlinks=True))
    assert link.is_symlink() and result.path == real / "data.csv"
    assert (real / "data.csv").read_text(encoding="utf-8").startswith("position,identifier")
    assert manifest.verify(real / "data.csv.manifest.json").ok


def test_cli_follow_symlinks(sqlite_url, small_store, tmp_path, capsys):
    (tmp_path / "t.xml").write_text("old")
    link = tmp_path / "l.xml"
    link.symlink_to(tmp_path / "t.xml")
    small_store.close()
    assert main(["--store", sqlite_url, "export", "D", "-o", str(link)]) == 1
    err = capsys.readouterr().err
    assert "--follow-symlinks" in err and "Traceback" not in err
    assert main(["--store", sqlite_url, "export", "D", "-o", str(link), "--follow-symlinks"]) == 0
    assert (tmp_path / "t.xml").read_text(encoding="utf-8").startswith("<autnresponse")


def test_database_export_and_audit_report_refuse_a_fifo(small_store, tmp_path):
    fifo = _fifo(tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ExportFailed):
        export_database(small_store, "D", fifo)
    with pytest.raises(HashlensError):
        write_atomic(fifo, "report")
    assert sorted(os.listdir(tmp_path)) == before


def test_manifest_path_that_is_a_fifo_is_refused_not_blocked_on(small_store, tmp_path):
    target = tmp_path / "x.csv"
    os.mkfifo(manifest.manifest_path(target))
    with pytest.raises(ExportFailed):
        export_listing(small_store, QUERY, target, ExportOptions("csv"))
    assert not manifest.verify(manifest.manifest_path(target)).ok


# -- item 3: a kill between the file and its manifest --------------------------------------

_CHILD = """
import sys
from app.domain import ListingQuery
from app.exports.export import export_listing
from app.exports.formats import ExportOptions
from app.store import Store
store = Store.open(sys.argv[1], read_only=True)
export_listing(store, ListingQuery("D", imagestatus=True, metadata=True), sys.argv[2],
               ExportOptions("csv", spreadsheet_safe=sys.argv[3] == "safe"))
"""


def _export_killed(url, target, dialect, point="export.manifest=1:kill"):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HASHLENS_FAULTS": point}
    proc = subprocess.run([sys.executable, "-c", _CHILD, url, str(target), dialect], env=env,
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    return proc.returncode


def test_kill_between_file_and_manifest_is_detected_and_never_applied(sqlite_url, small_store, tmp_path):
    small_store.close()
    target = tmp_path / "out.csv"
    with Store.open(sqlite_url, read_only=True) as store:
        export_listing(store, QUERY, target, ExportOptions("csv", spreadsheet_safe=True))
    # The raw export is killed after its file is in place, before its manifest.
    assert _export_killed(sqlite_url, target, "raw") == -9
    verdict = manifest.verify(manifest.manifest_path(target))
    assert not verdict.ok and "does NOT match" in verdict.message
    with Store.open(sqlite_url) as store:
        before = store_digest(store)
        with pytest.raises(ImportRefused, match="describes another file"):
            import_file(store, target, "Again", ImportOptions())
        assert store_digest(store) == before
        # Given the dialect, the import reads the identifiers exactly (no extra apostrophe).
        import_file(store, target, "Again", ImportOptions(csv_dialect="raw"))
        ids = [r.identifier for r in store.list_page(ListingQuery("Again")).rows]
        assert ids == [f"'id{i}" for i in range(20)]


@pytest.mark.slow
def test_kill_at_every_export_checkpoint_leaves_a_consistent_or_detectable_pair(sqlite_url, small_store, tmp_path):
    small_store.close()
    target = tmp_path / "out.csv"
    points = ["export.row=1:kill", "export.fsync=1:kill", "export.replace=1:kill", "export.manifest=1:kill",
              "export.fsync=2:kill", "export.replace=2:kill"]
    kills = 0
    for n, point in enumerate(points * 2):
        dialect = "raw" if n % 2 else "safe"
        code = _export_killed(sqlite_url, target, dialect, point)
        kills += code == -9
        pair = manifest.manifest_path(target)
        if target.exists() and pair.exists():
            ok = manifest.verify(pair).ok
            if not ok:
                with Store.open(sqlite_url) as store:
                    with pytest.raises(ImportRefused):
                        import_file(store, target, f"K{n}", ImportOptions())
    assert kills == len(points) * 2
