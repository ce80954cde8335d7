"""Facts an operator should know: entries without image data, generated identifiers and
labels, and labels shared by several entries."""

from __future__ import annotations

from app.audits.checks.common import listed
from app.audits.model import MAX_FINDINGS_PER_KIND, Finding
from app.audits.registry import Check, Level, Scope, register
from app.domain import Filter, FilterOp, ListingQuery


def findings(scan, groups) -> list[Finding]:
    out: list[Finding] = []
    name = scan.name
    listed(out, "no-image-data", name, scan.no_image,
           ("1 entry has", "{n:,} entries have", " no image data; it can never be retrained or re-hashed."),
           ListingQuery(name, filters=(Filter(FilterOp.HAS_IMAGE_DATA, False),)))
    listed(out, "identifier-auto", name, scan.ids_auto, ("1 identifier was", "{n:,} identifiers were",
                                                         " generated (32 hex digits)."))
    listed(out, "label-auto", name, scan.labels_auto, ("1 label was", "{n:,} labels were",
                                                       " generated (equal to the identifier)."))
    for label, n in scan.shared[:MAX_FINDINGS_PER_KIND]:
        out.append(Finding("label-shared", name, f"The label '{label}' is shared by {n:,} entries.", (), n,
                           ListingQuery(name, filters=(Filter(FilterOp.LABEL_EQUALS, label),))))
    rest = scan.shared_total - min(len(scan.shared), MAX_FINDINGS_PER_KIND)
    if rest > 0:
        out.append(Finding("label-shared", name, f"… and {rest:,} more shared labels.", (), rest))
    return out


CHECK = register(Check(
    "entry-facts", Scope.DATABASE,
    {"no-image-data": Level.INFO, "identifier-auto": Level.INFO, "label-auto": Level.INFO, "label-shared": Level.INFO},
    findings, "Entries without images, generated names and shared labels",
))
