"""Degenerate hashes: pHashes of (almost) all zeros or all ones match blank or flat images."""

from __future__ import annotations

from app.audits.checks.common import each, first
from app.audits.registry import Check, Level, Scope, register
from app.domain import phash_to_hex


def findings(scan, groups) -> list:
    out: list = []
    each(out, "hash-degenerate", scan.name, scan.degenerate,
         lambda i: f"'{i[0]}': the pHash {phash_to_hex(i[1])} is {i[2]}; it matches blank or flat images.", first)
    return out


CHECK = register(Check("hash-quality", Scope.DATABASE, {"hash-degenerate": Level.WARNING}, findings,
                       "pHashes that carry almost no information"))
