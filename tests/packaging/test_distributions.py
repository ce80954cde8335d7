"""The wheel and the sdist: twine accepts them, they carry what they must and nothing else,
and the wheel installs into a clean virtual environment (pip, and pipx when present) and runs."""

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.packaging.conftest import ROOT

pytestmark = pytest.mark.slow


def run(argv, **kw):
    kw.setdefault("timeout", 900)
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)
    assert result.returncode == 0, f"{argv}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    pytest.importorskip("build", reason="the test extra installs 'build': pip install -e .[test]")
    out = tmp_path_factory.mktemp("dist")
    # Build from a copy, so the checkout gets no build/ or egg-info of ours.
    source = tmp_path_factory.mktemp("src") / "hashlens"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info"))
    (source / "stray.db").write_bytes(b"a store that must stay out of the sdist")
    run([sys.executable, "-m", "build", "--outdir", out, source])
    wheel = next(out.glob("hashlens-*.whl"))
    sdist = next(out.glob("hashlens-*.tar.gz"))
    return wheel, sdist


def test_twine_accepts_both(dists):
    pytest.importorskip("twine", reason="the test extra installs 'twine'")
    result = run([sys.executable, "-m", "twine", "check", "--strict", *dists])
    assert result.stdout.count("PASSED") == 2


def test_the_wheel_carries_the_icons(dists):
    names = set(zipfile.ZipFile(dists[0]).namelist())
    icons = {Path(n).name for n in names if n.startswith("resources/icons/")}
    expected = {p.name for p in (ROOT / "resources" / "icons").glob("*.svg")}
    assert icons == expected and expected
    assert {"resources/hashlens.svg", "resources/hashlens.png", "ui/main.py", "app/cli/__init__.py"} <= names


def test_the_sdist_carries_no_junk(dists):
    names = tarfile.open(dists[1]).getnames()
    top = names[0].split("/")[0]
    inner = [n.removeprefix(top + "/") for n in names]
    assert "pyproject.toml" in inner and "LICENSE" in inner and "app/cli/__init__.py" in inner
    assert "packaging/io.github.hashlens.Hashlens.desktop" in inner
    junk = [n for n in inner if n.startswith((".venv", "build/", "dist/", ".git", "tests/", ".hypothesis"))
            or n.endswith((".db", ".pyc", ".sqlite")) or "__pycache__" in n]
    assert junk == []


def check_installed(bin_dir: Path, env: dict, tmp_path: Path) -> None:
    """--version, an aci request on a temporary store, and the window offscreen."""
    store = tmp_path / "installed.db"
    out = run([bin_dir / "hashlens", "--version"], env=env).stdout
    assert out.startswith("hashlens ")
    out = run([bin_dir / "hashlens", "--store", store, "aci", "action=CreateImageHashDatabase&database=Shop"],
              env=env).stdout
    assert "<response>SUCCESS</response>" in out
    out = run([bin_dir / "hashlens", "--store", store, "db", "list"], env=env).stdout
    assert out.split() == ["Shop", "0"]
    out = run([bin_dir / "hashlens-gui", store], env=env, timeout=300).stdout
    assert f"hashlens-smoke: opened {store}" in out


def test_the_wheel_installs_with_pip_and_runs(dists, tmp_path, clean_env):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    env = {**clean_env, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)  # nothing of the checkout: only what the wheel installed
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", dists[0]], env=env)
    check_installed(venv / "bin", env, tmp_path)


@pytest.mark.skipif(shutil.which("pipx") is None, reason="pipx is not installed (apt-get install pipx)")
def test_the_wheel_installs_with_pipx_and_runs(dists, tmp_path, clean_env):
    env = {**clean_env, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin"),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    run(["pipx", "install", "--python", sys.executable, dists[0]], env=env)
    check_installed(tmp_path / "bin", env, tmp_path)
