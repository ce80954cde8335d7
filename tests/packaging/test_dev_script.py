"""scripts/dev.sh installs only when pyproject.toml or the extras changed, and says what it
is doing on the first run. Python here is a stand-in that records how it was called."""

import os
import shutil
import stat
import subprocess

import pytest

from tests.packaging.conftest import ROOT

# Stands in for python3: `-m venv DIR` makes DIR/bin/python (this same recorder) and
# DIR/bin/hashlens; every call is appended to $CALLS.
RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >> "$CALLS"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  cp "$0" "$3/bin/python"
  printf '#!/bin/sh\\necho "hashlens ran: $*"\\n' > "$3/bin/hashlens"
  chmod +x "$3/bin/python" "$3/bin/hashlens"
fi
"""


@pytest.fixture
def checkout(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "dev.sh", repo / "scripts" / "dev.sh")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    python = tmp_path / "python3"
    python.write_text(RECORDER)
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return repo, python, tmp_path / "calls.log"


def dev(checkout, *args):
    repo, python, calls = checkout
    calls.write_text("")
    env = {**os.environ, "PYTHON": str(python), "CALLS": str(calls), "HASHLENS_NO_SYSTEM_PACKAGES": "1"}
    result = subprocess.run(["bash", str(repo / "scripts" / "dev.sh"), *args], cwd=repo, env=env,
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result.stdout, calls.read_text()


def test_install_happens_once_until_pyproject_changes(checkout):
    out, calls = dev(checkout, "run", "--version")
    assert "Installing Hashlens and its dependencies into .venv (first run, about a minute)..." in out
    assert "pip install -q -e ." in calls and "hashlens ran: --version" in out

    out, calls = dev(checkout, "run", "--version")
    assert "pip" not in calls and "Installing" not in out and "hashlens ran: --version" in out

    repo = checkout[0]
    with (repo / "pyproject.toml").open("a") as f:
        f.write("\n# a changed dependency\n")
    out, calls = dev(checkout, "run", "--version")
    assert "pyproject.toml or the extras changed" in out and "pip install -q -e ." in calls
    out, calls = dev(checkout, "run")
    assert "pip" not in calls


def test_the_test_extras_install_once_and_also_serve_run(checkout):
    dev(checkout, "run")
    # `run`'s install lacks the test extras: `test` installs them (pytest itself is the stand-in).
    _, calls = dev(checkout, "test", "--co")
    assert "pip install -q -e .[test]" in calls and "-m pytest" in calls
    _, calls = dev(checkout, "test", "--co")
    assert "pip" not in calls
    _, calls = dev(checkout, "run")
    assert "pip" not in calls

