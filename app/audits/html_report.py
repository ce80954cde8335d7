"""The audit report as one self-contained HTML file: inline CSS, charts as inline SVG,
thumbnails as data URIs. Nothing is fetched when it is opened, so it can be mailed."""

from __future__ import annotations

import base64
import io
from html import escape

from app.audits.model import AuditResult, DatabaseAudit, Group, Level, NEAR_LIMIT_BYTES
from app.audits.report import iso, journal_line
from app.domain import HashlensError
from app.services import imaging

THUMB_PX = 120

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:72em;color:#1d232a;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ccd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #dde;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f2f4f8}.num{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#556}.badge{display:inline-block;padding:0 .5em;border-radius:.6em;font-size:.85em;font-weight:600}
.error{background:#fde2e1;color:#8a1c17}.warning{background:#fff1d0;color:#7a5200}.info{background:#e3eefc;color:#1f4f8a}
.group{border:1px solid #dde;border-radius:6px;margin:.8em 0;padding:.5em .8em}
.members{display:flex;flex-wrap:wrap;gap:.8em}.member{width:150px;font-size:.85em;word-break:break-all}
.member img,.noimg{width:120px;height:120px;object-fit:contain;background:#f4f5f7;border:1px solid #dde;display:block}
.noimg{display:flex;align-items:center;justify-content:center;color:#889;text-align:center}
code{font-size:.92em}svg text{font:11px system-ui,sans-serif;fill:#334}
"""


def thumbnails(store, keys, size: int = THUMB_PX) -> dict[int, str]:
    """key -> a PNG data URI of the entry's image, scaled down; images that do not decode
    (the audit reports them) simply get none. Decoded with the safe loader."""
    out: dict[int, str] = {}
    keys = list(keys)
    for start in range(0, len(keys), 32):
        blobs = store.images_by_key(keys[start:start + 32])
        for key, data in blobs.items():
            try:
                image = imaging.open_image(data)
            except HashlensError:
                continue
            image = image.convert("RGB")
            image.thumbnail((size, size))
            buf = io.BytesIO()
            image.save(buf, "PNG", optimize=True)
            out[key] = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return out


def _e(text) -> str:
    return escape(str(text), quote=True)


def bar_chart_svg(rows: list[tuple[str, float]], width: int = 560) -> str:
    """Horizontal bars for shares 0..1 (metadata coverage)."""
    bar_h, gap, label_w = 16, 6, 190
    height = len(rows) * (bar_h + gap) + gap
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="metadata coverage">']
    span = width - label_w - 50
    for i, (label, share) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        w = max(0.0, min(1.0, share)) * span
        shown = label if len(label) <= 28 else label[:27] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{_e(shown)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{span}" height="{bar_h}" fill="#eef0f4"/>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#3d7bd9"/>')
        parts.append(f'<text x="{label_w + span + 6}" y="{y + 12}">{share:.0%}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(counts: tuple[int, ...], threshold: int, width: int = 560, height: int = 180) -> str:
    """Pairs per pHash distance 0..64 with the near-duplicate threshold marked."""
    left, bottom, top = 40, 24, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max(counts) if counts and max(counts) else 1
    step = plot_w / 65
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="pairwise pHash distances">',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#889"/>']
    for d, c in enumerate(counts):
        h = plot_h * c / peak
        colour = "#d9534f" if d <= threshold else "#3d7bd9"
        parts.append(f'<rect x="{left + d * step:.1f}" y="{top + plot_h - h:.1f}" width="{max(step - 1, 1):.1f}" '
                     f'height="{h:.1f}" fill="{colour}"><title>distance {d}: {c:,} pairs</title></rect>')
    for d in range(0, 65, 8):
        parts.append(f'<text x="{left + d * step + step / 2:.1f}" y="{height - 8}" text-anchor="middle">{d}</text>')
    x = left + (threshold + 1) * step
    parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#d9534f" stroke-dasharray="4 3"/>')
    parts.append(f'<text x="4" y="{top + 10}">{peak:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bit_difference_svg(a: int, b: int, cell: int = 10) -> str:
    """The 64 bits of two hashes as an 8×8 grid; differing bits are filled."""
    diff = a ^ b
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{8 * cell}" height="{8 * cell}" role="img" '
             f'aria-label="{diff.bit_count()} bits differ">']
    for bit in range(64):
        x, y = (bit % 8) * cell, (bit // 8) * cell
        on = (diff >> (63 - bit)) & 1
        parts.append(f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{"#d9534f" if on else "#e7e9ee"}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _group_html(g: Group, thumbs: dict[int, str]) -> str:
    flag = ' <span class="badge warning">likely mislabel</span>' if g.likely_mislabel else ""
    dist = ("" if g.exact_max else "at least ") + str(g.max_distance)
    head = f"<div class=\"group\"><div>{g.size:,} entries, largest distance {dist} bits{flag}"
    if g.kind == "across":
        head += " — in " + ", ".join(f"<b>{_e(d)}</b>" for d in g.databases)
    head += "</div><div class=\"members\">"
    cells = []
    anchor = g.members[0].phash
    for m in g.members[:24]:
        if m.key in thumbs:
            pic = f'<img alt="{_e(m.identifier)}" src="{thumbs[m.key]}">'
        elif not m.has_image_data:
            grid = bit_difference_svg(anchor, m.phash, 8) if m.phash is not None and anchor is not None else ""
            pic = f'<div class="noimg">no image data<br>{grid}</div>'
        else:
            pic = '<div class="noimg">image not shown</div>'
        where = f"{_e(m.database)}: " if g.kind == "across" else ""
        cells.append(f'<div class="member">{pic}{where}<b>{_e(m.identifier)}</b><br>label {_e(m.label)}'
                     f'<br><code>{m.phash_hex}</code> ({m.bits_from(anchor)} from the first)</div>')
    more = f"<p class=\"meta\">… and {g.size - min(len(g.members), 24):,} more</p>" if g.size > min(len(g.members), 24) else ""
    return head + "".join(cells) + "</div>" + more + "</div>"


def _database_html(db: DatabaseAudit, result: AuditResult, thumbs: dict[int, str], max_groups: int) -> str:
    s, i = db.summary, db.integrity
    out = [f"<h2>Database {_e(db.name)}</h2>", "<table>"]
    rows = [
        ("Entries", f"{s.entries:,}"),
        ("With image data", f"{s.with_image_data:,}"),
        ("Without image data (cannot be retrained)", f"{s.without_image_data:,}"),
        ("Labels generated / empty / shared", f"{s.labels_auto:,} / {s.labels_missing:,} / {s.labels_shared:,}"),
        ("Identifiers generated / with commas or quotes / near the limit",
         f"{s.identifiers_auto:,} / {s.identifiers_awkward:,} / {s.identifiers_near_limit:,}"),
        ("Image formats", ", ".join(f"{_e(k)} {v:,}" for k, v in s.formats) or "-"),
        ("Width, height (px)", f"{_span(s.width_range)}, {_span(s.height_range)}"),
        ("Image size (bytes)", _span(s.byte_size_range)),
        ("Images checked", "not checked" if i.images_skipped else f"{i.images_checked:,}"),
        ("Undecodable / pHash mismatches / degenerate hashes",
         f"{i.undecodable:,} / {i.phash_mismatches:,} / {i.degenerate_hashes:,}"),
    ]
    out += [f"<tr><th>{k}</th><td class=\"num\">{v}</td></tr>" for k, v in rows]
    out.append("</table>")
    if db.metadata:
        out.append("<h3>Metadata coverage</h3>")
        out.append(bar_chart_svg([(p.key, p.coverage) for p in db.metadata[:40]]))
        out.append("<table><tr><th>Key</th><th>Entries</th><th>Distinct values</th><th>Most common</th>"
                   "<th>Longest value (bytes)</th></tr>")
        for p in db.metadata:
            top = ", ".join(f"{_e(v)} ×{n:,}" for v, n in p.top_values)
            out.append(f"<tr><td>{_e(p.key)}</td><td class=\"num\">{p.entries:,} ({p.coverage:.0%})</td>"
                       f"<td class=\"num\">{p.distinct_values:,}</td><td>{top}</td>"
                       f"<td class=\"num\">{p.max_value_bytes}</td></tr>")
        out.append("</table>")
    sampled = "" if db.histogram_sample >= s.entries else f", sampled from {db.histogram_sample:,} entries"
    out.append(f"<h3>Pairwise pHash distances{sampled}</h3>")
    out.append(histogram_svg(db.distance_histogram, result.options.near))
    titles = {"bytes": "Identical image bytes", "phash": "Identical pHash", "near": "Near-duplicates"}
    totals = dict(db.group_totals)
    for kind, title in titles.items():
        groups = [g for g in db.groups if g.kind == kind]
        if not groups:
            continue
        out.append(f"<h3>{title}: {totals.get(kind, len(groups)):,} groups</h3>")
        out += [_group_html(g, thumbs) for g in groups[:max_groups]]
        if len(groups) > max_groups:
            out.append(f"<p class=\"meta\">… {len(groups) - max_groups:,} more groups in the JSON report.</p>")
    return "\n".join(out)


def _span(span) -> str:
    return "-" if span is None else f"{span[0]:,}–{span[1]:,}"


def to_html(result: AuditResult, thumbs: dict[int, str] | None = None, *, max_groups: int = 60) -> str:
    thumbs = thumbs or {}
    o = result.options
    scope = f"database {_e(result.scope)}" if result.scope else "every database"
    counts = result.counts()
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Hashlens audit — {_e(result.scope or result.store)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Hashlens audit of {scope}</h1>",
        f'<p class="meta">Store <code>{_e(result.store)}</code> · Hashlens {_e(result.version)} · '
        f"started {iso(result.started_at)}, took {(result.finished_at - result.started_at) / 1000:.1f} s</p>",
        "<table>",
        f"<tr><th>Near-duplicate radius</th><td>{o.near} of 64 bits "
        "(Hashlens's own pHash distance, not Media Server's confidence)</td></tr>",
        f"<tr><th>Near-duplicate index</th><td>{_e(result.near_plan or '-')}</td></tr>",
        f"<tr><th>Images decoded and re-hashed</th><td>{'yes' if o.check_images else 'no'}</td></tr>",
        f"<tr><th>Names near the 254-byte limit</th><td>{NEAR_LIMIT_BYTES} bytes or more</td></tr>",
        f"<tr><th>Findings</th><td><span class=\"badge error\">{counts[Level.ERROR]} errors</span> "
        f"<span class=\"badge warning\">{counts[Level.WARNING]} warnings</span> "
        f"<span class=\"badge info\">{counts[Level.INFO]} notes</span></td></tr>",
        "</table>",
        "<h2>Findings</h2>",
    ]
    if result.findings:
        out.append("<table><tr><th>Level</th><th>Kind</th><th>Database</th><th>Finding</th><th>Entries</th></tr>")
        for level in (Level.ERROR, Level.WARNING, Level.INFO):
            for f in result.findings:
                if f.level is not level:
                    continue
                ids = " ".join(f"<code>{_e(i)}</code>" for i in f.identifiers[:8]) + (
                    " …" if len(f.identifiers) > 8 else "")
                out.append(f'<tr><td><span class="badge {level.label}">{level.label}</span></td><td>{_e(f.kind)}</td>'
                           f"<td>{_e(f.database or 'store')}</td><td>{_e(f.message)}</td><td>{ids}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>Nothing found.</p>")
    for db in result.databases:
        out.append(_database_html(db, result, thumbs, max_groups))
    if result.across_groups:
        out.append(f"<h2>Near-duplicates across databases: {len(result.across_groups):,} groups</h2>")
        out += [_group_html(g, thumbs) for g in result.across_groups[:max_groups]]
    c = result.store_checks
    out.append("<h2>Store</h2><table>")
    out.append(f"<tr><th>Backend</th><td>{_e(c.backend)}</td></tr>")
    out.append(f"<tr><th>Schema version</th><td>{c.schema_version} (this Hashlens: {c.expected_schema_version})</td></tr>")
    out.append(f"<tr><th>Integrity</th><td>{_e(c.integrity_status)} — {_e(c.integrity_check)}</td></tr>")
    for m in c.integrity_messages[:50]:
        out.append(f"<tr><th></th><td><code>{_e(m)}</code></td></tr>")
    out.append("</table>")
    h = result.history
    out.append(f"<h2>Change history</h2><p>From {iso(h.since) or 'the start'} until {iso(h.until) or 'now'}: "
               f"{h.total:,} changes.</p>")
    if h.by_action:
        out.append("<table><tr><th>Action</th><th>User</th><th>Changes</th><th>First</th><th>Last</th></tr>")
        for action, user, n, first, last in h.by_action:
            out.append(f"<tr><td>{_e(action)}</td><td>{_e(user)}</td><td class=\"num\">{n:,}</td>"
                       f"<td>{iso(first)}</td><td>{iso(last)}</td></tr>")
        out.append("</table>")
    if h.latest:
        out.append(f"<h3>The last {len(h.latest):,} changes</h3><pre>")
        out += [_e(journal_line(e)) for e in h.latest]
        out.append("</pre>")
    out.append("</body></html>\n")
    return "\n".join(out)


def report_thumbnails(store, result: AuditResult) -> dict[int, str]:
    """The thumbnails `to_html` shows for a result (a bounded number)."""
    return thumbnails(store, result.thumbnail_keys())

