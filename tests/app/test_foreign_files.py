"""Opening a store never touches a file that is not one (issue 10 item 10).

Only the commands that create (`db create`, `sample`, `train`, `import`, the default
store on first start, File > New store) may make a file, through
`open_source(..., create=True)`. A mistyped path is an error with no file or folder
made; an unrelated SQLite file, or any other file, is refused and left byte for byte
as it was: no hl_* tables, no switch to WAL, no -wal or -shm left beside it."""

from __future__ import annotations

import sqlite3

import pytest

from app.cli import main
from app.domain import Failure, HashlensError
from app.sources import open_source


def _unrelated_sqlite(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.execute("INSERT INTO notes (text) VALUES ('keep me')")
    conn.commit()
    conn.close()
    return path.read_bytes()


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


@pytest.mark.parametrize("read_only, create", [(False, False), (True, False), (False, True)])
def test_an_unrelated_sqlite_file_is_refused_and_left_byte_for_byte(tmp_path, read_only, create):
    path = tmp_path / "notes.db"
    before = _unrelated_sqlite(path)
    with pytest.raises(HashlensError) as caught:
        open_source(f"sqlite:///{path}", read_only=read_only, create=create)
    assert caught.value.failure is Failure.STORE_UNAVAILABLE
    assert "not a Hashlens store" in caught.value.description and "untouched" in caught.value.description
    assert path.read_bytes() == before
    assert _siblings(path) == ["notes.db"]  # no -wal, no -shm
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["notes"]
    finally:
        conn.close()


@pytest.mark.parametrize("content", [b"plain text, not a database\n" * 50, bytes(range(256)) * 8])
@pytest.mark.parametrize("create", [False, True])
def test_any_other_file_is_refused_and_left_alone(tmp_path, content, create):
    path = tmp_path / "letter.txt"
    path.write_bytes(content)
    with pytest.raises(HashlensError) as caught:
        open_source(str(path), create=create)
    assert caught.value.failure is Failure.STORE_UNAVAILABLE
    assert path.read_bytes() == content
    assert _siblings(path) == ["letter.txt"]


def test_a_mistyped_path_makes_no_file_and_no_folder(tmp_path):
    path = tmp_path / "typo" / "deeper" / "store.db"
    with pytest.raises(HashlensError) as caught:
        open_source(f"sqlite:///{path}")
    assert caught.value.failure is Failure.STORE_UNAVAILABLE and str(path) in caught.value.description
    assert list(tmp_path.iterdir()) == []


def test_only_creating_commands_make_a_store(tmp_path, capsys):
    path = tmp_path / "new" / "store.db"
    url = f"sqlite:///{path}"
    for argv in (["db", "list"], ["list", "D"], ["aci", "action=ListImageHashes&database=D"], ["audit"],
                 ["history"], ["db", "remove", "D"]):
        assert main(["--store", url, *argv]) == 1, argv
        assert not (tmp_path / "new").exists(), argv
    capsys.readouterr()
    assert main(["--store", url, "db", "create", "D"]) == 0
    assert path.exists()
    other = tmp_path / "by-aci" / "store.db"
    assert main(["--store", f"sqlite:///{other}", "aci", "action=CreateImageHashDatabase&database=D"]) == 0
    assert other.exists()
    assert main(["--store", url, "db", "list"]) == 0
    assert "D" in capsys.readouterr().out


def test_commands_on_an_unrelated_file_leave_it_untouched(tmp_path, capsys):
    path = tmp_path / "notes.db"
    before = _unrelated_sqlite(path)
    for argv in (["db", "list"], ["db", "create", "D"], ["list", "D"]):
        assert main(["--store", f"sqlite:///{path}", *argv]) == 1, argv
        assert "not a Hashlens store" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert _siblings(path) == ["notes.db"]


def test_an_empty_file_may_become_a_store_when_asked(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with pytest.raises(HashlensError):
        open_source(str(path))
    assert path.read_bytes() == b""
    with open_source(str(path), create=True) as store:
        store.create_database("D")
    with open_source(str(path)) as store:
        assert [d.name for d in store.list_databases()] == ["D"]
