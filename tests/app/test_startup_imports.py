"""Plain commands import only what they use: no numpy, imaging, database drivers or Qt."""

import json
import subprocess
import sys

import pytest

# What a plain command must not load (issue 15, item 1): each costs tens to hundreds of
# milliseconds of start-up.
HEAVY = ("numpy", "scipy", "imagehash", "PIL", "psycopg", "pymysql", "PySide6", "numba")

# Runs `hashlens ARGS…` as the console script does, then reports which heavy modules the
# process loaded, whatever the command's outcome (--help ends in SystemExit).
PROBE = """
import json, sys
from ui.main import cli
try:
    code = cli(sys.argv[2:])
except SystemExit as stop:
    code = stop.code
heavy = sorted({name.split('.')[0] for name in sys.modules} & set(json.loads(sys.argv[1])))
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
