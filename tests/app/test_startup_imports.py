"""Plain commands import only what they use: no numpy, imaging, database drivers or Qt."""

import argparse
import contextlib
import importlib
import io
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.cli import COMMAND_MODULES, COMMANDS, UsageError, build_parser, main, requested_command

# What a plain command must not load (issue 15, item 1): each costs tens to hundreds of
# milliseconds of start-up.
HEAVY = ("numpy", "scipy", "imagehash", "PIL", "psycopg", "pymysql", "PySide6", "shiboken6", "numba", "waitress",
         "defusedxml", "xlsxwriter")

# Runs `hashlens ARGS…` as the console script does, then reports which heavy modules the
# process loaded, whatever the command's outcome (--help ends in SystemExit).
PROBE = """
import json, sys
from ui.main import cli
try:
    code = cli(sys.argv[2:])
except SystemExit as stop:
    code = stop.code
wanted = json.loads(sys.argv[1])
heavy = sorted(w for w in wanted if any(name == w or name.startswith(w + '.') for name in sys.modules))
print('HEAVY ' + json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)
"""


def _loaded(*argv):
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY), *argv],
                            capture_output=True, text=True, timeout=120)
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("HEAVY "))
    return json.loads(line[len("HEAVY "):])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    url = "sqlite:///" + str(tmp_path_factory.mktemp("startup") / "store.db")
    assert _loaded("--store", url, "db", "create", "Photos")["code"] == 0
    return url


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["list", "--help"],
    ["db", "list"],
    ["list", "Photos", "--maxresults", "50"],
    ["list", "Photos", "--format", "xml", "--imagestatus", "--metadata"],
    ["aci", "a=ListImageHashes&database=Photos&maxresults=50"],
    ["aci", "a=ListImageHashDatabases"],
    ["db", "create", "Other"],
])
def test_plain_command_loads_no_heavy_module(store, argv):
    argv = argv if argv[0].startswith("--") else ["--store", store, *argv]
    result = _loaded(*argv)
    assert result["code"] == 0
    assert result["heavy"] == [], f"hashlens {' '.join(argv)} imported {result['heavy']}"


def test_the_probe_sees_heavy_modules_when_a_command_needs_them(store, tmp_path):
    """The check above can fail: `audit` needs numpy and the probe reports it."""
    result = _loaded("--store", store, "audit", "Photos", "--format", "json", "--output", str(tmp_path / "a.json"))
    assert "numpy" in result["heavy"]


@pytest.mark.server
@pytest.mark.parametrize("url_fixture, driver", [("pg_url", "psycopg"), ("mysql_url", "pymysql")])
def test_a_server_driver_is_loaded_when_its_store_opens(request, url_fixture, driver):
    """peewee is imported without the drivers (app/store/drivers.py) and handed one when a
    server store opens: the store then works as usual."""
    url = request.getfixturevalue(url_fixture)
    script = f"""
import sys
from app.store import Store
from app.services import actions
from app.domain import ListingQuery
assert {driver!r} not in sys.modules, "imported with the store"
with Store.open({url!r}) as store:
    actions.create_database(store, "Photos")
    assert [d.name for d in store.list_databases()] == ["Photos"]
    assert store.count(ListingQuery("Photos")).value == 0
print("LOADED", {driver!r} in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "LOADED True" in result.stdout


def test_help_loads_not_even_the_store():
    """`hashlens --help` names every command without importing the modules that declare
    them, and opens no store: none of the store's machinery is loaded."""
    store_machinery = ("peewee", "sqlite3", "app.store", "app.sources", "app.aci", "app.services", "app.exports")
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY + store_machinery), "--help"],
                            capture_output=True, text=True, timeout=120)
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("HEAVY "))
    assert json.loads(line[len("HEAVY "):]) == {"code": 0, "heavy": []}
    for name, _, _ in COMMANDS:
        assert f"\n    {name}" in result.stdout


def test_the_help_table_is_what_each_module_declares():
    """COMMANDS (what `hashlens --help` lists without importing) equals, name by name and in
    order, what each module's add_commands declares."""
    for module in COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).add_commands(sub)
        declared = [(action.dest, action.help) for action in sub._choices_actions]
        listed = [(name, helptext) for name, home, helptext in COMMANDS if home == module]
        assert declared == listed, module


def test_each_command_gets_its_full_parser(tmp_path, capsys):
    for name, _, _ in COMMANDS:
        with pytest.raises(SystemExit) as stop:
            build_parser(name).parse_args([name, "--help"])
        assert stop.value.code == 0
        assert f"usage: hashlens {name}" in capsys.readouterr().out
    # Options of a command from another module are really parsed (a bad choice names the flag).
    assert main(["--store", "sqlite:///" + str(tmp_path / "x.db"), "export", "D", "--format", "nonsense",
                 "-o", str(tmp_path / "x.csv")]) == 2
    assert "--format" in capsys.readouterr().err


_GLOBAL = st.lists(st.sampled_from([["--read-only"], ["--store", "sqlite:///a b.db"], ["--store=x.db"],
                                    ["--sto", "y.db"], ["--read"], ["--store", "list"]]), max_size=3)


@settings(deadline=None)  # parsing is quick; a busy machine is not
@given(before=_GLOBAL, command=st.sampled_from([name for name, _, _ in COMMANDS]),
       rest=st.lists(st.sampled_from(["--help", "x", "--format", "json", "--store", "-o", "list"]), max_size=4))
def test_the_command_word_is_found_as_argparse_finds_it(before, command, rest):
    argv = [token for option in before for token in option] + [command] + rest
    assert requested_command(argv) == command
    # The full parser agrees wherever it accepts the line (a usage mistake is its to report).
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            parsed = build_parser(command).parse_args(argv)
    except (UsageError, SystemExit):
        return
    assert parsed.command == command


def test_no_command_word():
    assert requested_command([]) is None
    assert requested_command(["--store", "sqlite:///x.db", "--read-only"]) is None
    assert requested_command(["--help"]) is None
    assert requested_command(["--store"]) is None  # the full parser says what is missing

