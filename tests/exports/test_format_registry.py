"""The file-format registry: a format registered by one module is offered by the command
line, found by the sniffer and used by the exporter and importer, with nothing else changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from app.domain import ListingQuery
from app.exports import registry
from app.exports.importer import detect_format
from app.exports.readers import ImportedEntry, ImportRefused
from app.exports.registry import FileFormat

from .conftest import add_plain
from .test_cli_exports import run  # noqa: F401  (the command-line fixture)

MARK = "TOY-LISTING\n"


def _toy_text(batches, query, options, keys):
    # One line per entry: identifier TAB label (labels hold no tab in this test).
    yield MARK
    for batch in batches:
        yield "".join(f"{row.identifier}\t{row.label}\n" for row in batch)


def _toy_read(path, f, size, dialect):
    lines = f.read().decode("utf-8").splitlines()
    if not lines or lines[0] + "\n" != MARK:
        raise ImportRefused(path, "not a toy listing.")
    for number, line in enumerate(lines[1:], start=2):
        identifier, _, label = line.partition("\t")
        yield ImportedEntry(number, identifier, label=label, phash=0x1234)


TOY = FileFormat(
    name="toy", label="Toy listing", suffixes=(".toy",), file_filter="Toy listings (*.toy)",
    text_writer=_toy_text, reader=_toy_read,
    sniff=lambda path, head: head.startswith(MARK.encode()), sniff_order=5,
)


@pytest.fixture
def toy():
    registry.register(TOY)
    yield TOY
    registry.unregister(TOY.name)


def test_a_registered_format_is_offered_sniffed_written_and_read(toy, sqlite_store, run, tmp_path, capsys):
    add_plain(sqlite_store, "D", [("a", "first", 1, [], 1), ("b,c", "second", 2, [], 2)])
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "toy" in capsys.readouterr().out.split("--format")[1]
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    assert "toy" in capsys.readouterr().out.split("--format")[1]

    target = tmp_path / "d.toy"
    code, out, err = run("export", "D", "-o", str(target), "--imagestatus")  # format from the suffix
    assert code == 0 and "(toy," in out, err
    assert target.read_text() == MARK + "a\tfirst\nb,c\tsecond\n"
    assert detect_format(target) == "toy"
    renamed = tmp_path / "no-suffix"
    renamed.write_bytes(target.read_bytes())
    assert detect_format(renamed) == "toy"  # the sniffer, not the name
    code, out, err = run("import", str(renamed), "--database", "Copy")
    assert code == 0 and "2 added" in out, err
    listed = [r for b in sqlite_store.iter_listing(ListingQuery("Copy", imagestatus=True)) for r in b]
    assert [(r.identifier, r.label) for r in listed] == [("a", "first"), ("b,c", "second")]


def test_without_the_module_the_format_is_unknown(run, tmp_path):
    assert "toy" not in registry.export_names()
    code, _, err = run("export", "D", "-o", str(tmp_path / "d.toy"))
    assert code != 0 and "Cannot tell the format" in err


def test_the_builtin_formats_are_registered_once_each():
    names = [f.name for f in registry.formats()]
    assert len(names) == len(set(names))
    assert {"xml", "csv", "tsv", "json", "ndjson", "xlsx", "images", "database"} <= set(names)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(FileFormat(name="csv", label="another", suffixes=(".csv",), file_filter=""))
    assert registry.by_suffix(".JSONL").name == "ndjson" and registry.by_suffix(".zip").name == "images"
    assert registry.get("images").suffix == "" and registry.get("xml").suffix == ".xml"
    assert registry.sniff(Path("x.ndjson"), b"") == "ndjson" and registry.sniff(Path("x.csv"), b"") is None
