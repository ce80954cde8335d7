"""What the checks share: counted nouns, listed and one-per-item findings, mislabel words."""

from __future__ import annotations

from app.audits.model import MAX_FINDINGS_PER_KIND, Finding, Group
from app.domain import ListingQuery


def entries(n: int) -> str:
    return "1 entry" if n == 1 else f"{n:,} entries"


def listed(out: list[Finding], kind: str, name: str, capped, words, query=None, ident=lambda item: item) -> None:
    """One finding naming every entry of `capped` (a count with its first items).
    words: (subject for one, subject for several, the rest of the sentence)."""
    if capped.count:
        ids = tuple(ident(i) for i in capped.items)
        shown = "" if capped.count <= len(ids) else f" (the first {len(ids):,} are listed)"
        one, many, rest = words
        if capped.count != 1:
            rest = rest.replace(" it ", " they ")
        text = (one if capped.count == 1 else many.format(n=capped.count)) + rest
        out.append(Finding(kind, name, text + shown, ids, capped.count, query or ListingQuery(name, identifiers=ids)))


def each(out: list[Finding], kind: str, name: str, capped, text_of, ident) -> None:
    """One finding per item of `capped`, up to MAX_FINDINGS_PER_KIND, then one for the rest."""
    for item in capped.items[:MAX_FINDINGS_PER_KIND]:
        out.append(Finding(kind, name, text_of(item), (ident(item),), 1, ListingQuery(name, identifiers=(ident(item),))))
    rest = capped.count - min(len(capped.items), MAX_FINDINGS_PER_KIND)
    if rest > 0:
        out.append(Finding(kind, name, f"… and {rest:,} more like these.", (), rest))


def first(item):
    return item[0]


def mislabel_text(g: Group) -> str:
    parts = []
    if g.labels_disagree:
        labels = sorted({m.label for m in g.members if m.label.strip() and m.label != m.identifier})
        parts.append("labels " + ", ".join(repr(x) for x in labels[:5]) + (" …" if len(labels) > 5 else ""))
    if g.metadata_disagree:
        parts.append("metadata " + ", ".join(repr(k) for k in g.metadata_disagree[:5]))
    what = {"bytes": "identical images", "phash": "images with identical pHashes"}.get(g.kind, "near-duplicates")
    return f"Likely mislabel: {what} disagree on {' and '.join(parts)}."
