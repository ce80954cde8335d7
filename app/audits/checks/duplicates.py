"""Duplicates within a database: identical bytes, identical pHashes, near-duplicates, and
groups whose labels or metadata disagree (likely mislabels)."""

from __future__ import annotations

from app.audits.checks.common import listed, mislabel_text
from app.audits.model import Finding
from app.audits.registry import Check, Level, Scope, register

_KIND_OF_GROUP = {"bytes": "duplicate-bytes", "phash": "duplicate-phash", "near": "near-duplicate"}


def findings(scan, groups) -> list[Finding]:
    out: list[Finding] = []
    name = scan.name
    for g in groups:
        ids = tuple(m.identifier for m in g.members)
        more = f" (the first {len(ids):,} of {g.size:,} listed)" if g.size > len(ids) else ""
        if g.kind == "bytes":
            text = f"{g.size:,} entries hold identical image bytes (SHA-256){more}."
        elif g.kind == "phash":
            text = f"{g.size:,} entries have the identical pHash {g.members[0].phash_hex}{more}."
        else:
            bound = "" if g.exact_max else "at least "
            text = f"{g.size:,} entries are near-duplicates, at most {bound}{g.max_distance} bits apart{more}."
        out.append(Finding(_KIND_OF_GROUP[g.kind], name, text, ids, g.size, g.query()))
        if g.likely_mislabel:
            out.append(Finding("likely-mislabel", name, mislabel_text(g), ids, g.size, g.query()))
    for kind in ("bytes", "phash", "near"):
        if scan.group_overflow.get(kind):
            out.append(Finding(_KIND_OF_GROUP[kind], name,
                               f"… and {scan.group_overflow[kind]:,} more groups like these.", (),
                               scan.group_overflow[kind]))
    listed(out, "not-compared", name, scan.no_phash,
           ("1 entry has", "{n:,} entries have", " no pHash (not known: a Media Server lists none), so the "
            "identical-pHash and near-duplicate checks could not compare it with any other; 'hashlens attach-images' computes "
            "pHashes from the images."))
    return out


CHECK = register(Check(
    "duplicates", Scope.DATABASE,
    {"duplicate-bytes": Level.WARNING, "duplicate-phash": Level.WARNING, "likely-mislabel": Level.WARNING,
     "near-duplicate": Level.INFO, "not-compared": Level.INFO},
    findings, "Identical and near-duplicate images, and likely mislabels among them",
))
