"""Audits for operators: health, duplicates, near-duplicates, integrity and change history (no Qt)."""
