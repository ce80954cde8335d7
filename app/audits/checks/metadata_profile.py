"""Metadata: keys most entries have but some lack, and keys or values near the 254-byte limit."""

from __future__ import annotations

from app.audits.checks.common import entries
from app.audits.model import NEAR_LIMIT_BYTES, Finding
from app.audits.registry import Check, Level, Scope, register
from app.domain import Filter, FilterOp, ListingQuery


def findings(scan, groups) -> list[Finding]:
    out: list[Finding] = []
    name = scan.name
    for profile, ids in scan.key_gaps:
        missing = scan.entries - profile.entries
        out.append(Finding(
            "metadata-key-gap", name,
            f"{entries(missing)} {'lacks' if missing == 1 else 'lack'} the metadata key '{profile.key}', "
            f"which {profile.coverage:.0%} of entries have.",
            tuple(ids), missing, ListingQuery(name, filters=(Filter(FilterOp.META_ABSENT, key=profile.key),)),
        ))
    for profile, ids in scan.long_values:
        if profile.key_bytes >= NEAR_LIMIT_BYTES:
            text = f"The metadata key '{profile.key}' is {profile.key_bytes} bytes, near the 254-byte limit."
            n = profile.entries
        else:
            many = profile.values_near_limit != 1
            text = (f"{profile.values_near_limit:,} {'values' if many else 'value'} of the metadata key "
                    f"'{profile.key}' {'are' if many else 'is'} {NEAR_LIMIT_BYTES} bytes or longer, "
                    "near the 254-byte limit.")
            n = profile.values_near_limit
        out.append(Finding("metadata-near-limit", name, text, tuple(ids), n,
                           ListingQuery(name, filters=(Filter(FilterOp.META_PRESENT, key=profile.key),))))
    return out


CHECK = register(Check(
    "metadata", Scope.DATABASE, {"metadata-key-gap": Level.WARNING, "metadata-near-limit": Level.WARNING},
    findings, "Metadata keys with gaps, and keys or values near the limit",
))
