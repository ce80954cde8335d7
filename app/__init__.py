"""Hashlens: browse, export and audit image-hash databases (no Qt in this package)."""

__version__ = "0.1.0"
