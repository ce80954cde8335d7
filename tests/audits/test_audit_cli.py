"""`hashlens audit` and `hashlens history` through main(argv): output, files, exit codes."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from html.parser import HTMLParser

import pytest

from app.cli import main
from app.cli.audit_commands import EXIT_FINDINGS, add_commands, parse_when
from app.domain import HashlensError
from app.services import actions
from app.store import Store


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fail_on, code", [("error", EXIT_FINDINGS), ("warning", EXIT_FINDINGS),
                                           ("info", EXIT_FINDINGS), ("never", 0)])
def test_exit_status_follows_fail_on(capsys, planted_url, fail_on, code):
    got, out, err = run(capsys, "--store", planted_url, "audit", "--fail-on", fail_on)
    assert got == code
    assert "FINDINGS" in out and "image-undecodable" in out
    assert ("found" in err) == (code != 0)


def test_clean_database_passes_at_every_level(capsys, sqlite_url, image_bytes):
    with Store.open(sqlite_url) as store:
        actions.create_database(store, "clean")
        for seed in (1, 50, 200):
            actions.train_image(store, "clean", data=image_bytes(seed, (96, 96)), identifier=f"img{seed}",
                                label=f"Image {seed}")
    code, out, _ = run(capsys, "--store", sqlite_url, "audit", "clean", "--fail-on", "info")
    assert code == 0, out
    assert "Findings: 0 errors, 0 warnings, 0 notes." in out


def test_json_report_is_complete(capsys, planted_url):
    code, out, _ = run(capsys, "--store", planted_url, "audit", "photos", "--format", "json", "--fail-on", "never")
    assert code == 0
    doc = json.loads(out)
    assert doc["scope"] == "photos" and doc["options"]["near"] == 8
    assert doc["counts"] == {"info": 9, "warning": 9, "error": 2}
    kinds = {f["kind"]: f for f in doc["findings"]}
    assert kinds["phash-mismatch"]["level"] == "error"
    near = [g for g in doc["databases"][0]["groups"] if g["kind"] == "near"]
    assert near[0]["members"][0]["phash"] == "bb8320376c0f3637" or len(near[0]["members"][0]["phash"]) == 16
    assert kinds["no-image-data"]["query"]["filters"][0]["op"] == "has_image_data"


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.urls, self.images = [], [], 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)
        if tag == "img":
            self.images += 1


def test_html_report_is_one_self_contained_file(capsys, planted_url, tmp_path):
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "report.html"
    target.write_text("an earlier report")
    code, out, _ = run(capsys, "--store", planted_url, "audit", "--format", "html", "--output", str(target),
                       "--fail-on", "never")
    assert code == 0 and "report written to" in out
    html = target.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(html)
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    assert all(u.startswith("data:image/png;base64,") for u in parser.urls)
    assert parser.images >= 8  # thumbnails of the groups' members
    assert "<svg" in html and "Hashlens 0." in html and planted_url.removeprefix("sqlite:///") in html
    assert "8 of 64 bits" in html
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["report.html"]  # no temporary file left


def test_html_escapes_hostile_names(capsys, sqlite_url, image_bytes):
    evil = '<script>alert("x")</script>'
    with Store.open(sqlite_url) as store:
        actions.create_database(store, "db")
        actions.train_image(store, "db", data=image_bytes(3), identifier=evil, label=evil)
        actions.train_image(store, "db", data=image_bytes(3), identifier="copy", label="copy")
    code, out, _ = run(capsys, "--store", sqlite_url, "audit", "--format", "html", "--fail-on", "never")
    assert code == 0
    assert "<script>" not in out and "&lt;script&gt;" in out


def test_unwritable_output_is_a_clear_error(capsys, planted_url, tmp_path):
    code, _, err = run(capsys, "--store", planted_url, "audit", "--output", str(tmp_path / "missing" / "r.txt"))
    assert code == 1
    assert "Cannot write the report" in err and "Traceback" not in err


def test_audit_never_creates_a_store(capsys, tmp_path):
    missing = tmp_path / "typo.db"
    code, _, err = run(capsys, "--store", "sqlite:///" + str(missing), "audit")
    assert code == 1 and "does not exist" in err
    assert not missing.exists()


def test_bad_radius_is_a_usage_error(capsys, planted_url):
    code, _, err = run(capsys, "--store", planted_url, "audit", "--near", "65")
    assert code == 2 and "0 to 32" in err


def test_history_text_json_and_filters(capsys, planted_url):
    code, out, _ = run(capsys, "--store", planted_url, "history", "--database", "archive")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3 and "CreateImageHashDatabase" in lines[0] and "'retina'" in lines[2]
    code, out, _ = run(capsys, "--store", planted_url, "history", "--format", "json", "--limit", "2")
    items = json.loads(out)
    assert [i["identifier"] for i in items] == ["chelsea-archive", "retina"]
    assert items[0]["at"].endswith("Z") and items[0]["params"]["imagelabel"] == "Cat"
    code, out, err = run(capsys, "--store", planted_url, "history", "--until", "2001-01-01")
    assert code == 0 and out == "" and "No changes" in err


def test_history_with_a_bad_date_is_a_clear_error(capsys, planted_url):
    code, _, err = run(capsys, "--store", planted_url, "history", "--since", "last tuesday")
    assert code == 2 and "--since" in err and "is not a date" in err and "2024-05-01" in err


def test_parse_when():
    now = datetime(2024, 5, 10, 12, 0, tzinfo=timezone.utc)
    assert parse_when("2024-05-01T00:00Z") == int(datetime(2024, 5, 1, tzinfo=timezone.utc).timestamp() * 1000)
    assert parse_when("7d", now=now) == int(datetime(2024, 5, 3, 12, 0, tzinfo=timezone.utc).timestamp() * 1000)
    assert parse_when("2024-05-01", end=True) - parse_when("2024-05-01") == 86_400_000
    assert parse_when("2024-05-01T10:00+02:00") == parse_when("2024-05-01T08:00Z")
    with pytest.raises(HashlensError):
        parse_when("soon")


def test_add_commands_on_a_plain_parser():
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["audit", "db", "--near", "4", "--format", "json"])
    assert args.database == "db" and args.near == 4 and args.read_only is True
    args = parser.parse_args(["history", "--since", "7d"])
    assert args.handler.__name__ == "cmd_history"


def test_command_line_loads_no_qt():
    code = ("import sys; import app.cli.audit_commands, app.audits.audit, app.audits.html_report; "
            "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
