"""The README's `hashlens serve` examples run as written against a running server: its
Python blocks, and its curl lines (where curl is installed), with only the address, the
token file's path and the placeholder token replaced."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.serve.settings import load_or_create_token
from app.services import actions
from app.store import Store
from tests.serve.client import start

ROOT = Path(__file__).resolve().parents[2]
SECTION = "### Serving the ACI over HTTP"


def _section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    begin = readme.index(SECTION)
    end = readme.find("\n## ", begin)
    return readme[begin:end]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", _section(), flags=re.M | re.S)


@pytest.fixture
def example_server(sqlite_url, tmp_path, image_bytes):
    store = Store.open(sqlite_url)
    for name in ("ImageHashes", "Image Hashes"):
        actions.create_database(store, name)
        actions.train_image(store, name, data=image_bytes(1), identifier="dog1", label="a dog", metadata=[])
    store.close()
    (tmp_path / "cat.jpg").write_bytes(image_bytes(2, fmt="JPEG"))
    servers = []

    def serve(**settings):
        server = start(sqlite_url, tmp_path, **settings)
        servers.append(server)
        return server

    yield serve, tmp_path
    for server in servers:
        server.stop()


def _localised(text: str, url: str, token_file: Path) -> str:
    return text.replace("http://localhost:14000/", url).replace("~/.config/hashlens/serve.token", str(token_file))


def test_the_python_examples_run(example_server, capsys):
    serve, tmp_path = example_server
    token_file = tmp_path / "serve.token"
    plain, guarded = serve(), serve(token=load_or_create_token(token_file))
    blocks = _blocks("python")
    assert len(blocks) == 2
    exec(compile(_localised(blocks[0], plain.url, token_file), "README (python 1)", "exec"), {})
    assert capsys.readouterr().out.split() == ["dog1", "a", "dog"]
    namespace: dict = {}
    exec(compile(_localised(blocks[1], guarded.url, token_file), "README (python 2)", "exec"), namespace)
    assert namespace["root"].findtext("response") == "SUCCESS"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_examples_run(example_server):
    serve, tmp_path = example_server
    token_file = tmp_path / "serve.token"
    plain, guarded = serve(), serve(token=load_or_create_token(token_file))
    lines = [line[2:] for block in _blocks("console") for line in block.splitlines()
             if line.startswith("$ curl")]
    assert len(lines) >= 5
    token = None
    for line in lines:
        server = guarded if "X-Hashlens-Token" in line else plain
        command = _localised(line, server.url, token_file)
        if "Token=MTI3…" in command:  # the README shortens the token it got: use the real one
            assert token is not None
            command = command.replace("MTI3…", token)
        out = subprocess.run(["sh", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (command, out.stderr)
        if "responseformat=json" in command:
            assert '"response":{"$":"SUCCESS"}' in out.stdout, out.stdout
            continue
        root = ET.fromstring(out.stdout)
        assert root.findtext("response") == "SUCCESS", (command, out.stdout)
        token = root.findtext("responsedata/token") or token
