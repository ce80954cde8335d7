"""The audit checks, one module each; importing this package registers them all in
`app.audits.registry`, in the order their findings are listed (the most serious first)."""

from app.audits.checks import (  # noqa: F401  (imported to register)
    image_integrity, database_counts, duplicates, hash_quality, names_near_limits, metadata_profile, entry_facts,
    across_databases, store_health,
)
