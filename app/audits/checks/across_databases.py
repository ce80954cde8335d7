"""Near-duplicates that span databases, and likely mislabels among them."""

from __future__ import annotations

from app.audits.checks.common import mislabel_text
from app.audits.model import Finding
from app.audits.registry import Check, Level, Scope, register


def findings(groups, scope: str | None) -> list[Finding]:
    """Findings about groups that span databases belong to the store (database None);
    their query shows the audited database's members (or the first database's)."""
    out = []
    for g in groups:
        ids = tuple(m.identifier for m in g.members)
        where = ", ".join(f"'{d}'" for d in g.databases)
        query = g.query(scope if scope in g.databases else None)
        out.append(Finding("near-duplicate-across", None,
                           f"{g.size:,} entries in {where} are near-duplicates, at most "
                           f"{'' if g.exact_max else 'at least '}{g.max_distance} bits apart.", ids, g.size, query))
        if g.likely_mislabel:
            out.append(Finding("likely-mislabel", None, mislabel_text(g), ids, g.size, query))
    return out


CHECK = register(Check(
    "across-databases", Scope.ACROSS, {"near-duplicate-across": Level.INFO, "likely-mislabel": Level.WARNING},
    findings, "Near-duplicates across databases",
))
