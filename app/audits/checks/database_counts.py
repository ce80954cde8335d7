"""Recorded counts: the image flag, the entry count and each entry's metadata count agree
with the rows actually held."""

from __future__ import annotations

from app.audits.checks.common import entries
from app.audits.model import Finding
from app.audits.registry import Check, Level, Scope, register
from app.domain import ListingQuery


def findings(scan, groups) -> list[Finding]:
    out: list[Finding] = []
    name = scan.name
    count, items = scan.flag_mismatch
    if count:
        ids = tuple(i[0] for i in items)
        out.append(Finding("image-flag-mismatch", name,
                           f"{entries(count)} {'says it has' if count == 1 else 'say they have'} image data but "
                           f"{'has' if count == 1 else 'have'} none, or the reverse.",
                           ids, count, ListingQuery(name, identifiers=ids)))
    if scan.actual_count != scan.recorded:
        out.append(Finding("entry-count-mismatch", name,
                           f"The database records {scan.recorded:,} entries but holds {scan.actual_count:,}; "
                           "paging by start= is off by the difference."))
    count, items = scan.meta_mismatch
    if count:
        ids = tuple(i[0] for i in items)
        out.append(Finding("meta-count-mismatch", name,
                           f"{entries(count)} {'records' if count == 1 else 'record'} a different number of metadata "
                           "items than held.",
                           ids, count, ListingQuery(name, identifiers=ids)))
    return out


CHECK = register(Check(
    "database-counts", Scope.DATABASE,
    {"image-flag-mismatch": Level.ERROR, "entry-count-mismatch": Level.ERROR, "meta-count-mismatch": Level.ERROR},
    findings, "Recorded counts agree with the rows held",
))
