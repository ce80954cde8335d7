"""The difference between two listings written as text, JSON, CSV or an HTML page like the audit reports.

Findings arrive in identifier order, mixed; JSON and HTML group them by kind, so each
kind is spooled to a temporary file (memory up to a few MB, then disk) and the groups
are written one after another: a million findings never sit in memory.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator
from html import escape
from typing import TextIO

from app.audits.html_report import CSS
from app.exports.cells import neutralise
from app.diff import Changed, DiffCounts, Difference, DiffEntry

FORMATS = ("text", "json", "csv", "html")
KINDS = ("added", "removed", "changed")
HTML_ROWS_PER_KIND = 2000  # a page a browser opens quickly; the counts stay complete
_SPOOL = 4 << 20


def write(out: TextIO, fmt: str, differences: Iterator[Difference], counts: DiffCounts, *,
          old_name: str, new_name: str) -> DiffCounts:
    """Write every difference to `out` in `fmt`; `counts` is filled as they stream."""
    writer = {"text": _text, "json": _json, "csv": _csv, "html": _html}[fmt]
    writer(out, differences, counts, old_name, new_name)
    return counts


def entry_object(entry: DiffEntry) -> dict:
    return {"identifier": entry.identifier, "label": entry.label, "has_image_data": entry.has_image_data,
            "metadata": [{"key": k, "value": v} for k, v in entry.items]}


def change_object(change: Changed) -> dict:
    """A changed entry: what changed, each as old and new (JSON's `changed` items)."""
    obj: dict = {"identifier": change.identifier}
    if change.label is not None:
        obj["label"] = {"old": change.label[0], "new": change.label[1]}
    if change.image_data is not None:
        obj["has_image_data"] = {"old": change.image_data[0], "new": change.image_data[1]}
    if change.metadata:
        obj["metadata"] = [{"key": m.key, "old": m.old, "new": m.new} for m in change.metadata]
    return obj


def change_words(change: Changed) -> list[str]:
    """Each part of a change as a short phrase a person reads."""
    words = []
    if change.label is not None:
        words.append(f"relabelled {change.label[0]!r} -> {change.label[1]!r}")
    if change.image_data is not None:
        words.append("image data removed" if change.image_data_removed else
                     f"image data {_flag(change.image_data[0])} -> {_flag(change.image_data[1])}")
    for m in change.metadata:
        if m.old is None:
            words.append(f"metadata {m.key!r} added: {m.new!r}")
        elif m.new is None:
            words.append(f"metadata {m.key!r} removed (was {m.old!r})")
        else:
            words.append(f"metadata {m.key!r} changed: {m.old!r} -> {m.new!r}")
    return words


def summary_line(counts: DiffCounts) -> str:
    if counts.equal:
        return f"No differences ({counts.compared:,} entries on both sides)."
    return (f"{counts.added:,} added, {counts.removed:,} removed, {counts.changed:,} changed "
            f"({counts.relabelled:,} relabelled, {counts.image_data_removed:,} with image data removed, "
            f"{counts.metadata_changed:,} with metadata changes).")


def shown(identifier: str) -> str:
    """An identifier as a text line shows it: bare when plain, quoted when it holds
    spaces at an end or characters that would break the line."""
    return identifier if identifier and identifier.isprintable() and identifier.strip() == identifier else repr(identifier)


def _flag(value: bool | None) -> str:
    return "not known" if value is None else ("present" if value else "absent")


def _text(out, differences, counts, old_name, new_name):
    out.write(f"Differences from {old_name} to {new_name}\n")
    for item in differences:
        out.write(text_line(item) + "\n")
    out.write(summary_line(counts) + "\n")


def text_line(item: Difference) -> str:
    """One finding as a line: `+` added, `-` removed, `~` changed and how."""
    if item.kind == "added":
        return f"+ {shown(item.identifier)}  (label {item.entry.label!r})"
    if item.kind == "removed":
        return f"- {shown(item.identifier)}  (label {item.entry.label!r})"
    return f"~ {shown(item.identifier)}: {'; '.join(change_words(item.change))}"


def _spools() -> dict[str, tempfile.SpooledTemporaryFile]:
    return {kind: tempfile.SpooledTemporaryFile(max_size=_SPOOL, mode="w+", encoding="utf-8") for kind in KINDS}


def _json(out, differences, counts, old_name, new_name):
    spools = _spools()
    try:
        for item in differences:
            spool = spools[item.kind]
            if spool.tell():
                spool.write(",\n    ")
            obj = change_object(item.change) if item.kind == "changed" else entry_object(item.entry)
            spool.write(json.dumps(obj, ensure_ascii=False))
        out.write("{\n")
        out.write(f'  "from": {json.dumps(old_name, ensure_ascii=False)},\n')
        out.write(f'  "to": {json.dumps(new_name, ensure_ascii=False)},\n')
        for kind in KINDS:
            out.write(f'  "{kind}": [')
            if spools[kind].tell():
                out.write("\n    ")
                _copy(spools[kind], out)
                out.write("\n  ")
            out.write("],\n")
        summary = {"added": counts.added, "removed": counts.removed, "changed": counts.changed,
                   "relabelled": counts.relabelled, "image_data_removed": counts.image_data_removed,
                   "metadata_changed": counts.metadata_changed, "unchanged": counts.compared - counts.changed}
        out.write(f'  "summary": {json.dumps(summary)}\n}}\n')
    finally:
        for spool in spools.values():
            spool.close()


def _copy(spool, out) -> None:
    spool.seek(0)
    while chunk := spool.read(1 << 16):
        out.write(chunk)


def _csv(out, differences, counts, old_name, new_name):
    """One row per fact: kind, identifier, what (label, image data, metadata), key, old,
    new; cells in the spreadsheet-safe dialect the exports use."""
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180; a CR or LF inside a cell is then quoted
    writer.writerow(["kind", "identifier", "field", "key", "old", "new"])

    def row(*cells):
        writer.writerow(["" if c is None else neutralise(str(c)) for c in cells])

    for item in differences:
        if item.kind != "changed":
            e = item.entry
            row(item.kind, e.identifier, "label", "", *((None, e.label) if item.kind == "added" else (e.label, None)))
            continue
        c = item.change
        if c.label is not None:
            row("changed", c.identifier, "label", "", *c.label)
        if c.image_data is not None:
            row("changed", c.identifier, "has_image_data", "", *(_bool(v) for v in c.image_data))
        for m in c.metadata:
            row("changed", c.identifier, "metadata", m.key, m.old, m.new)


def _bool(value: bool | None) -> str | None:
    return None if value is None else ("true" if value else "false")


def _e(text) -> str:
    return escape("" if text is None else str(text), quote=True)


def _html(out, differences, counts, old_name, new_name):
    spools = _spools()
    shown = dict.fromkeys(KINDS, 0)
    try:
        for item in differences:
            if shown[item.kind] >= HTML_ROWS_PER_KIND:
                continue
            shown[item.kind] += 1
            if item.kind == "changed":
                words = "<br>".join(_e(w) for w in change_words(item.change))
                spools["changed"].write(f"<tr><td><code>{_e(item.identifier)}</code></td><td>{words}</td></tr>\n")
            else:
                e = item.entry
                meta = ", ".join(f"{k}={v}" for k, v in e.items)
                spools[item.kind].write(f"<tr><td><code>{_e(e.identifier)}</code></td><td>{_e(e.label)}</td>"
                                        f"<td>{_e(_flag(e.has_image_data))}</td><td>{_e(meta)}</td></tr>\n")
        out.write("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                  f"<title>Hashlens changes — {_e(new_name)}</title><style>{CSS}</style></head><body>\n"
                  f"<h1>Changes from {_e(old_name)} to {_e(new_name)}</h1>\n"
                  f"<p class=\"meta\">{_e(summary_line(counts))}</p>\n")
        titles = {"added": ("Added", counts.added), "removed": ("Removed", counts.removed),
                  "changed": ("Changed", counts.changed)}
        for kind in KINDS:
            title, total = titles[kind]
            out.write(f"<h2>{title} ({total:,})</h2>\n")
            if not total:
                out.write("<p class=\"meta\">None.</p>\n")
                continue
            head = ("<tr><th>Identifier</th><th>What changed</th></tr>" if kind == "changed" else
                    "<tr><th>Identifier</th><th>Label</th><th>Image data</th><th>Metadata</th></tr>")
            out.write(f"<table>{head}\n")
            _copy(spools[kind], out)
            out.write("</table>\n")
            if total > shown[kind]:
                out.write(f"<p class=\"meta\">… and {total - shown[kind]:,} more; the JSON or CSV form lists all.</p>\n")
        out.write("</body></html>\n")
    finally:
        for spool in spools.values():
            spool.close()
