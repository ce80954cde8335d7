"""Issue 10 item 6: the worker processes of `hashlens train` die with it when it is
killed, instead of living on with parent 1 holding the caller's pipes."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from app.domain import ListingQuery
from app.services import actions
from app.store import Store
from tests.app.test_resample import numpy_uses_openblas
from tests.conftest import make_image

ROOT = Path(__file__).resolve().parents[2]
MARK = "HASHLENS_TEST_LIFELINE"
CLI = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"
REPORT = "HASHLENS_TEST_RESIZE_REPORT"
_hash_file = actions._hash_file


def reporting_hash_file(path: str):
    """actions._hash_file in a training worker, also noting in the file $REPORT this
    process, the image's size, whether the worker may resize with `resample` and
    whether `resample` did resize this image (its `shrunk` count went up)."""
    import json

    from PIL import Image

    from app.services import imaging, resample

    before = resample.shrunk
    result = _hash_file(path)
    with Image.open(path) as image:
        size = image.size
    line = json.dumps([os.getpid(), size, imaging._fast_resize, resample.shrunk - before])
    with open(os.environ[REPORT], "a", encoding="utf-8") as report:
        report.write(line + "\n")
    return result


def marked_processes(tag: str) -> list[int]:
    """Live processes whose environment carries this test's tag (the CLI's children
    inherit it), found through /proc so no pid has to be learnt before the kill."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if f"{MARK}={tag}".encode() in env.split(b"\0"):
            found.append(int(name))
    return found


def wait_until_gone(tag: str, deadline_s: float = 60) -> list[int]:
    """Poll (bounded) until no tagged process remains; returns those still alive."""
    end = time.monotonic() + deadline_s
    while (alive := marked_processes(tag)) and time.monotonic() < end:
        time.sleep(0.05)
    return alive


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("many")
    for i in range(80):  # over the 64 files from which training uses a process pool
        (path / f"img{i:02d}.png").write_bytes(make_image(i + 1, size=(32, 24)))
    return path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("kill_at", [1, 20])
def test_killed_train_leaves_no_worker_behind(tmp_path, folder, kill_at):
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store.open(url) as store:
        actions.create_database(store, "D")
    tag = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(ROOT), MARK: tag, "HASHLENS_FAULTS": f"train.commit={kill_at}:kill"}
    try:
        proc = subprocess.run([sys.executable, "-c", CLI, "--store", url, "train", "D", str(folder)], env=env,
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert wait_until_gone(tag) == []
    finally:
        for pid in marked_processes(tag):  # only the processes this test started
            os.kill(pid, signal.SIGKILL)


def test_a_completed_train_uses_the_pool_and_finishes(tmp_path, folder):
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store.open(url) as store:
        actions.create_database(store, "D")
        report = actions.train_files(store, "D", [folder], workers=2)
    assert len(report.added) == 80 and not report.refused


def test_pooled_training_stores_in_batches_and_journals_each_image(tmp_path, folder):
    """Issue 15 item 5: the pool's results are stored a batch per transaction, yet every
    image is its own TrainImageHash in the journal, with its path, in file order."""
    damaged = tmp_path / "imgs"
    damaged.mkdir()
    for f in sorted(folder.iterdir()):
        (damaged / f.name).write_bytes(f.read_bytes())
    (damaged / "img33.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store.open(url) as store:
        actions.create_database(store, "D")
        report = actions.train_files(store, "D", [damaged], workers=2)
        assert [Path(p).name for p, _ in report.refused] == ["img33.png"]
        assert len(report.added) == 79
        rows = store.list_page(ListingQuery("D", imagestatus=True)).rows
        assert [r.label for r in rows] == [f"img{i:02d}" for i in range(80) if i != 33]
        assert all(r.has_image_data for r in rows)
        assert [r.identifier for r in rows] == [identifier for _, identifier in report.added]
        trained = [j for j in store.history() if j.action == "TrainImageHash"]
        assert [Path(j.params["imagepath"]).name for j in trained] == [f"img{i:02d}.png" for i in range(80) if i != 33]
        assert [j.identifier for j in trained] == [r.identifier for r in rows]


def test_a_batch_the_store_refuses_is_retried_image_by_image(tmp_path, folder):
    """When the store refuses a batch (here its database is removed while the pool hashes),
    each image gets its own outcome and reason instead of one error for all."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store.open(url) as store:
        actions.create_database(store, "D")

        def progress(done, total):
            if done == 10:
                actions.remove_database(store, "D")

        report = actions.train_files(store, "D", [folder], workers=2, progress=progress)
        assert report.added == []
        assert len(report.refused) == 80 and all("D" in reason for _, reason in report.refused)
        assert not store.database_exists("D")


def test_pooled_training_stores_imagehash_phash_of_each_full_image(tmp_path, monkeypatch):
    """Issue 15 item 5: the pool's workers shrink images with app.services.resample; each
    stored pHash is still imagehash.phash of the whole file as Pillow opens it, its
    SHA-256 the file's, on shapes that take either of Pillow's pass orders. The workers
    report that `resample` did resize the images, so the test cannot pass on Pillow's
    resize alone. NumPy's wheels carry OpenBLAS (here and on CI); where NumPy was built
    with another BLAS, the workers keep Pillow and only the hashes are checked."""
    import hashlib
    import json

    import imagehash
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(15)
    shapes = [(640, 480), (480, 640), (90, 700), (700, 90), (33, 31), (7, 300), (1, 1), (32, 32), (300, 200)]
    files = tmp_path / "varied"
    files.mkdir()
    for i in range(70):
        width, height = shapes[i % len(shapes)]
        y, x = np.mgrid[0:height, 0:width]
        rgb = np.stack([x * 255 // width, y * 255 // height, (x * y + i * 37) % 256], axis=-1).astype(np.uint8)
        rgb[: height // 2, : width // 3] = rng.integers(0, 256, rgb[: height // 2, : width // 3].shape)
        fmt = "JPEG" if i % 2 else "PNG"
        Image.fromarray(rgb, "RGB").save(files / f"v{i:02d}.{fmt.lower()}", fmt)
    # Each worker notes how it resized every image (a pool's workers are other processes).
    monkeypatch.setattr(actions, "_hash_file", reporting_hash_file)
    monkeypatch.setenv(REPORT, str(tmp_path / "resizes.jsonl"))
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store.open(url) as store:
        actions.create_database(store, "D")
        report = actions.train_files(store, "D", [files], workers=2)
        assert len(report.added) == 70 and not report.refused
        noted = [json.loads(line) for line in (tmp_path / "resizes.jsonl").read_text().splitlines()]
        assert len(noted) == 70 and os.getpid() not in {pid for pid, *_ in noted}
        # Pillow resizes the first image of each shape in a worker, `resample` every later one.
        openblas = numpy_uses_openblas()
        seen = set()
        for pid, size, fast, shrunk in noted:
            assert fast is openblas
            assert shrunk == (openblas and (pid, tuple(size)) in seen), (pid, size)
            seen.add((pid, tuple(size)))
        rows = store.list_page(ListingQuery("D", maxresults=100)).rows
        for (path, identifier), row in zip(report.added, rows, strict=True):
            assert row.identifier == identifier
            data = Path(path).read_bytes()
            assert row.phash == int(str(imagehash.phash(Image.open(path))), 16), path
            assert store.image("D", identifier).data == data
            sha = store.sql.one("SELECT sha256 FROM hl_entry WHERE identifier = ?", (identifier,))[0]
            assert sha == hashlib.sha256(data).hexdigest()
