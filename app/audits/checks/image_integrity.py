"""Image integrity: every stored image still decodes, and gives the pHash and SHA-256 recorded."""

from __future__ import annotations

from app.audits.checks.common import each, first
from app.audits.registry import Check, Level, Scope, register
from app.domain import phash_to_hex


def findings(scan, groups) -> list:
    out: list = []
    name = scan.name
    each(out, "image-undecodable", name, scan.undecodable,
         lambda i: f"'{i[0]}': the stored image no longer decodes ({i[1]}).", first)
    each(out, "phash-mismatch", name, scan.phash_mismatch,
         lambda i: f"'{i[0]}': the stored pHash {phash_to_hex(i[1])} differs from the image's "
                   f"{phash_to_hex(i[2])} by {(i[1] ^ i[2]).bit_count()} bits.", first)
    each(out, "sha256-mismatch", name, scan.sha_mismatch,
         lambda i: f"'{i[0]}': the stored image bytes are not the ones trained (SHA-256 {i[2][:12]}…, "
                   f"recorded {i[1][:12]}…).", first)
    return out


CHECK = register(Check(
    "image-integrity", Scope.DATABASE,
    {"image-undecodable": Level.ERROR, "phash-mismatch": Level.ERROR, "sha256-mismatch": Level.ERROR},
    findings, "Stored images decode and match their recorded pHash and SHA-256",
))
