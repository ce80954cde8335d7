"""The README's command-line tour runs as written: every command, in order, on a fresh store."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## The command line"
SHELL_BLOCKS = {"sh", "shell", "bash", "console"}


def tour_commands(readme: str) -> list[str]:
    """The commands of the tour section's fenced shell blocks: every line of a `sh` block
    (comments and blank lines aside), and the `$ ` lines of a `console` block. A block right
    after `<!-- tour: skip … -->` is an example that cannot run in order (a server that
    runs until stopped, requests to it) and is left out."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start:end if end != -1 else None]
    commands = []
    for skip, lang, body in re.findall(r"^(<!-- tour: skip.*?-->\n)?```(\w*)\n(.*?)^```", section, flags=re.M | re.S):
        if lang not in SHELL_BLOCKS or skip:
            continue
        for line in body.splitlines():
            if lang == "console":
                if line.startswith("$ "):
                    commands.append(line[2:])
            elif line.strip() and not line.lstrip().startswith("#"):
                commands.append(line)
    return commands


def test_the_tour_is_found():
    commands = tour_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    # The tour creates what it later uses: a failing extraction must not pass as "nothing to run".
    assert len(commands) > 20
    assert not any(" serve" in c or c.startswith("curl") for c in commands)
    assert any(c.startswith("hashlens db create Archive") for c in commands)
    assert commands.index(next(c for c in commands if "db create Archive" in c)) < commands.index(
        next(c for c in commands if " Archive" in c and c.startswith("hashlens move")))


@pytest.mark.slow
def test_every_tour_command_runs_in_order(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # `hashlens` as an installed console script would run it, from this checkout.
    launcher = bin_dir / "hashlens"
    launcher.write_text(
        f"#!/bin/sh\nexec '{sys.executable}' -c 'import sys; from ui.main import cli; sys.exit(cli())' \"$@\"\n"
    )
    launcher.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "HASHLENS_STORE": f"sqlite:///{tmp_path / 'tour.db'}",
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    commands = tour_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    for command in commands:
        result = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=240)
        assert result.returncode == 0, f"{command}\nexit {result.returncode}\n{result.stdout[-2000:]}{result.stderr}"
        assert "Traceback" not in result.stderr, command
    assert (work / "products.csv").is_file() and (work / "products.ndjson").is_file()
    assert (work / "audit.html").is_file()
