"""`hashlens PATH.db` and `hashlens-gui PATH.db` open the window on that store (the desktop
entry's %f); anything else stays a command line."""

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.cli import build_parser, main
from app.launch import names_a_store, store_to_open
from tests.packaging.conftest import ROOT

COMMANDS = build_parser().get_default("command_names")


@pytest.mark.parametrize("argv, store", [
    (["shop.db"], "shop.db"),
    (["--read-only", "/data/My Store.SQLITE3"], "/data/My Store.SQLITE3"),
    (["sqlite:///x.db"], "sqlite:///x.db"),
    (["postgresql://u@h/db"], "postgresql://u@h/db"),
    (["list"], None),
    (["db"], None),
    (["--help"], None),
    (["list", "x.db"], None),
    ([], None),
    (["shop.db", "other.db"], None),
    (["notes.txt"], None),  # not a store name, and no such file
])
def test_which_argument_names_a_store(argv, store):
    assert store_to_open(argv, COMMANDS) == store


def test_an_existing_file_of_any_name_is_a_store(tmp_path):
    path = tmp_path / "hashes.data"
    path.write_bytes(b"")
    assert names_a_store(str(path))


@given(st.sampled_from(COMMANDS) | st.text(min_size=1).map(lambda t: "-" + t))
def test_commands_and_options_are_never_stores(argument):
    assert store_to_open([argument], COMMANDS) is None


def test_without_a_window_a_store_argument_is_a_usage_error(capsys):
    assert main(["shop.db"]) == 2
    assert "hashlens-gui shop.db" in capsys.readouterr().err


@pytest.mark.parametrize("function", ["cli", "main"])  # hashlens, hashlens-gui
def test_the_window_opens_the_store_given(tmp_path, clean_env, function):
    store = tmp_path / "a store.db"
    # An existing store, as a file manager passes it (a missing one would make the window ask first).
    assert main(["--store", str(store), "db", "create", "Shop"]) == 0
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; from ui.main import {function}; sys.exit({function}())", str(store)],
        env={**clean_env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert f"hashlens-smoke: opened {store}" in result.stdout
