"""packaging/build-linux.sh: the one-folder bundle runs without the checkout's Python (--version,
an aci request, the window offscreen), leaves out what Hashlens does not use, and its .deb
installs the programs, desktop entry, icons and metainfo where a desktop finds them."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.conftest import ROOT

pytestmark = [
    pytest.mark.slow,
    # The first test builds the bundle in its fixture: minutes on a quiet machine, more under load.
    pytest.mark.timeout(1800),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux bundle builds on Linux"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed"),
]
ID = "io.github.hashlens.Hashlens"
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("PyInstaller", reason="the test extra installs PyInstaller: pip install -e .[test]")
    base = tmp_path_factory.mktemp("linux-build")
    env = {**os.environ, "PYTHON": sys.executable, "HASHLENS_DIST": str(base / "dist"),
           "HASHLENS_BUILD": str(base / "build")}
    # Validate for real where the tools are installed (scripts/dev.sh test installs them).
    if shutil.which("desktop-file-validate") and shutil.which("appstreamcli"):
        env["HASHLENS_STRICT"] = "1"
    result = subprocess.run(["bash", str(ROOT / "packaging" / "build-linux.sh")], env=env, capture_output=True,
                            text=True, timeout=1500, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(result.stdout)
    deb = next((base / "dist").glob("hashlens_*.deb"))
    return base / "dist" / "hashlens", deb, result.stdout


def bare_env(clean_env):
    """No Python of ours: no PYTHONPATH/PYTHONHOME, and a PATH without the virtualenv."""
    env = {k: v for k, v in clean_env.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"
    return env


def run(argv, env, timeout=300):
    result = subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{argv}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


def test_the_build_prints_the_sizes(built):
    output = built[2]
    assert re.search(r"Bundle: .*hashlens \(\d+(\.\d+)?M\)", output)
    assert re.search(r"Package: .*\.deb \(\d+(\.\d+)?M;", output)


def test_the_bundle_runs_without_python(built, tmp_path, clean_env):
    bundle = built[0]
    env = bare_env(clean_env)
    store = tmp_path / "bundle store.db"
    assert run([bundle / "hashlens", "--version"], env).startswith("hashlens ")
    out = run([bundle / "hashlens", "--store", store, "aci", "action=CreateImageHashDatabase&database=Shop"], env)
    assert "<response>SUCCESS</response>" in out
    out = run([bundle / "hashlens", "--store", store, "aci", "action=ListImageHashDatabases"], env)
    assert "<database>Shop</database>" in out or ">Shop<" in out
    assert f"hashlens-smoke: opened {store}" in run([bundle / "hashlens-gui", store], env)
    assert f"hashlens-smoke: opened {store}" in run([bundle / "hashlens", store], env)


def test_the_bundle_trains_a_folder_with_its_process_pool(built, tmp_path, clean_env, image_bytes):
    # More than 64 files start the process pool: each worker is the frozen program itself.
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(70):
        (folder / f"p{i:02}.png").write_bytes(image_bytes(i))
    env = bare_env(clean_env)
    store = ["--store", tmp_path / "train.db"]
    run([built[0] / "hashlens", *store, "db", "create", "P"], env)
    out = run([built[0] / "hashlens", *store, "train", "P", folder], env, timeout=600)
    assert "Added 70 image hashes" in out


def test_the_bundle_audits_with_its_compiled_near_duplicate_search(built, tmp_path, clean_env):
    # The near-duplicate search is compiled by numba at run time: LLVM must work when frozen.
    env = bare_env(clean_env)
    store = ["--store", tmp_path / "audit.db"]
    run([built[0] / "hashlens", *store, "sample", "S", "--count", "300", "--images", "20"], env)
    out = run([built[0] / "hashlens", *store, "audit", "S", "--no-images", "--fail-on", "never"], env)
    assert "Findings:" in out and "near" in out.lower()


def test_the_bundle_leaves_out_what_is_not_used(built):
    names = [str(p.relative_to(built[0])) for p in built[0].rglob("*")]
    unused = ("QtWebEngine", "Qt6Qml", "Qt6Quick", "Qt63D", "Qt6Multimedia", "/qml/", "Qt/translations/",
              "tkinter", "pytest", "hypothesis", "skimage", "/tests/")
    assert [n for n in names if any(u in n for u in unused)] == []
    assert any(n.endswith("resources/hashlens.svg") for n in names)
    assert any(n.endswith("resources/icons/train.svg") for n in names)
    assert any("libqsvg" in n for n in names)  # the SVG icons need Qt's SVG image plugin


def test_no_library_of_the_bundle_is_missing(built):
    if shutil.which("ldd") is None:
        pytest.skip("ldd is not installed")
    internal = built[0] / "_internal"
    env = {**os.environ, "LD_LIBRARY_PATH": str(internal)}
    targets = [built[0] / "hashlens", *internal.glob("PySide6/Qt/plugins/platforms/libqxcb.so"),
               *internal.glob("PySide6/Qt*.so")]
    for target in targets:
        out = subprocess.run(["ldd", str(target)], env=env, capture_output=True, text=True).stdout
        assert "not found" not in out, f"{target}:\n{out}"


def test_the_deb_installs_programs_entry_icons_and_metainfo(built, tmp_path, clean_env):
    deb = built[1]
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"\./opt/hashlens/hashlens$", listing, re.M)
    assert "./usr/bin/hashlens -> /opt/hashlens/hashlens\n" in listing
    assert "./usr/bin/hashlens-gui -> /opt/hashlens/hashlens-gui\n" in listing
    assert f"./usr/share/applications/{ID}.desktop" in listing
    assert f"./usr/share/metainfo/{ID}.metainfo.xml" in listing
    for size in ICON_SIZES:
        assert f"./usr/share/icons/hicolor/{size}x{size}/apps/{ID}.png" in listing
    assert f"./usr/share/icons/hicolor/scalable/apps/{ID}.svg" in listing
    assert "root/root" in listing and "/tests/" not in listing

    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture", "Depends"],
                            capture_output=True, text=True, check=True).stdout
    assert "Package: hashlens" in fields and "Version: " in fields

    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    entry = (root / "usr/share/applications" / f"{ID}.desktop").read_text()
    # The entry runs a command the package puts on the PATH, with the file opened.
    assert "Exec=hashlens-gui %f" in entry and f"Icon={ID}" in entry
    assert (root / "usr/bin/hashlens-gui").is_symlink()
    metainfo = (root / "usr/share/metainfo" / f"{ID}.metainfo.xml").read_text()
    assert "@VERSION@" not in metainfo and "<screenshot" in metainfo and "<caption>" in metainfo
    store = tmp_path / "from deb.db"
    run([root / "opt/hashlens/hashlens", "--store", store, "db", "create", "Shop"], bare_env(clean_env))
    out = run([root / "opt/hashlens/hashlens-gui", store], bare_env(clean_env))
    assert f"hashlens-smoke: opened {store}" in out


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate is not installed (apt-get install desktop-file-utils)")
def test_the_desktop_entry_validates():
    result = subprocess.run(["desktop-file-validate", str(ROOT / "packaging" / f"{ID}.desktop")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("appstreamcli") is None,
                    reason="appstreamcli is not installed (apt-get install appstream)")
def test_the_metainfo_validates(tmp_path):
    text = (ROOT / "packaging" / f"{ID}.metainfo.xml").read_text()
    target = tmp_path / f"{ID}.metainfo.xml"
    target.write_text(text.replace("@VERSION@", "1.0").replace("@DATE@", "2026-11-30"))
    result = subprocess.run(["appstreamcli", "validate", "--no-net", str(target)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
