"""Publish benchmark: publish 20,000 entries with images to the stand-in Media Server on loopback, beside the floor of the same run.

The stand-in runs in its own process (`python -m tests.standin --writable …`), serving two
empty databases that training adds to. Each measurement runs in a fresh child process:

- publish: `hashlens publish`'s engine (app.mediaserver.publish) from an SQLite store of
  20,000 entries, each with a JPEG image, a label and two metadata items: presence
  checks, the durable `sent` marks, TrainImageHash as a multipart upload, QueueInfo until
  each training ends, ListImageHashes to confirm, with 4 in flight;
- floor: the very same TrainImageHash POSTs (the same multipart bodies, built before the
  clock starts) sent by a bare `http.client` loop on 4 threads, each answer read and
  dropped: nothing checked, followed or recorded; what sending alone costs. The stand-in
  holds the floor's trainings queued meanwhile, so its training work (in its own process,
  beside its answers) does not slow the floor.

Target (issue 12): publish at least 50% of the floor's entries/s. The script exits 1 when
the target is missed (or the publish did not put every entry on the server exactly once).

    .venv/bin/python benchmarks/publish.py [--count N] [--in-flight N]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATABASE = "bench"
TARGET_SHARE = 0.5


def _images(n: int = 64) -> list[bytes]:
    """Small JPEG thumbnails, as a catalogue holds (a few KB each)."""
    from PIL import Image, ImageDraw

    rng = random.Random(7)
    out = []
    for _ in range(n):
        image = Image.new("RGB", (160, 120), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            x, y = rng.randrange(160), rng.randrange(120)
            draw.ellipse((x, y, x + rng.randrange(10, 60), y + rng.randrange(10, 60)),
                         fill=tuple(rng.randrange(256) for _ in range(3)))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


def build_store(path: Path, count: int) -> None:
    """An SQLite store whose database `bench` holds `count` entries with images (built once)."""
    from app.domain import NewEntry
    from app.store import Store
    from app.store.bulk import append_entries

    if path.exists():
        with Store.open("sqlite:///" + str(path)) as store:
            if not store.read_only:
                return
        # Built by an older version (an older schema): build it again.
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"building {path} with {count:,} entries with images (once; reused by later runs) ...", flush=True)
    images = _images()
    with Store.open("sqlite:///" + str(path)) as store:
        store.create_database(DATABASE)
        append_entries(store, DATABASE, (
            NewEntry(f"sku-{i:06d}", f"product {i}, colour {i % 17}", random.Random(i).getrandbits(63),
                     images[i % len(images)], "jpeg", 160, 120, None,
                     (("brand", f"Acme {i % 31}"), ("season", "ss26, core")))
            for i in range(count)), total=count)


def _bodies(store_path: str) -> list[tuple[bytes, str]]:
    """The multipart bodies a publish sends, made exactly as the client makes them."""
    from app.domain import ListingQuery
    from app.mediaserver.client import _multipart
    from app.mediaserver_codec import names
    from app.mediaserver_codec.lists import format_metadata
    from app.store import Store

    out = []
    with Store.open("sqlite:///" + store_path, read_only=True) as store:
        for batch in store.iter_listing(ListingQuery(DATABASE, metadata=True)):
            images = store.images_by_key([r.key for r in batch])
            for row in batch:
                boundary = "hashlens-" + secrets.token_hex(16)
                fields = {"action": names.TRAIN_IMAGE_HASH, "database": "floor", "identifier": row.identifier,
                          "imagelabel": row.label, "metadata": format_metadata(row.metadata)}
                out.append((_multipart(boundary, fields, images[row.key]),
                            f"multipart/form-data; boundary={boundary}"))
    return out


def child(mode: str, url: str, store_path: str, in_flight: int) -> None:
    if mode == "floor":
        bodies = _bodies(store_path)
        parts = urlsplit(url)
        lock = threading.Lock()
        todo = iter(bodies)

        def send() -> None:
            while True:
                with lock:
                    item = next(todo, None)
                if item is None:
                    return
                body, ctype = item
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
                connection.request("POST", "/", body=body, headers={"Content-Type": ctype,
                                                                    "Accept": "application/xml"})
                answer = connection.getresponse().read()
                connection.close()
                if b"<token>" not in answer:
                    raise SystemExit(f"the floor's TrainImageHash was not queued: {answer[:300]!r}")

        started = time.perf_counter()
        threads = [threading.Thread(target=send) for _ in range(in_flight)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - started
        print(json.dumps({"seconds": seconds, "entries": len(bodies)}))
        return
    from app.mediaserver.client import MediaServerClient
    from app.mediaserver.publish import publish
    from app.store import Store

    with Store.open("sqlite:///" + store_path) as store:
        started = time.perf_counter()
        report = publish(store, MediaServerClient(url, timeout=120), DATABASE, DATABASE, in_flight=in_flight)
        seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "entries": len(report.published), "complete": report.complete,
                      "text": report.text()}))


def _run_child(mode: str, url: str, store_path: str, in_flight: int) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", mode, url, store_path, str(in_flight)],
                            capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if result.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def _standin():
    server = subprocess.Popen([sys.executable, "-m", "tests.standin", "--writable", DATABASE, "--writable", "floor"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        yield server.stdout.readline().strip(), server
    finally:
        server.stdin.close()
        server.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--child", nargs=4, metavar=("MODE", "URL", "STORE", "IN_FLIGHT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, url, store_path, in_flight = args.child
        child(mode, url, store_path, int(in_flight))
        return 0

    source = ROOT / "benchmarks" / "data" / f"publish-{args.count}.db"
    build_store(source, args.count)
    with tempfile.TemporaryDirectory(prefix="hashlens-publish-bench-") as folder:
        # The publish writes its marks into the store: work on a copy, so every run starts alike.
        store_path = str(Path(folder) / "publish.db")
        Path(store_path).write_bytes(source.read_bytes())
        # Each measurement gets a fresh stand-in process: a server that has answered
        # 60,000 requests (all logged) is slower than a new one, whichever runs second.
        with _standin() as (url, _):
            published = _run_child("publish", url, store_path, args.in_flight)
        with _standin() as (url, server):
            # The floor's trainings stay queued: the stand-in trains in the same process as
            # it answers, and its training beside the answers would slow the floor only
            # (the publish waits for each training anyway).
            server.stdin.write("hold\n")
            server.stdin.flush()
            server.stdout.readline()
            floor = _run_child("floor", url, store_path, args.in_flight)

    floor_rate = floor["entries"] / floor["seconds"]
    rate = published["entries"] / published["seconds"]
    share = rate / floor_rate
    whole = published["complete"] and published["entries"] == args.count
    print(f"Publish benchmark: {args.count:,} entries with JPEG images and 2 metadata items, "
          f"{args.in_flight} in flight, stand-in on loopback")
    print(f"  floor (the same POSTs by a bare HTTP client): {floor_rate:,.0f} entries/s ({floor['seconds']:.1f} s)")
    print(f"  publish (checked, marked, followed, confirmed): {rate:,.0f} entries/s ({published['seconds']:.1f} s)")
    checks = [("publish / floor", f"{share:.0%}", f">= {TARGET_SHARE:.0%}", share >= TARGET_SHARE),
              ("every entry published once", "yes" if whole else "NO", "yes", whole)]
    missed = 0
    for name, value, target, ok in checks:
        print(f"  {name:<28} {value:>8}  target {target:<6} {'ok' if ok else 'MISSED'}")
        missed += not ok
    if not whole:
        print(published["text"])
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
