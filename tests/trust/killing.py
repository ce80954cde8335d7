"""The kill campaign (issue 10): SIGKILL an operation at its deterministic fault
checkpoints (and at a few random moments), then check the store and files it leaves.

After every kill: the SQLite integrity check, exact counts (each database's recorded
count equals its rows, and equals what the kill point predicts), every position mark
exact (`start=N` returns the N-th entry of the full listing), export/manifest pairs
consistent or detectably inconsistent, and no process of the child left alive."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from app.domain import ListingQuery, NewEntry
from app.exports import manifest
from app.exports.atomic import sweep_stale
from app.exports.importer import ImportOptions, import_file
from app.exports.readers import ImportRefused
from app.store import Store
from app.store.store import MARK_SPACING
from tests.conftest import make_image
from tests.trust.kill_child import STEPS
from tests.trust.test_train_workers import MARK, marked_processes, wait_until_gone

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("kill_child.py")
# Database A spans more than two mark intervals, so moves and removals must shift marks.
ENTRIES = 2 * MARK_SPACING + 60
OPERATIONS = ("train", "import", "export", "move", "rename", "remove", "dbrename", "sample")


def populate(url: str, work: Path) -> None:
    """The starting state every run copies: databases A (ENTRIES entries) and B (empty),
    20 image files to train and a 300-entry NDJSON file to import."""
    with Store.open(url, create=True) as store:
        store.create_database("A")
        store.create_database("B")
        with store.writing():
            for i in range(ENTRIES):
                store.add_entry("A", NewEntry(f"e{i:04d}", f"=label {i}", (i * 0x9E3779B97F4A7C15) % 2**64, None,
                                              None, None, None, None, (("k", f"v,{i}"),) if i % 3 else (),
                                              1_700_000_000_000 + i))
    images = work / "images"
    images.mkdir(exist_ok=True)
    for i in range(STEPS):
        (images / f"img{i:02d}.png").write_bytes(make_image(i + 1, size=(32, 24)))
    with open(work / "in.ndjson", "w", encoding="utf-8") as f:
        for i in range(300):
            f.write(json.dumps({"identifier": f"imp{i}", "phash": f"{i:016x}", "label": f"l{i}"}) + "\n")


@dataclass
class Backend:
    """Fresh copies of one starting state, on SQLite (a file copy) or PostgreSQL (a
    database made from a template)."""

    kind: str
    work: Path
    template: str = ""
    made: list[str] = field(default_factory=list)

    def prepare(self) -> None:
        if self.kind == "sqlite":
            self.template = str(self.work / "template.db")
            populate(f"sqlite:///{self.template}", self.work)
        else:
            self.template = f"hl_kill_tmpl_{uuid.uuid4().hex[:10]}"
            self._admin(f'CREATE DATABASE "{self.template}"')
            populate(self._url(self.template), self.work)

    def fresh(self) -> str:
        if self.kind == "sqlite":
            path = self.work / f"run-{uuid.uuid4().hex[:8]}.db"
            shutil.copyfile(self.template, path)
            return f"sqlite:///{path}"
        name = f"hl_kill_{uuid.uuid4().hex[:10]}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.made.append(name)
        return self._url(name)

    def discard(self, url: str) -> None:
        if self.kind == "sqlite":
            path = Path(url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        else:
            name = url.rsplit("/", 1)[1]
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.made.remove(name)

    def close(self) -> None:
        if self.kind != "sqlite":
            for name in [*self.made, self.template]:
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @staticmethod
    def _url(name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:5432/{name}"

    @staticmethod
    def _admin(sql: str) -> None:
        import psycopg

        with psycopg.connect(dbname="postgres", host="127.0.0.1", port=5432, user="postgres",
                             autocommit=True) as conn:
            conn.execute(sql)


def kill_points(op: str) -> list[str]:
    """Deterministic checkpoints for one operation, in order."""
    if op in ("train", "move", "rename", "remove", "dbrename"):
        return [f"store.commit={n}:kill" for n in range(1, STEPS + 1)]
    if op == "import":
        return ["import.row=1:kill", "import.row=2:kill", "import.row=3:kill", "store.commit=1:kill"]
    if op == "export":
        return ["export.row=1:kill", "export.row=2:kill", "export.fsync=1:kill", "export.replace=1:kill",
                "export.manifest=1:kill", "export.fsync=2:kill", "export.replace=2:kill"]
    if op == "sample":
        # The database is created (commit 1), then the entries go in one transaction here.
        return ["store.commit=1:kill", "bulk.batch=1:kill", "store.commit=2:kill"]
    raise ValueError(op)


@dataclass
class Outcome:
    op: str
    point: str
    killed: bool
    applied: int | None  # how many of the looping operation's steps took effect


def run_once(backend: Backend, op: str, point: str | None, *, delay: float | None = None,
             export_target_state: dict | None = None) -> Outcome:
    """One run on a fresh store: killed at `point`, or after `delay` seconds (random
    moment), then every check. Raises AssertionError on any inconsistency."""
    url = backend.fresh()
    tag = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(ROOT), MARK: tag}
    env.pop("HASHLENS_FAULTS", None)
    if point:
        env["HASHLENS_FAULTS"] = point
    variant = random.choice(["safe", "raw"])
    args = [sys.executable, str(CHILD), op, url, str(backend.work), variant]
    try:
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if delay is not None:
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
        killed = proc.returncode == -signal.SIGKILL
        assert killed or proc.returncode == 0, f"{op} {point}: exit {proc.returncode}: {err[-2000:]}"
        assert wait_until_gone(tag) == [], f"{op} {point}: a child process outlived the kill"
        applied = check_store(url, op, point if killed else None, killed=killed)
        if op == "export":
            check_export_pair(backend.work, url)
        return Outcome(op, point or f"random {delay:.2f}s", killed, applied)
    finally:
        for pid in marked_processes(tag):
            os.kill(pid, signal.SIGKILL)
        backend.discard(url)


def _listing_ok(store, database: str, expected_count: int | None = None) -> list[str]:
    """Counts and marks of one database, against an independent full listing."""
    full = [r.identifier for r in store.list_page(ListingQuery(database)).rows]
    recorded = {d.name: d.entry_count for d in store.list_databases()}[database]
    assert recorded == len(full), f"{database}: entry_count {recorded} but {len(full)} rows"
    if expected_count is not None:
        assert len(full) == expected_count, f"{database}: {len(full)} entries, expected {expected_count}"
    probes = {1, len(full)} | {m + d for m in range(MARK_SPACING, len(full) + 1, MARK_SPACING) for d in (-1, 0, 1)}
    for start in sorted(p for p in probes if 1 <= p <= len(full)):
        row = store.list_page(ListingQuery(database, start=start, maxresults=1)).rows
        assert [r.identifier for r in row] == [full[start - 1]], f"{database}: start={start} is wrong (marks drifted)"
    return full


def _steps_done(point: str | None, killed: bool) -> int | None:
    """How many steps the kill point lets through: all when the run was not killed, n-1
    when killed at the n-th commit, unknown (read from the store) for a random moment."""
    if not killed:
        return STEPS
    if point and point.startswith("store.commit="):
        return int(point.split("=")[1].split(":")[0]) - 1
    return None


def check_store(url: str, op: str, point: str | None, *, killed: bool = True) -> int:
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(Path(url.removeprefix("sqlite:///")).as_uri() + "?mode=ro", uri=True)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            conn.close()
    done = _steps_done(point, killed)
    with Store.open(url) as store:
        names = {d.name for d in store.list_databases()}
        for name in names:
            _listing_ok(store, name)
        if op in ("move", "remove", "rename", "train", "dbrename") and done is None:
            done = _observed_steps(store, op, names)
        if op == "move":
            _listing_ok(store, "A", ENTRIES - done)
            assert _listing_ok(store, "B", done) == [f"e{i:04d}" for i in range(done)], f"moves are not the first {done}"
        elif op == "remove":
            assert _listing_ok(store, "A", ENTRIES - done)[:1] == [f"e{done:04d}"], f"removals are not the first {done}"
        elif op == "rename":
            ids = _listing_ok(store, "A", ENTRIES)
            assert ids[:STEPS] == [f"e{i:04d}-renamed" for i in range(done)] + [f"e{i:04d}" for i in range(done, STEPS)], \
                f"renames are not the first {done}"
        elif op == "train":
            labels = [r.label for r in store.list_page(ListingQuery("A", imagestatus=True)).rows[ENTRIES:]]
            assert labels == [f"img{i:02d}" for i in range(done)], f"trained {labels}, expected the first {done}"
        elif op == "dbrename":
            assert names == {"A", ("B", "B2")[done % 2]}, names
        elif op == "import":
            assert "Imp" not in names or _listing_ok(store, "Imp", 300), "a partial import"
            done = 300 if "Imp" in names else 0
        elif op == "sample":
            assert "S" not in names or len(_listing_ok(store, "S")) in (0, 1500), "a partial sample transaction"
            done = len(_listing_ok(store, "S")) if "S" in names else -1
        else:
            done = 0
    return done


def _observed_steps(store, op: str, names: set[str]) -> int:
    """For a random-moment kill: how many steps took effect, read from the store."""
    if op == "move":
        return len(store.list_page(ListingQuery("B")).rows)
    if op == "remove":
        return ENTRIES - len(store.list_page(ListingQuery("A")).rows)
    if op == "rename":
        return sum(r.identifier.endswith("-renamed") for r in store.list_page(ListingQuery("A", maxresults=STEPS)).rows)
    if op == "train":
        return len(store.list_page(ListingQuery("A")).rows) - ENTRIES
    if op == "dbrename":
        # Only the parity of the renames is visible; any prefix is consistent.
        return 0 if "B" in names else 1
    raise ValueError(op)


def check_export_pair(work: Path, url: str) -> None:
    """The export is absent, the previous file or a complete new one; its manifest
    matches it, or every import refuses to apply the mismatched manifest."""
    target = work / "out.csv"
    sweep_stale(work)
    assert not [p for p in work.iterdir() if p.name.startswith(".hashlens-")], "a temporary file survived the sweep"
    if not target.exists():
        return
    data = target.read_bytes()
    assert data.endswith(b"\n") and data.count(b"\n") == ENTRIES + 1, "a torn export"
    pair = manifest.manifest_path(target)
    if pair.exists() and not manifest.verify(pair).ok:
        with Store.open(url) as store:
            try:
                import_file(store, target, "Check", ImportOptions())
            except ImportRefused as exc:
                assert "describes another file" in exc.description
            else:
                raise AssertionError("an import applied a manifest that does not match its file")


@dataclass
class Tally:
    runs: int = 0
    kills: int = 0
    failures: list[str] = field(default_factory=list)


def campaign(backend: Backend, op: str, runs: int, *, random_runs: int = 0, seed: int = 0) -> Tally:
    """`runs` kills at the operation's checkpoints (cycled), plus `random_runs` kills at
    random moments. Every failed check is collected, not raised, so a campaign reports
    all of them."""
    rng = random.Random(seed)
    tally = Tally()
    points = kill_points(op)
    plan = [(points[i % len(points)], None) for i in range(runs)]
    # Starting Python and the app takes a second or two on a busy machine.
    plan += [(None, rng.uniform(1.0, 6.0)) for _ in range(random_runs)]
    if op == "export":
        (backend.work / "out.csv").unlink(missing_ok=True)
        manifest.manifest_path(backend.work / "out.csv").unlink(missing_ok=True)
    for point, delay in plan:
        try:
            outcome = run_once(backend, op, point, delay=delay)
        except AssertionError as exc:
            tally.failures.append(f"{op} {point or delay}: {exc}")
            tally.runs += 1
            continue
        tally.runs += 1
        tally.kills += outcome.killed
    return tally
