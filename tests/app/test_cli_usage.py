"""The command line's first hour: usage mistakes exit 2 naming the flag typed, errors stay
alone on stderr, counts read in the right number, and training says what it skipped."""

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.cli import EXIT_PARTIAL, main
from app.domain import counted
from tests.app.test_cli import run  # noqa: F401 - the fixture: main(argv) on a fresh SQLite store


@pytest.fixture
def filled(run):
    assert run("sample", "D", "--count", "30", "--images", "5")[0] == 0
    return run


@pytest.mark.parametrize("argv, flag", [
    (["list", "D", "--near", "zzzz"], "--near"),
    (["list", "D", "--near", "00ff:65"], "--near"),
    (["list", "D", "--near", "00ff:x"], "--near"),
    (["list", "D", "--meta", "novalue"], "--meta"),
    (["export", "D", "--near", "zzzz", "-o", "x.csv"], "--near"),
    (["history", "--since", "yesterday"], "--since"),
    (["history", "--until", "next week"], "--until"),
    (["audit", "D", "--since", "yesterday"], "--since"),
    (["train", "D", "x.png", "--meta", "novalue"], "--meta"),
    (["list", "D", "--sort", "distance"], "--sort"),
    (["export", "D", "--sort", "distance", "-o", "x.csv"], "--sort"),
])
def test_a_bad_option_value_is_a_usage_error_naming_the_flag(filled, argv, flag):
    code, out, err = filled(*argv)
    assert code == 2, err
    assert flag in err and "Traceback" not in err and out == ""
    # The internal parameter names must not leak to a person.
    assert "'phash'" not in err and "Parameter 'since'" not in err


def test_near_results_sort_nearest_first(filled):
    code, out, _ = filled("list", "D", "--format", "json")
    import json

    first = json.loads(out)[7]["phash"]
    code, out, err = filled("list", "D", "--near", f"{first}:64", "--sort", "distance", "--format", "json")
    assert code == 0, err
    hashes = [int(e["phash"], 16) for e in json.loads(out)]
    distances = [(h ^ int(first, 16)).bit_count() for h in hashes]
    assert distances[0] == 0 and distances == sorted(distances) and len(hashes) == 30


def test_identifier_with_a_folder_is_a_usage_error(filled, tmp_path):
    code, _, err = filled("train", "D", str(tmp_path), "--label", "x")
    assert code == 2 and "--label" in err


@pytest.mark.parametrize("fmt", ["table", "xml", "json"])
def test_an_unknown_database_prints_only_the_error(filled, fmt):
    code, out, err = filled("list", "WrongName", "--format", fmt)
    assert (code, out) == (1, "")
    assert err.strip() == "hashlens: 'database=WrongName' does not exist"


def test_audit_takes_o_like_export(filled, tmp_path):
    target = tmp_path / "report.json"
    code, out, _ = filled("audit", "D", "--format", "json", "-o", str(target), "--fail-on", "never")
    assert code == 0 and target.is_file() and str(target) in out


def test_aci_names_the_action_when_a_parameter_is_repeated(filled):
    code, out, _ = filled("aci", "action=ListImageHashes&database=D&database=E")
    root = ET.fromstring(out)
    assert code == 1
    assert root.findtext("action") == "LISTIMAGEHASHES"
    assert root.findtext("responsedata/error/errorid") == "HASHLENSLISTIMAGEHASHES2"
    assert "twice" in root.findtext("responsedata/error/errordescription")


def test_aci_still_says_unknown_for_an_unknown_action(filled):
    code, out, _ = filled("aci", "action=Nope&x=1&x=2")
    assert code == 1 and ET.fromstring(out).findtext("action") == "UNKNOWN"


def test_verify_errors_carry_the_prefix(filled, tmp_path):
    code, out, err = filled("verify", str(tmp_path / "missing.manifest.json"))
    assert code == 1 and out == "" and err.startswith("hashlens: ")


def test_counts_read_in_the_right_number(run, tmp_path, image_bytes):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "a.png").write_bytes(image_bytes(1))
    run("db", "create", "E")
    code, out, _ = run("train", "E", str(folder))
    assert code == 0 and "Added 1 image hash to 'E'" in out
    code, out, _ = run("export", "E", "-o", str(tmp_path / "e.csv"))
    assert code == 0 and "Exported 1 entry to" in out
    code, out, _ = run("db", "remove", "E")
    assert "its 1 image hash." in out


@given(st.integers(min_value=0, max_value=10**9))
def test_counted_says_one_only_for_one(n):
    text = counted(n, "note")
    assert text.endswith(" note" if n == 1 else " notes")
    assert text.split()[0].replace(",", "") == str(n)


def test_training_a_folder_reports_skipped_files_and_partial_success(run, tmp_path, image_bytes):
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    for i in range(3):
        (folder / f"ok{i}.png").write_bytes(image_bytes(i))
    (folder / "sub" / "broken.png").write_bytes(b"not a png")
    (folder / "readme.txt").write_text("words")
    (folder / "sub" / "page.html").write_text("<p>")
    run("db", "create", "F")
    code, out, err = run("train", "F", str(folder))
    assert code == EXIT_PARTIAL
    assert "Added 3 image hashes" in out and "refused 1" in out and "skipped 2 non-image files" in out
    assert "readme.txt: not an image file name" in err and "page.html: not an image file name" in err
    assert "broken.png" in err
    # The path is said once per line, not repeated in the reason.
    assert [line.count("broken.png") for line in err.splitlines() if "broken.png" in line] == [1]


def test_training_exit_status_when_nothing_or_everything_is_added(run, tmp_path, image_bytes):
    run("db", "create", "G")
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("a")
    code, _, err = run("train", "G", str(texts))
    assert code == 1 and "a.txt" in err and "no image files were found" in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"\xff\xd8 nope")
    assert run("train", "G", str(bad))[0] == 1
    good = tmp_path / "good"
    good.mkdir()
    (good / "y.png").write_bytes(image_bytes(7))
    (good / "index.csv").write_text("a,b\n")
    code, out, _ = run("train", "G", str(good))
    assert code == 0 and "skipped 1 non-image file" in out


def test_train_help_documents_the_exit_statuses(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"{EXIT_PARTIAL} when some were added and some refused" in text
