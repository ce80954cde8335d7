"""Identifiers and labels a person or Media Server may trip on: commas and quotes, empty
labels, and names near the 254-byte limit."""

from __future__ import annotations

from app.audits.checks.common import first, listed
from app.audits.model import NEAR_LIMIT_BYTES
from app.audits.registry import Check, Level, Scope, register


def findings(scan, groups) -> list:
    out: list = []
    name = scan.name
    listed(out, "identifier-awkward", name, scan.ids_awkward,
           ("1 identifier contains", "{n:,} identifiers contain",
            " a comma or a double quote; list it quoted in identifier= (\"a,b\")."))
    listed(out, "identifier-near-limit", name, scan.ids_long,
           ("1 identifier is", "{n:,} identifiers are", f" {NEAR_LIMIT_BYTES} bytes or longer, near the 254-byte limit."))
    listed(out, "label-missing", name, scan.labels_missing, ("1 entry has", "{n:,} entries have", " an empty label."))
    listed(out, "label-near-limit", name, scan.labels_long,
           ("1 label is", "{n:,} labels are", f" {NEAR_LIMIT_BYTES} bytes or longer, near the 254-byte limit."),
           ident=first)
    return out


CHECK = register(Check(
    "names", Scope.DATABASE,
    {"identifier-awkward": Level.WARNING, "identifier-near-limit": Level.WARNING, "label-missing": Level.WARNING,
     "label-near-limit": Level.WARNING},
    findings, "Identifiers and labels that are awkward, empty or near the limit",
))
