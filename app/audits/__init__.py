"""Audits for operators: health, duplicates, near-duplicates, integrity and change history (no Qt)."""

# Importing the checks registers them, so that any use of the audit package sees them all.
from app.audits import checks  # noqa: E402,F401
