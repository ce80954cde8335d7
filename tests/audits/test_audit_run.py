"""The audit on stores with planted problems: every planted problem found, nothing else."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from collections import Counter

import pytest
from PIL import Image

import audit_planted as planted
from app.audits.audit import AuditCache, run_audit
from app.audits.model import AuditOptions, Level
from app.domain import Failure, FilterOp, HashlensError
from app.services import actions
from app.store import Store
from app.store import audit_queries as q


def _keys(result):
    return Counter(planted.finding_key(f) for f in result.findings)


def _digest(url: str) -> str:
    """An ordered hash over every table: proof that the audit wrote nothing."""
    path = url.removeprefix("sqlite:///")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    h = hashlib.sha256()
    for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
        for row in con.execute(f'SELECT * FROM "{table}" ORDER BY 1, 2'):
            h.update(repr(row).encode())
    con.close()
    return h.hexdigest()


def test_every_planted_problem_is_found_and_nothing_else(planted_url, planted_file):
    _, facts = planted_file
    before = _digest(planted_url)
    with Store.open(planted_url, read_only=True) as store:
        result = run_audit(store)
    assert _keys(result) == Counter(planted.expected(facts))
    assert _digest(planted_url) == before
    photos = {d.name: d for d in result.databases}["photos"]
    assert photos.summary.entries == 20 and photos.summary.without_image_data == 1
    assert dict(photos.summary.shared_labels) == {"Astronaut": 2, "Cat": 2, "Motorcycle": 2}
    assert photos.integrity.images_checked == 19
    assert result.store_checks.integrity_status == "ok"
    assert result.worst() is Level.ERROR


def test_groups_carry_members_distances_and_queries(planted_url):
    with Store.open(planted_url, read_only=True) as store:
        result = run_audit(store)
    photos = {d.name: d for d in result.databases}["photos"]
    near = [g for g in photos.groups if g.kind == "near"]
    assert [[m.identifier for m in g.members] for g in near] == [
        ["coffee", "coffee-recoloured"], ["motorcycle-left", "motorcycle-right"]]
    assert [g.max_distance for g in near] == [6, 4]
    assert near[0].labels_disagree and not near[1].likely_mislabel
    assert near[0].query().identifiers == ("coffee", "coffee-recoloured")
    (across,) = result.across_groups
    assert across.databases == ("archive", "photos")
    assert across.query("photos").identifiers == ("chelsea", "chelsea-copy")
    gap = next(f for f in result.findings if f.kind == "metadata-key-gap")
    assert gap.query.filters[0].op is FilterOp.META_ABSENT and gap.query.filters[0].key == "source"
    hist = photos.distance_histogram
    assert len(hist) == 65 and sum(hist) == 20 * 19 // 2


def test_audit_of_one_database_keeps_to_it(planted_url, planted_file):
    _, facts = planted_file
    with Store.open(planted_url, read_only=True) as store:
        result = run_audit(store, "photos")
        assert [d.name for d in result.databases] == ["photos"]
        assert _keys(result) == Counter(planted.expected(facts))
        across = next(f for f in result.findings if f.kind == "near-duplicate-across")
        assert across.query.database == "photos"
        archive = run_audit(store, "archive", AuditOptions(across=False))
        assert archive.findings == ()
        with pytest.raises(HashlensError) as err:
            run_audit(store, "nope")
        assert err.value.failure is Failure.NO_SUCH_DATABASE


def test_a_wider_radius_finds_the_cropped_copy(planted_url):
    with Store.open(planted_url, read_only=True) as store:
        result = run_audit(store, "photos", AuditOptions(near=12, check_images=False, across=False))
    near = {frozenset(f.identifiers): f for f in result.findings if f.kind == "near-duplicate"}
    assert frozenset({"rocket", "rocket-cropped"}) in near
    assert "12 bits" in near[frozenset({"rocket", "rocket-cropped"})].message


def test_without_image_checks_no_integrity_findings(planted_url):
    with Store.open(planted_url, read_only=True) as store:
        result = run_audit(store, options=AuditOptions(check_images=False))
    kinds = {f.kind for f in result.findings}
    assert "image-undecodable" not in kinds and "phash-mismatch" not in kinds
    assert all(d.integrity.images_skipped for d in result.databases)


def test_bookkeeping_damage_is_reported(planted_url):
    with Store.open(planted_url) as store:
        key = dict(store.sql.all("SELECT identifier, id FROM hl_entry"))
        with store.writing():
            store.sql.exec("UPDATE hl_database SET entry_count = entry_count + 3 WHERE name = ?", ("archive",))
            store.sql.exec("UPDATE hl_entry SET meta_count = 5 WHERE id = ?", (key["retina"],))
            store.sql.exec("DELETE FROM hl_image WHERE entry_id = ?", (key["rocket"],))
            png = store.sql.one("SELECT data FROM hl_image WHERE entry_id = ?", (key["motorcycle-left"],))[0]
            image = Image.open(io.BytesIO(bytes(png)))
            buf = io.BytesIO()
            image.save(buf, "PNG", compress_level=1)  # same pixels, other bytes
            store.sql.exec("UPDATE hl_image SET data = ? WHERE entry_id = ?", (buf.getvalue(), key["motorcycle-left"]))
    with Store.open(planted_url, read_only=True) as store:
        result = run_audit(store, options=AuditOptions(across=False))
    found = {(f.kind, f.database, frozenset(f.identifiers)) for f in result.findings if f.level is Level.ERROR}
    assert ("entry-count-mismatch", "archive", frozenset()) in found
    assert ("meta-count-mismatch", "archive", frozenset({"retina"})) in found
    assert ("image-flag-mismatch", "photos", frozenset({"rocket"})) in found
    assert ("sha256-mismatch", "photos", frozenset({"motorcycle-left"})) in found
    assert len(found) == 6  # and the planted undecodable image and tampered pHash


def test_orphans_and_a_damaged_file_are_reported(planted_url):
    path = planted_url.removeprefix("sqlite:///")
    con = sqlite3.connect(path)
    con.execute("PRAGMA foreign_keys = OFF")
    con.execute("INSERT INTO hl_metadata (entry_id, meta_key, meta_value) VALUES (999999, 'k', 'v')")
    con.commit()
    (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'hl_entry_phash'").fetchone()
    (page_size,) = con.execute("PRAGMA page_size").fetchone()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    # Scribble over the pHash index's page: the table data stays readable.
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * page_size + 100)
        fh.write(b"\xff" * 64)
    with Store.open(planted_url, read_only=True) as store:
        result = run_audit(store, options=AuditOptions(check_images=False, across=False))
    kinds = {f.kind for f in result.findings if f.database is None}
    assert result.store_checks.integrity_status == "failed"
    assert {"store-integrity", "orphan-rows"} <= kinds
    assert dict(result.store_checks.orphans)["hl_metadata"] == 1


def test_cancel_stops_the_audit(planted_url):
    with Store.open(planted_url, read_only=True) as store:
        with pytest.raises(HashlensError) as err:
            run_audit(store, cancelled=lambda: True)
    assert err.value.failure is Failure.CANCELLED


def test_progress_names_each_phase(planted_url):
    seen = []
    with Store.open(planted_url, read_only=True) as store:
        run_audit(store, progress=lambda phase, done, total: seen.append((phase, done, total)))
    phases = list(dict.fromkeys(p for p, _, _ in seen))
    assert phases[:3] == ["archive: reading entries", "archive: labels, duplicates and metadata",
                          "photos: reading entries"]
    assert "near-duplicates" in phases and "photos: checking images" in phases
    assert ("photos: checking images", 19, 19) in seen


def test_rerun_reuses_what_has_not_changed(planted_url):
    cache = AuditCache()
    with Store.open(planted_url) as store:
        first = run_audit(store, cache=cache)
        assert first.reused == ()
        again = run_audit(store, cache=cache)
        assert again.reused == ("archive", "photos")
        assert again.databases == first.databases and again.findings == first.findings
        actions.add_metadata(store, "archive", "retina", "note", "changed")
        third = run_audit(store, cache=cache)
        assert third.reused == ("photos",)
        archive = {d.name: d for d in third.databases}["archive"]
        assert {p.key for p in archive.metadata} == {"source", "note"}
        # Other options are other results.
        assert run_audit(store, cache=cache, options=AuditOptions(near=4)).reused == ()


def test_history_between_two_dates(planted_url):
    with Store.open(planted_url) as store:
        cut = store.sql.one("SELECT MAX(at_ms) FROM hl_journal")[0] + 1
        store.sql.exec("UPDATE hl_journal SET at_ms = at_ms - 86400000")  # everything so far: a day earlier
        actions.relabel_image(store, "photos", "rocket", "Rocket", "Space rocket")
        result = run_audit(store, "photos", AuditOptions(since=cut - 1000, check_images=False, across=False))
    h = result.history
    assert h.total == 1 and [e.action for e in h.latest] == ["RelabelImageHashImage"]
    assert h.latest[0].params == {"imagelabel": "Rocket", "newimagelabel": "Space rocket"}


def test_journal_queries_follow_moves_between_databases(planted_url):
    with Store.open(planted_url) as store:
        token = store.change_token()
        actions.move_image_hash(store, "photos", "gravel", "archive")
        assert q.changed_databases(store, token) == {"photos", "archive"}
        moves = [e for batch in q.iter_journal(store, database="archive") for e in batch]
        assert moves[-1].action == "MoveImageHash"
        summary = {r[0]: r[2] for r in q.journal_summary(store, None, None, "archive")}
        assert summary["MoveImageHash"] == 1 and summary["TrainImageHash"] == 2
        assert [e.identifier for e in q.journal_latest(store, None, None, "archive", 2)] == ["retina", "gravel"]


def test_empty_store_and_empty_database(sqlite_url):
    with Store.open(sqlite_url) as store:
        result = run_audit(store)
        assert result.databases == () and result.findings == ()
        actions.create_database(store, "empty")
        result = run_audit(store)
        assert result.findings == ()
        assert result.databases[0].summary.entries == 0


def test_planted_problems_on_every_backend(store, store_url):
    """The same planted store on SQLite, PostgreSQL and MariaDB gives the same findings."""
    facts = planted.build(store)
    result = run_audit(store)
    assert _keys(result) == Counter(planted.expected(facts))
    expected_status = {"sqlite": "ok", "mysql": "ok", "postgresql": "not applicable"}[store.backend]
    assert result.store_checks.integrity_status == expected_status
    photos = {d.name: d for d in result.databases}["photos"]
    assert {p.key: p.max_value_bytes for p in photos.metadata} == {"note": 245, "source": 7}
    # The auditor's own way in: a read-only session gives the same answer.
    with Store.open(store_url, read_only=True) as reader:
        again = run_audit(reader, "photos", AuditOptions(check_images=False))
    assert again.findings == tuple(f for f in run_audit(store, "photos", AuditOptions(check_images=False)).findings)


@pytest.mark.server
def test_reports_never_show_the_store_password(pg_url):
    from app.audits.html_report import to_html
    from app.audits.report import to_json, to_text

    url = pg_url.replace("postgres@", "postgres:s3cret-pw@")  # the local server trusts and ignores it
    with Store.open(url) as store:
        actions.create_database(store, "db")
        result = run_audit(store)
    for text in (to_text(result), to_json(result), to_html(result)):
        assert "s3cret-pw" not in text and "postgres@127.0.0.1" in text


def test_image_check_in_worker_processes_finds_the_same(planted_url, monkeypatch):
    from app.audits import scan as scan_module

    monkeypatch.setattr(scan_module, "PROCESS_THRESHOLD", 1)
    with Store.open(planted_url, read_only=True) as store:
        pooled = run_audit(store, "photos", AuditOptions(image_workers=2, across=False))
        inline = run_audit(store, "photos", AuditOptions(image_workers=1, across=False))
    assert pooled.findings == inline.findings
    assert {f.kind for f in pooled.findings} >= {"image-undecodable", "phash-mismatch"}
    assert pooled.databases[0].integrity.images_checked == 19


@pytest.mark.parametrize("version, kind, level", [(99, "schema-newer", Level.ERROR), (0, "schema-older", Level.WARNING)])
def test_schema_version_is_checked(sqlite_url, version, kind, level):
    with Store.open(sqlite_url) as store:
        actions.create_database(store, "db")
        store.schema_version = version  # as read from a store another Hashlens wrote
        result = run_audit(store)
    (finding,) = result.findings
    assert finding.kind == kind and finding.level is level and finding.database is None
    assert result.store_checks.schema_version == version
