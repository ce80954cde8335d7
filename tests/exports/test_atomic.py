"""Atomic exports under failure: injected I/O errors at every point (FI1), cancel, kills
in a child process (K1), and the sweep of stale temporary files."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.domain import Failure, HashlensError, ListingQuery
from app.exports import atomic
from app.exports.atomic import AtomicFile, ExportFailed, sweep_stale
from app.exports.export import export_listing
from app.exports.formats import ExportOptions
from app.exports.manifest import manifest_path
from app.store import Store

from .conftest import add_plain, parts_in

ROOT = Path(__file__).resolve().parents[2]
QUERY = ListingQuery("D", imagestatus=True, metadata=True)


@pytest.fixture
def store_1k(sqlite_store):
    add_plain(sqlite_store, "D", [(f"id{i}", f"label {i}", i * 7919, [("k", str(i))], i) for i in range(1000)])
    return sqlite_store


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _previous(out: Path, name: str) -> tuple[Path, bytes]:
    target = out / name
    target.write_bytes(b"the previous, complete export\n")
    return target, target.read_bytes()


def test_atomic_file_commits_only_on_success(out):
    target, before = _previous(out, "a.txt")
    with pytest.raises(RuntimeError):
        with AtomicFile(target) as f:
            f.write(b"half")
            assert parts_in(out)  # the data goes to a temporary file beside the target
            raise RuntimeError("boom")
    assert target.read_bytes() == before and not parts_in(out)
    with AtomicFile(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new" and not parts_in(out)


def test_temp_name_of_a_long_target_stays_short(out):
    target = out / ("é" * 120 + ".csv")  # 244 bytes: a valid name, too long once decorated
    with AtomicFile(target) as f:
        assert len(f.part.name.encode()) <= 255
        f.write(b"x")
    assert target.read_bytes() == b"x"


# -- FI1: every failure point, once and persistent -------------------------------------------------


class _Injector:
    """Makes the n-th call of a function raise OSError(code); persistent: and every later one."""

    def __init__(self, real, n, code, persistent):
        self.real, self.n, self.code, self.persistent = real, n, code, persistent
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.n or (self.persistent and self.calls > self.n):
            raise OSError(self.code, os.strerror(self.code))
        return self.real(*args, **kwargs)


class _FailingFile:
    def __init__(self, f, injector):
        self._f, self._inject = f, injector

    def write(self, data):
        return self._inject(self._f.write, data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def _write_injector(monkeypatch, n, code, persistent):
    inj = _Injector(lambda fn, data: fn(data), n, code, persistent)
    real_open = open

    def fake_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return _FailingFile(f, inj) if "x" in mode and "b" in mode else f

    monkeypatch.setattr(atomic, "open", fake_open, raising=False)
    return inj


def _fsync_injector(monkeypatch, n, code, persistent):
    inj = _Injector(os.fsync, n, code, persistent)
    monkeypatch.setattr(os, "fsync", inj)
    return inj


def _replace_injector(monkeypatch, n, code, persistent):
    inj = _Injector(os.replace, n, code, persistent)
    monkeypatch.setattr(os, "replace", inj)
    return inj


@pytest.mark.parametrize("inject", [_write_injector, _fsync_injector, _replace_injector])
@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("fmt", ["csv", "xml", "json"])
def test_every_io_failure_point_leaves_the_previous_file(store_1k, out, monkeypatch, inject, persistent, fmt):
    """Loop n = 1... until the export succeeds: each failure is an ExportFailed naming the
    path and errno, with the old file intact and no temporary file left (reliability FI1)."""
    target, before = _previous(out, f"x.{fmt}")
    codes = [errno.ENOSPC, errno.EIO, errno.EACCES]
    failures = 0
    for n in range(1, 200):
        code = codes[n % 3]
        with monkeypatch.context() as m:
            inj = inject(m, n, code, persistent)
            try:
                export_listing(store_1k, QUERY, target, ExportOptions(fmt, manifest=False))
            except ExportFailed as exc:
                failures += 1
                assert str(target) in exc.description and errno.errorcode[code] in exc.description
                assert exc.failure is Failure.FILE_FAILED
                if "was written completely" in exc.description:
                    # the folder fsync after the rename failed: the new file is whole
                    assert _parses(target, fmt) == 1000
                else:
                    assert target.read_bytes() == before, f"target changed after failure at call {n}"
                assert not parts_in(out), f"temp file left after failure at call {n}"
                continue
        assert inj.calls < n, "the export succeeded although a failure was injected"
        break
    assert failures >= 1
    assert target.read_bytes() != before
    assert not store_1k.db.in_transaction()


def test_fsync_happens_before_replace(store_1k, out, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", Path(b).name)), real_replace(a, b))[1])
    export_listing(store_1k, QUERY, out / "x.csv", ExportOptions("csv"))
    first_replace = calls.index(("replace", "x.csv"))
    assert "fsync" in calls[:first_replace]
    # the folder is fsynced after the rename too, so the rename itself is durable
    assert "fsync" in calls[first_replace + 1:]


@pytest.mark.parametrize("fmt", ["xml", "csv", "tsv", "json", "ndjson", "xlsx", "images"])
def test_fault_hook_mid_write(store_1k, out, monkeypatch, fmt):
    """HASHLENS_FAULTS=export.row=5:ENOSPC fails the export after 400 rows."""
    from app import faults

    name = "x.zip" if fmt == "images" else f"x.{fmt}"
    target, before = _previous(out, name)
    monkeypatch.setenv("HASHLENS_FAULTS", "export.row=5:ENOSPC")
    faults.reset()
    with pytest.raises(ExportFailed, match="ENOSPC"):
        export_listing(store_1k, QUERY, target, ExportOptions(fmt))
    faults.reset()
    assert target.read_bytes() == before and not parts_in(out)
    assert not manifest_path(target).exists()


@pytest.mark.parametrize("fmt", ["xml", "csv", "json", "xlsx", "images"])
def test_cancel_leaves_no_file(store_1k, out, fmt):
    target, before = _previous(out, "x.zip" if fmt == "images" else f"x.{fmt}")
    seen = []

    def cancelled():
        seen.append(1)
        return len(seen) > 3

    with pytest.raises(HashlensError) as err:
        export_listing(store_1k, QUERY, target, ExportOptions(fmt), cancelled=cancelled)
    assert err.value.failure is Failure.CANCELLED and "no file was written" in err.value.description
    assert target.read_bytes() == before and not parts_in(out) and not manifest_path(target).exists()
    folder = out / "pics"
    if fmt == "images":
        seen.clear()
        with pytest.raises(HashlensError):
            export_listing(store_1k, QUERY, folder, ExportOptions(fmt), cancelled=cancelled)
        assert not folder.exists() and not parts_in(out)
    assert not store_1k.db.in_transaction()


# -- the sweep --------------------------------------------------------------------------------------


def test_sweep_removes_only_stale_parts(out):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = out / f".hashlens-x.csv.{dead_pid}-0123456789ab.part"
    stale.write_text("half")
    stale_dir = out / f".hashlens-pics.{dead_pid}-0123456789ab.part"
    stale_dir.mkdir()
    (stale_dir / "a.png").write_bytes(b"x")
    live = out / f".hashlens-y.csv.{os.getpid()}-0123456789ab.part"
    live.write_text("an export still running")
    old_live = out / f".hashlens-z.csv.{os.getpid()}-abcdefabcdef.part"
    old_live.write_text("old")
    old = time.time() - 3 * 24 * 3600
    os.utime(old_live, (old, old))
    mine = out / ".hashlens-notes.txt"
    mine.write_text("not ours: no pid and token")
    removed = sweep_stale(out)
    assert set(removed) == {stale, stale_dir, old_live}
    assert live.exists() and mine.exists() and not stale.exists() and not stale_dir.exists()


# -- K1: kills in a child process -------------------------------------------------------------------

_CHILD = """
import sys
from app.store import Store
from app.domain import ListingQuery
from app.exports.export import export_listing
from app.exports.formats import ExportOptions
store = Store.open(sys.argv[1], read_only=True)
export_listing(store, ListingQuery("D", imagestatus=True, metadata=True), sys.argv[2], ExportOptions(sys.argv[3]))
"""


@pytest.fixture(scope="module")
def store_10k(tmp_path_factory):
    path = tmp_path_factory.mktemp("k1") / "store.db"
    store = Store.open("sqlite:///" + str(path))
    add_plain(store, "D", [(f"id{i}", f"=label {i}", i * 7919, [("k", f"v,{i}")], i) for i in range(10_000)])
    store.close()
    return "sqlite:///" + str(path)


def _parses(path: Path, fmt: str) -> int:
    if fmt == "xml":
        from defusedxml import ElementTree as DET

        return len(DET.parse(path, forbid_dtd=True).getroot().findall("responsedata/entry"))
    if fmt == "json":
        return len(json.loads(path.read_bytes())["entries"])
    import csv
    import io

    return len(list(csv.reader(io.StringIO(path.read_bytes().decode(), newline="")))) - 1


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["xml", "csv", "json"])
def test_kill_at_every_checkpoint_never_leaves_a_torn_file(store_10k, tmp_path, fmt):
    """30+ SIGKILLs per format at the export's fault hooks: the target is always the old
    file or the new complete one, never torn, and the sweep removes every temp file."""
    out = tmp_path / "out"
    out.mkdir()
    target, before = _previous(out, f"x.{fmt}")
    points = [f"export.row={n}:kill" for n in range(1, 101, 4)]  # 25 points through the rows
    points += ["export.fsync=1:kill", "export.replace=1:kill", "export.fsync=2:kill", "export.replace=2:kill",
               "export.row=100:kill", "export.row=101:kill"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kills = 0
    for point in points:
        env["HASHLENS_FAULTS"] = point
        proc = subprocess.run([sys.executable, "-c", _CHILD, store_10k, str(target), fmt], env=env,
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
        data = target.read_bytes()
        if proc.returncode == -9:
            kills += 1
        else:
            assert proc.returncode == 0, proc.stderr
        assert data == before or _parses(target, fmt) == 10_000, point
        if data != before:
            before = data  # a kill after the replace: the new complete file stays
        sweep_stale(out)
        assert not parts_in(out), point
    assert kills >= 30
