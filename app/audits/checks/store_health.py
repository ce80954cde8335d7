"""The store itself: the backend's integrity check, orphaned rows, and the schema version
against the one policy (`app.source.schema_version_policy`)."""

from __future__ import annotations

from app.audits.model import Finding
from app.audits.registry import Check, Level, Scope, register
from app.source import SchemaStanding, schema_version_policy


def findings(checks) -> list[Finding]:
    out = []
    if checks.integrity_status == "failed":
        shown = "; ".join(checks.integrity_messages[:3])
        out.append(Finding("store-integrity", None,
                           f"The {checks.backend} integrity check ({checks.integrity_check}) failed: {shown}. "
                           "Restore a backup or copy the data out; Hashlens never repairs a store in place.",
                           (), len(checks.integrity_messages)))
    for table, n in checks.orphans:
        if n:
            out.append(Finding("orphan-rows", None, f"{n:,} rows of {table} point at rows that no longer exist.", (), n))
    version, expected = checks.schema_version, checks.expected_schema_version
    standing = schema_version_policy(version, expected).standing
    if standing is SchemaStanding.NEWER:
        out.append(Finding("schema-newer", None,
                           f"The store has schema version {version}; this Hashlens knows {expected}, so parts of "
                           "the store may not have been audited. Use a newer Hashlens."))
    elif standing is SchemaStanding.OLDER:
        out.append(Finding("schema-older", None,
                           f"The store has schema version {version} (this Hashlens writes {expected}); it stays "
                           "read-only until 'hashlens migrate' upgrades it, after a backup."))
    return out


CHECK = register(Check(
    "store-health", Scope.STORE,
    {"store-integrity": Level.ERROR, "orphan-rows": Level.ERROR, "schema-newer": Level.ERROR,
     "schema-older": Level.WARNING},
    findings, "The store's integrity check, orphaned rows and schema version",
))
