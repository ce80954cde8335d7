"""Training benchmark: CPU per image of `train_files` on all cores beside the bare `imagehash.phash` loop.

Writes N varied 640×480 JPEG photographs (scikit-image's, cropped at shifted places) to a
temporary folder, then in child processes measured in the same run:

- the floor: `imagehash.phash(Image.open(path))` over every file in one process;
- Hashlens: `actions.train_files` into a new SQLite store with a worker per core (read,
  decode with the safe loader, pHash, SHA-256), the parent storing the results a batch
  per transaction (`actions.STORE_BATCH`);
- the floor again, in a process per core at once (the same sharing of cores and caches as
  the training workers; printed beside, the target stays against the one-process loop).

CPU time is user + system of the process and its workers, from `getrusage`, so other work
on a shared machine does not inflate it the way it inflates wall-clock time. One-off
imports (Pillow, imagehash, SciPy, and the process pool's modules) are made before either is
timed: the figure is per image.

Target (issue 15, item 5): Hashlens's CPU per image at most 1.1x the bare loop's; peak
memory of a training worker under 300 MB (decoding is bounded); every stored pHash the
bare loop's for the same file. Exits 1 when one is missed.

    .venv/bin/python benchmarks/training.py [--images N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CPU_RATIO_TARGET = 1.1
WORKER_MEMORY_TARGET_MB = 300
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "horse", "camera")


def write_photos(folder: Path, count: int, seed: int) -> None:
    import numpy as np
    import skimage.data
    from PIL import Image

    photos = [Image.fromarray(getattr(skimage.data, name)()).convert("RGB") for name in PHOTOS]
    rng = np.random.default_rng(seed)
    for i in range(count):
        dx, dy = (int(v) for v in rng.integers(0, 40, 2))
        image = photos[i % len(photos)].crop((dx, dy, dx + 400, dy + 300)).resize((640, 480))
        image.save(folder / f"photo-{i:06d}.jpg", "JPEG", quality=85)


def _cpu(who) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def run_bare(folder: Path, part: int = 0, parts: int = 1) -> dict:
    import imagehash
    from PIL import Image

    files = sorted(folder.glob("*.jpg"))[part::parts]
    imagehash.phash(Image.open(files[0]))  # its first call imports SciPy: a one-off, not per image
    hashes = []
    cpu, wall = _cpu(resource.RUSAGE_SELF), time.perf_counter()
    for path in files:
        hashes.append(imagehash.phash(Image.open(path)))
    cpu, wall = _cpu(resource.RUSAGE_SELF) - cpu, time.perf_counter() - wall
    return {"images": len(files), "cpu_s": cpu, "wall_s": wall,
            "hashes": {path.stem: str(h) for path, h in zip(files, hashes)}}


def run_train(folder: Path, workers: int) -> dict:
    from app.services import actions, imaging
    from app.store import Store

    imaging.load_decoders()  # the same one-off imports the bare loop makes before it is timed
    import concurrent.futures.process  # noqa: F401  (the pool's own one-off imports)

    with tempfile.TemporaryDirectory(prefix="hashlens-train-") as tmp:
        with Store.open("sqlite:///" + str(Path(tmp) / "train.db")) as store:
            actions.create_database(store, "photos")
            parent, workers_cpu = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
            wall = time.perf_counter()
            report = actions.train_files(store, "photos", [str(folder)], workers=workers)
            wall = time.perf_counter() - wall
            parent = _cpu(resource.RUSAGE_SELF) - parent
            workers_cpu = _cpu(resource.RUSAGE_CHILDREN) - workers_cpu
            hashes = {label: f"{phash & (2**64 - 1):016x}" for label, phash in
                      store.sql.all("SELECT label, phash FROM hl_entry")}
    return {"images": len(report.added), "refused": len(report.refused), "cpu_s": parent + workers_cpu,
            "hashes": hashes,
            "parent_cpu_s": parent, "workers_cpu_s": workers_cpu, "wall_s": wall,
            "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "parent_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def _bare_on_all_cores(folder: Path, workers: int) -> dict:
    """The bare loop in `workers` processes at once, each on its share of the files: the
    same parallelism as training, so the same sharing of caches and cores."""
    runs = [subprocess.Popen([sys.executable, __file__, "--bare", str(folder), "--part", f"{i}/{workers}"],
                             stdout=subprocess.PIPE, text=True) for i in range(workers)]
    parts = [json.loads(run.communicate()[0].splitlines()[-1]) for run in runs]
    return {key: sum(part[key] for part in parts) for key in ("images", "cpu_s")} | {
        "hashes": {k: v for part in parts for k, v in part["hashes"].items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    parser.add_argument("--part", default="0/1", help=argparse.SUPPRESS)
    parser.add_argument("--train", help=argparse.SUPPRESS)
    args = parser.parse_args()
    workers = os.cpu_count() or 1
    if args.bare:
        part, parts = map(int, args.part.split("/"))
        print(json.dumps(run_bare(Path(args.bare), part, parts)))
        return 0
    if args.train:
        print(json.dumps(run_train(Path(args.train), workers)))
        return 0
    with tempfile.TemporaryDirectory(prefix="hashlens-photos-") as tmp:
        folder = Path(tmp)
        write_photos(folder, args.images, args.seed)
        print(f"training {args.images:,} JPEG photographs (640×480), {workers} cores, "
              f"load average {os.getloadavg()[0]:.1f} at the start")
        bare = _child("--bare", str(folder))
        train = _child("--train", str(folder))
        bare_all = _bare_on_all_cores(folder, workers)
    bare_ms = bare["cpu_s"] / bare["images"] * 1000
    train_ms = train["cpu_s"] / max(train["images"], 1) * 1000
    ratio = train_ms / bare_ms
    cpu_ok = ratio <= CPU_RATIO_TARGET and train["images"] == args.images
    same = sum(train["hashes"].get(label) == h for label, h in bare["hashes"].items())
    same_ok = same == args.images and bare_all["hashes"] == bare["hashes"]
    memory_ok = train["worker_peak_mb"] < WORKER_MEMORY_TARGET_MB
    print(f"  bare loop   {bare_ms:6.2f} ms CPU/image  ({bare['images'] / bare['wall_s']:,.0f} images/s on one core)")
    print(f"  hashlens    {train_ms:6.2f} ms CPU/image  ({train['images'] / train['wall_s']:,.0f} images/s on "
          f"{workers} workers, {train['images']:,} stored, {train['refused']} refused) -> {ratio:.2f}x the bare loop "
          f"{'ok' if cpu_ok else 'MISSED'} (<= {CPU_RATIO_TARGET}x)")
    per = 1000 / max(train["images"], 1)
    print(f"              of which {train['workers_cpu_s'] * per:.2f} ms in the workers (read, decode, pHash, SHA-256) "
          f"and {train['parent_cpu_s'] * per:.2f} ms in the parent (starting the pool, receiving results, "
          "storing them a batch per transaction)")
    bare_all_ms = bare_all["cpu_s"] / bare_all["images"] * 1000
    print(f"              and the bare loop on {workers} processes at once: {bare_all_ms:.2f} ms CPU/image "
          f"(-> the workers are {train['workers_cpu_s'] * per / bare_all_ms:.2f}x it)")
    print(f"  memory      {train['worker_peak_mb']:6.0f} MB peak of a worker, {train['parent_peak_mb']:.0f} MB the "
          f"parent {'ok' if memory_ok else 'MISSED'} (worker < {WORKER_MEMORY_TARGET_MB} MB)")
    print(f"  hashes      {same:,} of {args.images:,} stored pHashes are imagehash.phash's of the bare loop "
          f"{'ok' if same_ok else 'MISSED'} (all)")
    return 0 if cpu_ok and memory_ok and same_ok else 1


if __name__ == "__main__":
    sys.exit(main())
