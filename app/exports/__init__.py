"""Exports of listings to files (XML, CSV, TSV, JSON, NDJSON, XLSX, images), their
manifests, and imports that read them (and Media Server responses) back."""
