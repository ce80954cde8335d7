"""One project address everywhere: pyproject.toml's URLs, the AppStream metainfo (homepage,
bug tracker, screenshots that exist in docs/screenshots/) and the .deb's Homepage."""

import re
import tomllib
import xml.etree.ElementTree as ET

from tests.packaging.conftest import ROOT

ID = "io.github.hashlens.Hashlens"


def test_metainfo_deb_and_pyproject_name_the_same_project():
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    home = urls["Homepage"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", home) and "example" not in home
    meta = ET.parse(ROOT / "packaging" / f"{ID}.metainfo.xml").getroot()
    found = {u.get("type"): u.text for u in meta.findall("url")}
    assert found["homepage"] == home and found["bugtracker"] == urls["Issues"]
    assert f"Homepage: {home}\n" in (ROOT / "packaging" / "build-linux.sh").read_text()
    # Screenshots point at files of this repository's main branch that exist.
    owner_repo = home.removeprefix("https://github.com/")
    images = [i.text for i in meta.iter("image")]
    assert images
    for image in images:
        prefix = f"https://raw.githubusercontent.com/{owner_repo}/main/"
        assert image.startswith(prefix), image
        assert (ROOT / image.removeprefix(prefix)).is_file(), image
