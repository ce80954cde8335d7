"""Issue 10 item 5: every token and line of an import file is capped before it is
buffered, so a file made of one huge token is refused with a message naming the limit,
in bounded memory (peak RSS measured in a child process), whatever the file's size."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.domain import ListingQuery
from app.exports import readers
from app.exports.importer import ImportOptions, import_file
from app.store import Store

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("bounded_child.py")
CI_BYTES = 48 * 1024**2
# Peak RSS growth allowed for any file: well under the CI file, and the same bound for
# the 400 MB soak files, which is the point.
MAX_GROWTH_KB = 40 * 1024

# name: (head, the byte repeated, tail, a fragment of the refusal)
CASES = {
    "attribute.xml": (b'<autnresponse x="', b"a", b'"/>', "longer than 65,536 bytes"),
    "comment.xml": (b"<autnresponse><!--", b"a", b"--></autnresponse>", "longer than 65,536 bytes"),
    "pi.xml": (b"<autnresponse><?p ", b"a", b"?></autnresponse>", "longer than 65,536 bytes"),
    "tagname.xml": (b"<autnresponse><", b"a", b"/></autnresponse>", "longer than 65,536 bytes"),
    # Sniffed as a JSON document (its first line is not a whole object): capped as one entry.
    "line.ndjson": (b'{"identifier":"', b"a", b'"}\n', "the limit on one entry"),
    "line2.ndjson": (b'{"identifier":"a","phash":"01"}\n{"identifier":"', b"a", b'"}\n', "the limit on one line"),
    "line.csv": (b"identifier,phash\r\n", b"a", b",01\r\n", "the limit on one line"),
    "record.csv": (b'identifier,phash\r\n"', b"a" * 999 + b"\n", b'",01\r\n', "field larger than field limit"),
    "entry.json": (b'[{"identifier":"', b"a", b'"}]', "the limit on one entry"),
    "value.json": (b'{"entries":[],"x":"', b"a", b'"}', "the limit on one entry"),
    # White space is skipped as it is read, never buffered: an empty listing, accepted.
    "spaces.json": (b"[", b" ", b"]", None),
}


def _write(path: Path, head: bytes, unit: bytes, tail: bytes, size: int) -> None:
    block = unit * max(1, (1 << 20) // len(unit))
    with open(path, "wb") as f:
        f.write(head)
        written = 0
        while written < size:
            f.write(block)
            written += len(block)
        f.write(tail)


def run_case(tmp_path: Path, url: str, name: str, size: int) -> dict:
    head, unit, tail, _ = CASES[name]
    path = tmp_path / name
    _write(path, head, unit, tail, size)
    try:
        proc = subprocess.run([sys.executable, str(CHILD), url, str(path)], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=600)
    finally:
        path.unlink()
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_huge_token_is_refused_in_bounded_memory(tmp_path, sqlite_url, name):
    Store.open(sqlite_url).close()
    result = run_case(tmp_path, sqlite_url, name, CI_BYTES)
    fragment = CASES[name][3]
    assert result["refused"] is (fragment is not None), result
    assert (fragment or "") in result["message"], result["message"]
    assert result["growth_kb"] < MAX_GROWTH_KB, result


@pytest.mark.soak
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_400_mb_token_is_refused_in_the_same_bound(tmp_path, sqlite_url, name):
    Store.open(sqlite_url).close()
    began = time.monotonic()
    result = run_case(tmp_path, sqlite_url, name, 400 * 1024**2)
    print(f"\nBIG {name}: 400 MB file, refused={result['refused']}, peak RSS growth "
          f"{result['growth_kb'] / 1024:.1f} MB, {time.monotonic() - began:.1f} s including writing the file")
    fragment = CASES[name][3]
    assert result["refused"] is (fragment is not None) and (fragment or "") in result["message"], result
    assert result["growth_kb"] < MAX_GROWTH_KB, result


def test_a_streamed_json_document_reads_across_chunks(sqlite_store, tmp_path):
    """Pretty-printed entries spread over many read chunks import exactly."""
    entries = [{"identifier": f"id {i} " + "é" * (i % 7), "phash": f"{i:016x}", "label": "x" * (1 + i % 200),
                "metadata": {"k": "v" * (i % 50), "n": str(i)}} for i in range(3000)]
    doc = {"format": "hashlens-listing", "entries": entries, "note": "after the entries"}
    path = tmp_path / "pretty.json"
    path.write_text(json.dumps(doc, indent=3, ensure_ascii=False), encoding="utf-8")
    assert path.stat().st_size > 4 * readers._READ_CHUNK
    import_file(sqlite_store, path, "P", ImportOptions())
    rows = sqlite_store.list_page(ListingQuery("P", imagestatus=True, metadata=True)).rows
    assert [r.identifier for r in rows] == [e["identifier"] for e in entries]
    assert [dict(r.metadata) for r in rows] == [e["metadata"] for e in entries]


@pytest.mark.parametrize("text, fragment", [
    ('[{"identifier":"a","phash":"01"}', "ends too early"),
    ('[{"identifier":"a","phash":"01"}] x', "text after the end"),
    ('{"entries":[],"entries":[]}', "appears twice"),
    ('{"format":"other","entries":[]}', "not a Hashlens listing"),
    ('{"format":"hashlens-listing","x":1}', "no 'entries' list"),
    ('[{"identifier":"a","phash":"01"},]', "invalid JSON"),
    ('[' * 100_000, "nested too deeply"),
    ('[{"identifier":"a","phash":"01","width":1e400}]', "whole number"),
])
def test_malformed_streamed_documents_are_refused(sqlite_store, tmp_path, text, fragment):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(readers.ImportRefused) as caught:
        import_file(sqlite_store, path, "B", ImportOptions())
    assert fragment in str(caught.value)
