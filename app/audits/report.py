"""The audit result as plain text and as JSON (the HTML report is in html_report.py)."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import tempfile
import time
from pathlib import Path

from app.audits.model import AuditResult, Group, Level, NEAR_LIMIT_BYTES
from app.domain import Failure, HashlensError, JournalEntry, ListingQuery, counted, phash_to_hex
from app.exports.atomic import refuse_special


def findings_summary(counts) -> str:
    """'0 errors, 1 warning, 2 notes' from an AuditResult's counts."""
    return (f"{counted(counts[Level.ERROR], 'error')}, {counted(counts[Level.WARNING], 'warning')}, "
            f"{counted(counts[Level.INFO], 'note')}")


def iso(ms: int | None) -> str | None:
    """Milliseconds since the epoch as an ISO 8601 UTC time."""
    if ms is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


# -- JSON ------------------------------------------------------------------------------------


def _query_json(query: ListingQuery) -> dict:
    return {
        "database": query.database,
        "identifiers": list(query.identifiers) if query.identifiers is not None else None,
        "filters": [
            {"op": f.op.value, "key": f.key, "value": f.value, "text": f.describe()} for f in query.filters
        ],
        "describe": query.describe(),
    }


def jsonable(value):
    """Plain JSON values from the result's dataclasses: pHashes as 16 hex digits, times
    as ISO 8601 UTC beside their milliseconds, levels by name."""
    if isinstance(value, ListingQuery):
        return _query_json(value)
    if isinstance(value, JournalEntry):
        return {"at": iso(value.at), "at_ms": value.at, "user": value.user, "action": value.action,
                "database": value.database, "identifier": value.identifier, "params": value.params}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.name == "phash":
                out[f.name] = phash_to_hex(item)
            elif f.name.endswith("_at") and isinstance(item, int):
                out[f.name] = iso(item)
                out[f.name + "_ms"] = item
            else:
                out[f.name] = jsonable(item)
        if hasattr(value, "level") and not isinstance(value, Level) and "kind" in out:
            out["level"] = value.level.label
        return out
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def to_json(result: AuditResult) -> str:
    doc = jsonable(result)
    doc["counts"] = {level.label: n for level, n in result.counts().items()}
    doc["worst"] = result.worst().label if result.worst() else None
    doc["note"] = "pHash distances are Hashlens's own measure, not Media Server's confidence."
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


# -- text ------------------------------------------------------------------------------------


def _range(span) -> str:
    return "-" if span is None else f"{span[0]:,}–{span[1]:,}"


def _group_lines(g: Group, indent: str = "    ") -> list[str]:
    lines = []
    for m in g.members:
        image = "" if m.has_image_data else "  (no image data)"
        where = f"{m.database}: " if g.kind == "across" else ""
        lines.append(f"{indent}{m.phash_hex}  {where}{m.identifier!r}  label {m.label!r}{image}")
    if g.size > len(g.members):
        lines.append(f"{indent}… and {g.size - len(g.members):,} more")
    return lines


def to_text(result: AuditResult, *, max_groups: int = 50) -> str:
    """A report a person reads on a terminal or in a mail."""
    out: list[str] = []
    add = out.append
    scope = f"database '{result.scope}'" if result.scope else "every database"
    add(f"Hashlens {result.version} audit of {scope} in {result.store}")
    add(f"Started {iso(result.started_at)}, took {(result.finished_at - result.started_at) / 1000:.1f} s.")
    o = result.options
    add(f"Near-duplicates within {o.near} of 64 bits (Hashlens's pHash, not Media Server's measure); "
        f"images {'checked' if o.check_images else 'not checked'}; names near the limit at {NEAR_LIMIT_BYTES}+ bytes.")
    if result.reused:
        add("Reused unchanged results for: " + ", ".join(result.reused) + ".")
    counts = result.counts()
    add(f"Findings: {findings_summary(counts)}.")
    add("")
    add("FINDINGS")
    if not result.findings:
        add("  none")
    for level in (Level.ERROR, Level.WARNING, Level.INFO):
        for f in result.findings:
            if f.level is level:
                where = f"[{f.database}] " if f.database else ""
                add(f"  {level.label.upper():7} {f.kind}: {where}{f.message}")
                if f.identifiers and len(f.identifiers) <= 10 and f.kind not in ("near-duplicate", "near-duplicate-across",
                                                                                  "duplicate-bytes", "duplicate-phash"):
                    add("          " + ", ".join(repr(i) for i in f.identifiers))
    for db in result.databases:
        s = db.summary
        add("")
        add(f"DATABASE '{db.name}'")
        add(f"  entries {s.entries:,}: {s.with_image_data:,} with image data, {s.without_image_data:,} without")
        add(f"  labels: {s.labels_auto:,} generated, {s.labels_missing:,} empty, {s.labels_shared:,} shared by several entries")
        add(f"  identifiers: {s.identifiers_auto:,} generated, {s.identifiers_awkward:,} with commas or quotes, "
            f"{s.identifiers_near_limit:,} near the limit")
        formats = ", ".join(f"{k} {v:,}" for k, v in s.formats) or "-"
        add(f"  formats: {formats}; width {_range(s.width_range)} px, height {_range(s.height_range)} px, "
            f"size {_range(s.byte_size_range)} bytes")
        i = db.integrity
        checked = "not checked" if i.images_skipped else f"{i.images_checked:,} checked"
        add(f"  integrity: images {checked}, {i.undecodable:,} undecodable, {i.phash_mismatches:,} pHash "
            f"mismatches, {i.degenerate_hashes:,} degenerate hashes")
        if db.metadata:
            add(f"  metadata ({counted(s.entries_with_metadata, 'entry has', 'entries have')} some):")
            for p in db.metadata:
                top = ", ".join(f"{v!r} ×{n:,}" for v, n in p.top_values[:3])
                add(f"    {p.key!r}: {p.coverage:.0%} of entries, {p.distinct_values:,} distinct values; top {top}")
        titles = {"bytes": "identical image bytes", "phash": "identical pHash", "near": "near-duplicates"}
        for kind, title in titles.items():
            groups = [g for g in db.groups if g.kind == kind]
            total = dict(db.group_totals).get(kind, 0)
            if not groups:
                continue
            add(f"  {title}: {counted(total, 'group')}")
            for g in groups[:max_groups]:
                flag = "  LIKELY MISLABEL" if g.likely_mislabel else ""
                add(f"   group of {g.size:,}, largest distance {g.max_distance}{flag}")
                out.extend(_group_lines(g))
            if len(groups) > max_groups:
                add(f"   … {len(groups) - max_groups:,} more groups in the JSON or HTML report")
        hist = db.distance_histogram
        within = sum(hist[: o.near + 1])
        sampled = "" if db.histogram_sample >= s.entries else f" (a sample of {counted(db.histogram_sample, 'entry', 'entries')})"
        add(f"  pairwise distances{sampled}: {within:,} of {counted(sum(hist), 'pair')} within {o.near} bits")
    if result.across_groups:
        add("")
        add(f"NEAR-DUPLICATES ACROSS DATABASES: {counted(len(result.across_groups), 'group')}")
        for g in result.across_groups[:max_groups]:
            add(f"   group of {g.size:,} in {', '.join(g.databases)}, largest distance {g.max_distance}")
            out.extend(_group_lines(g))
    c = result.store_checks
    add("")
    add("STORE")
    add(f"  backend {c.backend}, schema version {c.schema_version} (this Hashlens: {c.expected_schema_version})")
    add(f"  integrity: {c.integrity_status} ({c.integrity_check})")
    for m in c.integrity_messages[:20]:
        add(f"    {m}")
    h = result.history
    add("")
    span = f"from {iso(h.since) or 'the start'} until {iso(h.until) or 'now'}"
    add(f"CHANGE HISTORY {span}: {counted(h.total, 'change')}")
    for action, user, n, first, last in h.by_action:
        add(f"  {action} by {user}: {n:,} ({iso(first)} – {iso(last)})")
    if h.latest:
        add(f"  the last {len(h.latest):,}:")
        for e in h.latest:
            add("    " + journal_line(e))
    return "\n".join(out) + "\n"


def journal_line(e: JournalEntry) -> str:
    params = ", ".join(f"{k}={v!r}" for k, v in e.params.items() if v not in (None, [], {}))
    where = " ".join(x for x in (f"database={e.database!r}" if e.database else "",
                                 f"identifier={e.identifier!r}" if e.identifier else "") if x)
    return f"{iso(e.at)}  {e.user}  {e.action}  {where}{'  ' + params if params else ''}"


# -- files -------------------------------------------------------------------------------------


def write_atomic(path: str | Path, text: str) -> None:
    """Write the whole report or nothing: a temporary file in the same folder, flushed
    to disk, then renamed over the target (an earlier report stays intact on failure)."""
    target = Path(path)
    # A device, pipe, folder or link there is refused, as for every export (issue 10 item 2).
    refuse_special(target)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise HashlensError(Failure.FILE_FAILED,
                            f"Cannot write the report '{target}': {exc.strerror} (errno {exc.errno}). "
                            "Choose a folder you can write to.") from None
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the report from its readers
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise HashlensError(Failure.FILE_FAILED,
                            f"Cannot write the report '{target}': {exc.strerror} (errno {exc.errno}); "
                            "nothing was written.") from None
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
