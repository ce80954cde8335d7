"""The fuzz harness (issue 10): random ACI requests and mutated import files, and the one
check each must pass. Used by the bounded hypothesis tests, by the soak campaign and by
the replay of every input that ever failed (tests/corpus/fuzz/).

The rule: only a HashlensError (an ERROR response, an ImportRefused) may come out, never
another exception; a refused request or import leaves the store digest unchanged; an
answer is well-formed XML."""

from __future__ import annotations

import hashlib
import os
import random
import traceback
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from app.aci.actions import handle
from app.domain import HashlensError, ListingQuery
from app.exports.database_file import export_database, import_database
from app.exports.export import export_listing
from app.exports.formats import ExportOptions
from app.exports.importer import ImportOptions, import_file
from app.mediaserver_codec.names import ACI_ACTIONS
from app.services import actions
from app.store import Store
from tests.conftest import make_image
from tests.exports.conftest import AWKWARD, add_plain, store_digest

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "fuzz"

PARAMS = ("database", "identifier", "start", "maxresults", "imagestatus", "metadata", "imagepath", "imagedata",
          "imagelabel", "newimagelabel", "key", "value", "newvalue", "newidentifier", "newdatabase", "dbpath",
          "includeimagedata", "includemetadata", "a", "action", "ACTION", "Start", "x")

VALUES = (
    "", " ", "0", "1", "2", "-1", "+1", " 7 ", "²", "٣", "١٠", "𝟗", "1_000", "1e3", "0x10", "9" * 25, "9" * 5000,
    "9223372036854775807", "9223372036854775808", "18446744073709551616", "true", "TRUE", "yes", "maybe",
    "%00", "%ZZ", "%ED%A0%80", "%FF", "%C2%B2", "%E2%80%AE", "\ud800", "\udcff", "a\x00b", "\x01", "\t", "\r\n",
    "a,b", '"a,b"', '"unclosed', '"a\\"b",c', "k:v", "a:b,c:d", '"k:1":"v,2"', "\\", "x" * 300, "é" * 128,
    "🙂" * 63, "🙂" * 64, "=cmd|' /C calc'!A0", "<x>&amp;</x>", "]]>", "../../etc/passwd",
    "db", "other", "D", "e1", "e2", "plain", "img.png", "iVBORw0KGgo=", "!!!notbase64",
)


@dataclass
class Tally:
    """What a campaign saw: runs, refusals, and every failure with its input saved."""

    runs: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)


def save_failure(kind: str, data: bytes, suffix: str) -> Path:
    CORPUS.joinpath(kind).mkdir(parents=True, exist_ok=True)
    path = CORPUS / kind / f"{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    path.write_bytes(data)
    return path


# -- ACI -------------------------------------------------------------------------------------------


class AciBench:
    """A small store and a folder of files for requests to act on. Requests run with this
    folder as the working directory, so a relative dbpath lands inside it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.store = None
        self.generation = 0
        self.reset()
        (folder / "img.png").write_bytes(make_image(3))
        (folder / "notes.txt").write_text("not an image")
        if not (folder / "fifo").exists():
            os.mkfifo(folder / "fifo")

    def reset(self) -> None:
        """A new store file: the journal of a long campaign would make every digest slower."""
        if self.store is not None:
            self.store.close()
            for suffix in ("", "-wal", "-shm"):
                (self.folder / f"aci-{self.generation}.db{suffix}").unlink(missing_ok=True)
        self.generation += 1
        self.store = Store.open(f"sqlite:///{self.folder / f'aci-{self.generation}.db'}")
        add_plain(self.store, "db", [(f"e{i}", f"label {i}", i * 977, [("k", f"v{i}")], i) for i in range(1, 6)])
        actions.create_database(self.store, "other")

    def values(self) -> tuple[str, ...]:
        f = self.folder
        return VALUES + (str(f / "img.png"), str(f / "notes.txt"), str(f / "fifo"), str(f / "missing.png"),
                         str(f / "out.hldb"), "rel.hldb", str(f / "sub" / "x.hldb"), str(f))

    def close(self) -> None:
        self.store.close()


def random_request(rng: random.Random, values: tuple[str, ...]) -> str:
    """A request from the pools: a known or odd action, parameters named and spelt in
    odd ways, values raw or percent-encoded, sometimes repeated or without '='."""
    action = rng.choice(ACI_ACTIONS + ("", "Nope", "listimagehashes", "LISTIMAGEHASHES"))
    parts = [f"action={action}"] if rng.random() < 0.95 else []
    for _ in range(rng.randint(0, 6)):
        name = rng.choice(PARAMS)
        value = rng.choice(values)
        if rng.random() < 0.3:
            value = quote(value, safe="", errors="surrogatepass")
        elif rng.random() < 0.1:
            value = value + rng.choice(values)
        parts.append(name if rng.random() < 0.05 else f"{name}={value}")
    rng.shuffle(parts)
    return rng.choice(["&", "&&", "&"]).join(parts)


def check_aci(store, request: str) -> str | None:
    """None when the request was answered by the rules; else what went wrong."""
    before = store_digest(store)
    try:
        answer = handle(store, request)
        text = answer.text()
        ET.fromstring(text)
    except HashlensError:
        return None  # a failure after the first batch only ends the stream (documented)
    except Exception:
        return traceback.format_exc(limit=6)
    if not answer.ok and store_digest(store) != before:
        return "an ERROR answer, yet the store changed"
    if store.db.in_transaction():
        return "a transaction was left open"
    return None


def aci_campaign(bench: AciBench, runs: int, *, seed: int = 0, save: bool = True) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    values = bench.values()
    cwd = os.getcwd()
    os.chdir(bench.folder)
    try:
        for i in range(runs):
            if i % 500 == 499:
                bench.reset()
            request = random_request(rng, values)
            problem = check_aci(bench.store, request)
            tally.runs += 1
            if problem:
                data = request.encode("utf-8", "surrogatepass")
                where = save_failure("aci", data, ".txt") if save else None
                tally.failures.append(f"{request[:200]!r} ({where}): {problem}")
    finally:
        os.chdir(cwd)
    return tally


# -- imports -----------------------------------------------------------------------------------------

# Each import target: the file suffix (how the importer detects it) and how to import.
IMPORT_TARGETS = ("xml", "csv", "raw.csv", "tsv", "json", "doc.json", "ndjson", "hldb")
TOKENS = (b'"', b",", b"\n", b"\r\n", b"\t", b"<", b">", b"/", b"&#1;", b"&amp;", b"\xc2\xb2", b"\xd9\xa3",
          b"9" * 30, b"{", b"}", b"[", b"]", b":", b"\\u0000", b"\\ud800", b"<!--", b"-->", b"<?x ", b"?>",
          b'<!DOCTYPE x [<!ENTITY a "b">]>', b"&a;", b"\x00", b"\xff", b"\xed\xa0\x80", b"'", b"=", b"null",
          b"true", b"1e999", b"-1", b"NaN", b"18446744073709551616", b"<entry>", b"</entry>", b'"width":')


def make_seeds(store, folder: Path) -> dict[str, bytes]:
    """Valid files of every import target, exported from a store with awkward text."""
    if not store.database_exists("Seed"):
        actions.create_database(store, "Seed")
        for i, ident in enumerate(AWKWARD[:8]):
            meta = [("k", AWKWARD[(i + 3) % len(AWKWARD)]), ("=key", "-v")] if i % 2 else []
            if i % 3 == 0:
                actions.train_image(store, "Seed", data=make_image(i, size=(16, 12)), identifier=ident,
                                    label=f"label {i}", metadata=meta)
            else:
                add_plain(store, "Seed", [(ident, f"=lbl {i}", i * 7919, meta, 1_700_000_000_000 + i)])
    query = ListingQuery("Seed", imagestatus=True, metadata=True)
    seeds = {}
    for target in IMPORT_TARGETS:
        path = folder / f"seed.{target}"
        if target == "hldb":
            export_database(store, "Seed", path)
        elif target == "doc.json":
            import json

            entries = [json.loads(line.rstrip(",\n")) for line in (folder / "seed.json").read_text("utf-8")
                       .splitlines()[1:-1]]
            path.write_text(json.dumps({"entries": entries, "format": "hashlens-listing"}, indent=1,
                                       ensure_ascii=False), encoding="utf-8")
        else:
            fmt = target.split(".")[-1]
            export_listing(store, query, path, ExportOptions(fmt, spreadsheet_safe=target != "raw.csv",
                                                             manifest=False))
        seeds[target] = path.read_bytes()
    return seeds


def mutate(rng: random.Random, data: bytes, edits: int | None = None) -> bytes:
    out = bytearray(data)
    for _ in range(edits or rng.randint(1, 6)):
        how = rng.randrange(7)
        i = rng.randrange(len(out) + 1) if out else 0
        if how == 0 and out:
            out[min(i, len(out) - 1)] = rng.randrange(256)
        elif how == 1:
            out[i:i] = bytes([rng.randrange(256)])
        elif how == 2:
            del out[i:i + rng.randint(1, 16)]
        elif how == 3:
            out[i:i] = rng.choice(TOKENS)
        elif how == 4 and out:
            j = rng.randrange(len(out))
            out[i:i] = out[j:j + rng.randint(1, 200)]
        elif how == 5:
            del out[i:]
        else:
            out[i:i] = rng.choice(TOKENS) * rng.randint(2, 50)
    return bytes(out)


def check_import(store, path: Path, target: str) -> str | None:
    """Import one file; None when it imported or was refused cleanly, else the problem."""
    before = store_digest(store)
    name = f"F{uuid.uuid4().hex[:8]}"
    try:
        if target == "hldb":
            import_database(store, path, name)
        else:
            dialect = "raw" if target == "raw.csv" else "auto"
            import_file(store, path, name, ImportOptions(csv_dialect=dialect,
                                                         on_duplicate="skip"))
    except HashlensError as exc:
        if "Traceback" in exc.description:
            return "a traceback in the message"
        if store_digest(store) != before:
            return f"refused ({exc.description[:200]}) yet the store changed: a partial import"
        if store.db.in_transaction():
            return "a transaction was left open"
        return None
    except Exception:
        return traceback.format_exc(limit=6)
    return None


def import_campaign(folder: Path, target: str, runs: int, *, seed: int = 0, save: bool = True) -> Tally:
    """`runs` mutated files of one import target against a small store (rebuilt now and
    then, so the digest stays cheap)."""
    rng = random.Random(seed)
    tally = Tally()
    store = None
    try:
        for i in range(runs):
            if i % 400 == 0:
                if store is not None:
                    store.close()
                url = f"sqlite:///{folder / f'fuzz-{i}.db'}"
                store = Store.open(url)
                seeds = make_seeds(store, folder)
            data = mutate(rng, seeds[target])
            path = folder / f"case.{target}"
            path.write_bytes(data)
            problem = check_import(store, path, target)
            tally.runs += 1
            if problem:
                where = save_failure("import", data, f".{target}") if save else None
                tally.failures.append(f"{target} ({where}): {problem}")
    finally:
        if store is not None:
            store.close()
    return tally
